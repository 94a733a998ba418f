"""The relay's HTTP/2 limits as settings (sidecar/config_relay.py's h2_* rows, sidecar/app.py's relay_limits):
each reaches its Limits field, and the defaults are sidecar/h2/limits.py's constants."""

from sidecar.app import relay_limits
from sidecar.config import SETTINGS, load_config
from sidecar.h2.limits import Limits

REQUIRED = ["--app-name", "x", "--model-address", "127.0.0.1:1"]
# Each h2_* setting and the Limits field it sets.
FIELDS = {
    "h2_max_concurrent_streams": "max_concurrent_streams",
    "h2_max_header_list_size": "max_header_list_size",
    "h2_max_header_block": "max_block",
    "h2_max_continuations": "max_continuations",
    "h2_health_max_streams": "health_max_streams",
    "h2_reset_budget": "reset_budget",
    "h2_reset_window": "reset_window",
    "h2_ping_budget": "ping_budget",
    "h2_settings_budget": "settings_budget",
    "h2_empty_frame_budget": "empty_frame_budget",
    "h2_malformed_stream_budget": "malformed_stream_budget",
    "h2_control_window": "control_window",
}


def test_every_h2_setting_is_listed_here():
    assert sorted(s.name for s in SETTINGS if s.name.startswith("h2_")) == sorted(FIELDS)


def test_the_defaults_are_the_constants():
    assert relay_limits(load_config(REQUIRED, {})) == Limits()


def test_each_setting_reaches_its_limit_from_the_environment():
    env = {f"SIDECAR_{name.upper()}": str(7 + i) for i, name in enumerate(FIELDS)}
    limits = relay_limits(load_config(REQUIRED, env))
    for i, (name, field) in enumerate(FIELDS.items()):
        assert getattr(limits, field) == 7 + i, name


# ---- the relay's connection bounds (connlimits): relay_* settings ----

# Each relay_* setting, the Limits field it sets, and a value it accepts.
RELAY_FIELDS = {
    "relay_max_connections": ("max_connections", 7),
    "relay_preface_timeout": ("preface_timeout", 8.0),
    "relay_idle_timeout": ("idle_timeout", 9.0),
    "relay_read_budget": ("read_budget", 0.25),
    "relay_client_write_high": ("client_write_high", 1 << 20),
    "relay_client_sndbuf": ("client_sndbuf", 3 << 20),
    "relay_client_rcvbuf": ("client_rcvbuf", 5 << 20),
    "relay_write_max": ("write_max", 7 << 20),
    "relay_write_stall": ("write_stall", 11.0),
}


def test_every_relay_setting_is_listed_here():
    assert sorted(s.name for s in SETTINGS if s.name.startswith("relay_")) == sorted(RELAY_FIELDS)


def test_each_relay_setting_reaches_its_limit_from_the_environment():
    env = {f"SIDECAR_{name.upper()}": str(value) for name, (_, value) in RELAY_FIELDS.items()}
    limits = relay_limits(load_config(REQUIRED, env))
    for name, (field, value) in RELAY_FIELDS.items():
        assert getattr(limits, field) == value, name
