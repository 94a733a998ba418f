"""The observability settings: switches that read YAML's booleans, ratios, format lists, cross-checks."""

import pathlib

import pytest

from sidecar.config import SidecarConfig, load_config
from sidecar.config_values import Choices, Invalid, Mode, Ratio, Switch
from sidecar.core.errors import ConfigError

REQUIRED = ["--app-name", "digits", "--model-address", "127.0.0.1:8001"]


def load(*argv: str, env: dict[str, str] | None = None) -> SidecarConfig:
    return load_config([*REQUIRED, *argv], env or {})


def test_defaults_metrics_on_everything_else_off():
    c = load()
    assert (c.metrics, c.tracing, c.access_log) == (True, False, "off")
    assert (c.trace_propagation, c.trace_sample_ratio, c.trace_exporter) == (("w3c",), 1.0, "otlp")
    assert (c.otlp_endpoint, c.access_log_sample_ratio) == ("http://localhost:4317", 0.01)


@pytest.mark.parametrize(
    ("raw", "value"), [("on", True), ("OFF", False), ("true", True), ("0", False), (True, True)]
)
def test_switch(raw, value):
    assert Switch().parse(raw) is value


def test_switch_refuses_other_words():
    with pytest.raises(Invalid, match='"maybe" is not on or off'):
        Switch().parse("maybe")


def test_yaml_on_and_off_are_booleans_and_still_work(tmp_path: pathlib.Path):
    path = tmp_path / "s.yaml"
    path.write_text("tracing: on\nmetrics: off\naccess_log: on\ntrace_exporter: file\ntrace_file: /tmp/x\n")
    c = load("--config", str(path))
    assert (c.tracing, c.metrics, c.access_log) == (True, False, "on")


def test_mode():
    assert Mode(("off", "on", "sampled")).parse("Sampled") == "sampled"
    assert Mode(("off", "on", "sampled")).parse(False) == "off"
    with pytest.raises(Invalid, match="is not one of: off, on, sampled"):
        Mode(("off", "on", "sampled")).parse("some")


@pytest.mark.parametrize(("raw", "value"), [("0", 0.0), ("1", 1.0), (".25", 0.25), (0.5, 0.5), (1, 1.0)])
def test_ratio(raw, value):
    assert Ratio().parse(raw) == value


@pytest.mark.parametrize("raw", ["1.5", "-0.1", "half", True, "nan"])
def test_ratio_refuses(raw):
    with pytest.raises(Invalid):
        Ratio().parse(raw)


def test_choices_keep_order_and_drop_duplicates():
    kind = Choices(("w3c", "b3", "b3multi"))
    assert kind.parse("b3multi, W3C,b3multi") == ("b3multi", "w3c")
    assert kind.parse(["b3", "w3c"]) == ("b3", "w3c")
    with pytest.raises(Invalid, match='"jaeger" is not one of'):
        kind.parse("w3c,jaeger")
    with pytest.raises(Invalid, match="at least one"):
        kind.parse(" , ")


def test_settings_from_env():
    c = load(
        env={
            "SIDECAR_TRACING": "on",
            "SIDECAR_TRACE_PROPAGATION": "w3c,b3",
            "SIDECAR_TRACE_SAMPLE_RATIO": "0.1",
            "SIDECAR_OTLP_ENDPOINT": "https://collector:4317",
            "SIDECAR_ACCESS_LOG": "sampled",
        }
    )
    assert (c.tracing, c.trace_propagation, c.trace_sample_ratio) == (True, ("w3c", "b3"), 0.1)
    assert (c.otlp_endpoint, c.access_log) == ("https://collector:4317", "sampled")


def test_a_file_exporter_needs_a_file():
    with pytest.raises(ConfigError, match="trace_file is required when trace_exporter is file"):
        load("--tracing", "on", "--trace-exporter", "file")
    # Tracing off: the exporter settings are not used, so not checked.
    assert load("--trace-exporter", "file").trace_file == ""


def test_an_otlp_endpoint_is_a_url():
    with pytest.raises(ConfigError, match="otlp_endpoint:"):
        load("--otlp-endpoint", "collector:4317")
