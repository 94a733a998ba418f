"""Unit tests of sidecar.config_table: a dataclass field's metadata read as its row."""

import dataclasses
from dataclasses import dataclass, field

from sidecar.config_table import about, rows
from sidecar.config_values import Int, Names


@dataclass(frozen=True, kw_only=True)
class Example:
    app_port: int = field(metadata=about(Int(0, 65535, "PORT"), "A port."))
    models: tuple[str, ...] = field(
        default=(), metadata=about(Names(), "Models.", flag="--model", repeatable=True)
    )


def test_a_row_spells_the_flag_and_the_variable_from_the_name_unless_it_names_its_flag():
    port, models = rows(dataclasses.fields(Example))
    assert (port.name, port.flag, port.env, port.repeatable) == (
        "app_port",
        "--app-port",
        "SIDECAR_APP_PORT",
        False,
    )
    assert (models.flag, models.env, models.repeatable) == ("--model", "SIDECAR_MODELS", True)


def test_a_field_without_a_default_is_required():
    port, models = rows(dataclasses.fields(Example))
    assert port.required and port.shown_default() == "required"
    assert not models.required and models.shown_default() == "none"
