"""Unit tests of sidecar.config: precedence, parsing, and errors that name key and source."""

import dataclasses
import pathlib

import pytest

from sidecar.config import SETTINGS, SidecarConfig, load_config
from sidecar.config_values import KiB, MiB
from sidecar.core.errors import ConfigError

REQUIRED = ["--app-name", "digits", "--model-address", "127.0.0.1:8001"]


def load(*argv: str, env: dict[str, str] | None = None) -> SidecarConfig:
    return load_config([*REQUIRED, *argv], env or {})


def error(*argv: str, env: dict[str, str] | None = None, required: bool = True) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config([*REQUIRED, *argv] if required else list(argv), env or {})
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.fixture
def yaml_file(tmp_path: pathlib.Path):
    def write(text: str) -> str:
        path = tmp_path / "sidecar.yaml"
        path.write_text(text)
        return str(path)

    return write


# --- the table ---------------------------------------------------------------------------------


def test_the_table_is_the_dataclass():
    names = [s.name for s in SETTINGS]
    assert sorted(names) == sorted(f.name for f in dataclasses.fields(SidecarConfig))
    assert len(set(names)) == len(names)


def test_the_relay_rows_are_shown_where_they_were_added():
    # RelaySettings' fields come first in dataclasses.fields; --help and README's table keep the
    # order the settings were added in.
    names = [s.name for s in SETTINGS]
    at = names.index("rest_timeout")
    assert names[:2] == ["app_name", "model_address"]
    assert names[at + 1] == "relay_max_connections"
    assert all(n.startswith("h2_") for n in names[names.index("redis_timeout") + 1 :])


def test_every_setting_has_a_flag_an_env_var_and_help():
    for s in SETTINGS:
        assert s.env == "SIDECAR_" + s.name.upper()
        assert s.flag.startswith("--")
        assert s.help.endswith(".")


def test_every_default_shown_in_help_reads_back_as_itself():
    for s in SETTINGS:
        if not s.required:
            assert s.kind.parse(s.shown_default() if s.name != "models" else "") == s.default, s


def test_defaults():
    config = load()
    # auto settings resolved from the environment: not in Kubernetes here.
    assert config == SidecarConfig(app_name="digits", model_address="127.0.0.1:8001", prefer_ip_address=False)
    assert (config.grpc_port, config.http_port) == (8081, 8080)
    assert (config.listen_host, config.admin_host) == ("0.0.0.0", "127.0.0.1")
    assert config.model_protocol == "grpc"
    assert config.max_message_bytes == 64 * MiB
    assert config.models == ()
    assert (config.probe_interval, config.probe_timeout) == (2.0, 1.0)
    assert (config.probe_failure_threshold, config.probe_success_threshold) == (3, 1)
    assert (config.drain_timeout, config.drain_delay, config.rest_timeout) == (30.0, None, 60.0)
    assert config.log_level == "INFO"


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        load().grpc_port = 1  # type: ignore[misc]


# --- precedence: flags > env > file > defaults ---------------------------------------------------

PRECEDENCE = [
    # key, file value, env value, flag value, expected from each layer (file, env, flag)
    ("grpc_port", "9001", "9002", "9003", (9001, 9002, 9003)),
    ("log_level", "debug", "warning", "error", ("DEBUG", "WARNING", "ERROR")),
    ("probe_interval", "500ms", "3", "1m", (0.5, 3.0, 60.0)),
    ("models", "[a, b]", "c,d", "e", (("a", "b"), ("c", "d"), ("e",))),
    ("app_name", "from-file", "from-env", "from-flag", ("from-file", "from-env", "from-flag")),
]


@pytest.mark.parametrize(("key", "in_file", "in_env", "in_flag", "expected"), PRECEDENCE)
def test_precedence(yaml_file, key, in_file, in_env, in_flag, expected):
    setting = next(s for s in SETTINGS if s.name == key)
    others = [a for a in zip(REQUIRED[::2], REQUIRED[1::2], strict=True) if a[0] != setting.flag]
    base = [*(arg for pair in others for arg in pair), "--config", yaml_file(f"{key}: {in_file}\n")]
    flag, env = [setting.flag, in_flag], {setting.env: in_env}
    assert getattr(load_config(base, {}), key) == expected[0]
    assert getattr(load_config(base, env), key) == expected[1]
    assert getattr(load_config(base + flag, env), key) == expected[2]
    assert getattr(load_config(base + flag, {}), key) == expected[2]


def test_layers_combine_key_by_key(yaml_file):
    path = yaml_file("grpc_port: 9001\nhttp_port: 9002\ndrain_timeout: 5\n")
    config = load("--config", path, "--http-port", "9102", env={"SIDECAR_DRAIN_TIMEOUT": "7s"})
    assert (config.grpc_port, config.http_port, config.drain_timeout) == (9001, 9102, 7.0)


def test_config_file_from_env_and_flag_wins(yaml_file, tmp_path):
    from_env = yaml_file("grpc_port: 9001\n")
    from_flag = tmp_path / "other.yaml"
    from_flag.write_text("grpc_port: 9002\n")
    assert load(env={"SIDECAR_CONFIG": from_env}).grpc_port == 9001
    assert load("--config", str(from_flag), env={"SIDECAR_CONFIG": from_env}).grpc_port == 9002


def test_file_accepts_kebab_case_keys(yaml_file):
    path = yaml_file("grpc-port: 9001\nmax-message-bytes: 1MiB\nprobe_failure_threshold: 5\n")
    config = load("--config", path)
    assert (config.grpc_port, config.max_message_bytes) == (9001, MiB)
    assert config.probe_failure_threshold == 5


def test_file_can_hold_the_required_settings(yaml_file):
    path = yaml_file("app_name: digits\nmodel_address: 'model:8001'\n")
    assert load_config(["--config", path], {}).model_address == "model:8001"


def test_empty_file_sets_nothing(yaml_file):
    assert load("--config", yaml_file("")) == load()


# --- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2", 2.0), ("2.5", 2.5), ("500ms", 0.5), ("2s", 2.0), ("1m", 60.0), ("1m30s", 90.0),
     ("1h", 3600.0), (".5s", 0.5), (" 3s ", 3.0)],
)  # fmt: skip
def test_durations(text, seconds):
    assert load("--drain-timeout", text).drain_timeout == seconds
    assert load(env={"SIDECAR_DRAIN_TIMEOUT": text}).drain_timeout == seconds


def test_durations_in_yaml_may_be_numbers(yaml_file):
    config = load("--config", yaml_file("probe_interval: 3\nprobe_timeout: 0.25\n"))
    assert (config.probe_interval, config.probe_timeout) == (3.0, 0.25)


@pytest.mark.parametrize(
    ("text", "size"),
    [("1024", 1024), ("1KiB", KiB), ("64MiB", 64 * MiB), ("1GiB", 1024 * MiB), ("2mb", 2_000_000),
     ("4 MiB", 4 * MiB)],
)  # fmt: skip
def test_sizes(text, size):
    assert load("--max-message-bytes", text).max_message_bytes == size


def test_sizes_in_yaml_may_be_numbers(yaml_file):
    assert load("--config", yaml_file("max_message_bytes: 2048\n")).max_message_bytes == 2048


def test_models_from_repeated_and_comma_separated_flags():
    assert load("--model", "a,b", "--model", "c", "--model", "a").models == ("a", "b", "c")


def test_models_from_env_and_file(yaml_file):
    assert load(env={"SIDECAR_MODELS": " a, b ,,c "}).models == ("a", "b", "c")
    assert load(env={"SIDECAR_MODELS": ""}).models == ()
    assert load("--config", yaml_file("models: [x, y]\n")).models == ("x", "y")
    assert load("--config", yaml_file("models: x,y\n")).models == ("x", "y")
    assert load("--config", yaml_file("models:\n")).models == ()


def test_empty_env_overrides_file_models(yaml_file):
    path = yaml_file("models: [x]\n")
    assert load("--config", path, env={"SIDECAR_MODELS": ""}).models == ()


@pytest.mark.parametrize(
    ("address", "kept"),
    [("model:8001", "model:8001"), ("10.0.0.7:1", "10.0.0.7:1"), ("[::1]:8001", "[::1]:8001"),
     ("[fe80::1%eth0]:65535", "[fe80::1%eth0]:65535"), ("model.ns.svc:08001", "model.ns.svc:8001")],
)  # fmt: skip
def test_model_addresses(address, kept):
    assert load_config(["--app-name", "a", "--model-address", address], {}).model_address == kept


def test_hosts_drop_ipv6_brackets():
    config = load("--listen-host", "[::]", "--admin-host", "::1")
    assert (config.listen_host, config.admin_host) == ("::", "::1")


def test_log_level_is_case_insensitive():
    assert load("--log-level", "warning").log_level == "WARNING"


def test_both_ports_may_be_zero():
    config = load("--grpc-port", "0", "--http-port", "0")
    assert (config.grpc_port, config.http_port) == (0, 0)


def test_kubernetes_service_links_are_not_typos():
    env = {
        "SIDECAR_SERVICE_HOST": "10.0.0.1",
        "SIDECAR_SERVICE_PORT": "80",
        "SIDECAR_SERVICE_PORT_HTTP": "80",
        "SIDECAR_PORT": "tcp://10.0.0.1:80",
        "SIDECAR_PORT_80_TCP": "tcp://10.0.0.1:80",
        "SIDECAR_PORT_80_TCP_PROTO": "tcp",
        "SIDECAR_PORT_80_TCP_PORT": "80",
        "SIDECAR_PORT_80_TCP_ADDR": "10.0.0.1",
    }
    assert load(env=env) == load()


def test_sidecar_config_itself_is_not_an_unknown_variable():
    assert load(env={"SIDECAR_CONFIG": ""}) == load()


# --- errors name the key and where the value came from ------------------------------------------


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--grpc-port", "70000"], "grpc_port: 70000 is out of range 0..65535"),
        (["--http-port", "-1"], "http_port: -1 is out of range 0..65535"),
        (["--grpc-port", "80a"], 'grpc_port: "80a" is not an integer'),
        (["--model-protocol", "smtp"], 'model_protocol: "smtp" is not one of: grpc, http'),
        (["--listen-host", ""], "listen_host: must not be empty"),
        (["--admin-host", "a b"], 'admin_host: "a b" is not a host name or IP address'),
        (["--max-message-bytes", "512"], "max_message_bytes: 512 is below the minimum of 1KiB"),
        (
            ["--max-message-bytes", "2GiB"],
            'max_message_bytes: "2GiB" is above the maximum of 2147483647 bytes',
        ),
        (
            ["--max-message-bytes", "64XB"],
            'max_message_bytes: "64XB" is not a size (bytes, or e.g. 1KiB, 64MiB)',
        ),
        (["--model", "a b"], 'models: "a b" is not a model name (no spaces or slashes)'),
        (["--model", "ns/m"], 'models: "ns/m" is not a model name (no spaces or slashes)'),
        (["--probe-interval", "0"], "probe_interval: 0 must be more than 0"),
        (["--probe-timeout", "0ms"], 'probe_timeout: "0ms" must be more than 0'),
        (
            ["--rest-timeout", "soon"],
            'rest_timeout: "soon" is not a duration (seconds, or e.g. 500ms, 2s, 1m)',
        ),
        (["--drain-timeout", "-5"], "drain_timeout: -5 must not be negative"),
        (
            ["--drain-delay", "inf"],
            'drain_delay: "inf" is not a duration (seconds, or e.g. 500ms, 2s, 1m)',
        ),
        (
            ["--probe-failure-threshold", "0"],
            "probe_failure_threshold: 0 is below the minimum of 1",
        ),
        (["--probe-success-threshold", "x"], 'probe_success_threshold: "x" is not an integer'),
        (
            ["--log-level", "verbose"],
            'log_level: "verbose" is not one of: DEBUG, INFO, WARNING, ERROR',
        ),
        (
            ["--app-name", "my app"],
            'app_name: "my app" may contain only letters, digits, "-", "_" and "."',
        ),
        (["--app-name", " "], "app_name: must not be empty"),
    ],
)
def test_bad_flag_values(argv, problem):
    assert error(*argv) == f"{problem} (from {argv[0]})"


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("model", '"model" is not HOST:PORT'),
        ("model:", '"model:" is not HOST:PORT'),
        (":8001", '":8001" is not HOST:PORT'),
        ("model:0", '"model:0": port 0 is out of range 1..65535'),
        ("model:65536", '"model:65536": port 65536 is out of range 1..65535'),
        ("model:http", '"model:http": port "http" is not an integer'),
        ("::1:8001", '"::1:8001": an IPv6 host needs brackets, e.g. [::1]:8001'),
        ("[model]:8001", '"[model]" is not a host name or IP address'),
        ("mo del:8001", '"mo del" is not a host name or IP address'),
    ],
)
def test_bad_model_addresses(address, problem):
    message = error("--app-name", "a", "--model-address", address, required=False)
    assert message == f"model_address: {problem} (from --model-address)"


def test_the_source_is_named_for_env_and_file(yaml_file):
    assert error(env={"SIDECAR_GRPC_PORT": "70000"}) == (
        "grpc_port: 70000 is out of range 0..65535 (from SIDECAR_GRPC_PORT)"
    )
    path = yaml_file("grpc_port: 70000\n")
    assert error("--config", path) == f"grpc_port: 70000 is out of range 0..65535 (from {path})"


def test_a_value_overridden_by_a_higher_layer_is_not_checked(yaml_file):
    path = yaml_file("grpc_port: 70000\n")
    assert load("--config", path, "--grpc-port", "9000").grpc_port == 9000


def test_yaml_types_are_checked(yaml_file):
    path = yaml_file("grpc_port: true\n")
    assert error("--config", path) == f"grpc_port: true is not an integer (from {path})"
    path = yaml_file("grpc_port: 80.5\n")
    assert error("--config", path) == f"grpc_port: 80.5 is not an integer (from {path})"
    path = yaml_file("listen_host: [a]\n")
    assert error("--config", path) == (f'listen_host: ["a"] is not a string (quote it in YAML) (from {path})')
    path = yaml_file("models: [1]\n")
    assert error("--config", path) == f"models: 1 is not a string (quote it in YAML) (from {path})"


def test_required_settings():
    assert error("--model-address", "m:1", required=False) == (
        "app_name is required (--app-name or SIDECAR_APP_NAME)"
    )
    assert error("--app-name", "a", required=False) == (
        "model_address is required (--model-address or SIDECAR_MODEL_ADDRESS)"
    )


def test_ports_must_differ_unless_zero():
    assert error("--http-port", "8081") == (
        "grpc_port and http_port are both 8081; they must differ unless 0 (from default and --http-port)"
    )
    assert error(env={"SIDECAR_GRPC_PORT": "9000", "SIDECAR_HTTP_PORT": "9000"}) == (
        "grpc_port and http_port are both 9000; they must differ unless 0"
        " (from SIDECAR_GRPC_PORT and SIDECAR_HTTP_PORT)"
    )


def test_the_relay_with_a_rest_model_fails_at_load_naming_both_keys():
    assert error("--model-protocol", "http", "--dataplane", "relay") == (
        "dataplane: relay forwards HTTP/2 frames and needs model_protocol grpc, not http"
        " (from --dataplane and --model-protocol)"
    )
    assert load("--model-protocol", "http").dataplane == "auto"  # auto picks grpcio for a REST model


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{host}-{pod}", "has an unknown placeholder {pod}; known: {host}, {app}, {grpc_port}, {http_port}"),
        ("{}:{app}", "has a placeholder without a name"),
        ("{host", "is not a valid template"),
        ("{host:d}", "is not a valid template"),
        ("{host.nope}", "is not a valid template"),
    ],
)
def test_a_bad_instance_id_template_fails_at_load_naming_the_key(template, problem):
    message = error("--instance-id", template)
    assert message.startswith(f"instance_id: {template!r} {problem}"), message
    assert message.endswith("(from --instance-id)")


def test_instance_id_templates_that_expand():
    assert load("--instance-id", "{app}-{grpc_port:05d}@{host}").instance_id == "{app}-{grpc_port:05d}@{host}"


def test_drain_minimum_must_not_exceed_the_maximum():
    assert error("--drain-min-delay", "2m", env={"SIDECAR_DRAIN_MAX_DELAY": "90s"}) == (
        "drain_min_delay 120s is above drain_max_delay 90s"
        " (from --drain-min-delay and SIDECAR_DRAIN_MAX_DELAY)"
    )
    config = load("--drain-min-delay", "auto", "--drain-quiet-period", "2s")
    assert (config.drain_min_delay, config.drain_quiet_period, config.drain_max_delay) == (None, 2.0, 100.0)


def test_unknown_flag():
    assert error("--grpc-prot", "1") == "unrecognized arguments: --grpc-prot 1"
    # No abbreviations: "--grpc" must not quietly mean "--grpc-port".
    assert "--grpc" in error("--grpc", "1")


def test_unknown_env_var_with_and_without_suggestion():
    assert error(env={"SIDECAR_GRPC_PROT": "1"}) == (
        'unknown environment variable SIDECAR_GRPC_PROT (did you mean "SIDECAR_GRPC_PORT"?)'
    )
    assert error(env={"SIDECAR_MODEL": "a"}) == (
        'unknown environment variable SIDECAR_MODEL (did you mean "SIDECAR_MODELS"?)'
    )
    assert error(env={"SIDECAR_FROBNICATE": "1"}) == "unknown environment variable SIDECAR_FROBNICATE"


def test_a_service_link_value_in_a_setting_is_still_checked():
    # A Kubernetes service named "sidecar-grpc" would inject SIDECAR_GRPC_PORT=tcp://...
    assert error(env={"SIDECAR_GRPC_PORT": "tcp://10.0.0.1:8081"}) == (
        'grpc_port: "tcp://10.0.0.1:8081" is not an integer (from SIDECAR_GRPC_PORT)'
    )


def test_other_variables_are_ignored():
    assert load(env={"PATH": "/bin", "SIDECARX": "1", "MY_SIDECAR_PORT": "1"}) == load()


def hint(suggestion: str) -> str:
    return f' (did you mean "{suggestion}"?)'


def test_unknown_key_in_file_with_suggestion(yaml_file):
    path = yaml_file("grpc_prot: 9000\n")
    assert error("--config", path) == f'unknown key "grpc_prot" in {path} (did you mean "grpc_port"?)'
    path = yaml_file("grpc-prot: 9000\n")
    assert error("--config", path) == f'unknown key "grpc-prot" in {path} (did you mean "grpc-port"?)'
    path = yaml_file("GRPC_PORT: 9000\n")
    assert error("--config", path) == f'unknown key "GRPC_PORT" in {path} (did you mean "grpc_port"?)'
    path = yaml_file("frobnicate: 1\n")
    assert error("--config", path) == f'unknown key "frobnicate" in {path}'
    path = yaml_file("config: other.yaml\n")
    assert error("--config", path).startswith(f'unknown key "config" in {path}')
    path = yaml_file("8080: grpc\n")
    assert error("--config", path) == f'unknown key "8080" in {path}'


def test_a_key_spelled_twice_in_file(yaml_file):
    path = yaml_file("grpc_port: 1\ngrpc-port: 2\n")
    assert error("--config", path) == f'grpc_port: set twice in {path} (as "grpc_port" and "grpc-port")'


def test_unreadable_files(tmp_path):
    assert error("--config", "/nope.yaml") == (
        "config file /nope.yaml: cannot read: No such file or directory"
    )
    assert error("--config", str(tmp_path)) == f"config file {tmp_path}: cannot read: Is a directory"
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    assert error("--config", str(binary)) == f"config file {binary}: cannot read: not UTF-8 text"
    assert error(env={"SIDECAR_CONFIG": "/nope.yaml"}) == (
        "config file /nope.yaml: cannot read: No such file or directory"
    )


def test_file_that_is_not_yaml(yaml_file):
    path = yaml_file("grpc_port: [1,\n")
    message = error("--config", path)
    assert message.startswith(f"config file {path}: invalid YAML at line ")


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "list"), ("just words\n", "str")])
def test_file_that_is_not_a_mapping(yaml_file, text, kind):
    path = yaml_file(text)
    assert error("--config", path) == (f"config file {path}: expected a mapping of settings, got {kind}")


def test_file_problems_come_before_missing_settings(yaml_file):
    # The file may be where the required settings were meant to come from.
    assert error("--config", "/nope.yaml", required=False).startswith("config file /nope.yaml")


def test_readme_documents_every_setting():
    from tests.support import REPO

    readme = (REPO / "README.md").read_text()
    missing = [s.name for s in SETTINGS if f"| `{s.name}` | `{s.flag}` | `{s.env}` |" not in readme]
    assert missing == [], f"add these settings to README.md's table: {missing}"


def test_prefer_ip_address_is_on_in_kubernetes_unless_a_host_name_is_given():
    kubernetes = {"KUBERNETES_SERVICE_HOST": "10.96.0.1"}
    assert load().prefer_ip_address is False
    assert load(env=kubernetes).prefer_ip_address is True
    assert load("--advertise-host", "digits-0.digits", env=kubernetes).prefer_ip_address is False
    assert load("--prefer-ip-address", "on").prefer_ip_address is True
    assert load("--prefer-ip-address", "off", env=kubernetes).prefer_ip_address is False
    assert error("--prefer-ip-address", "maybe") == (
        'prefer_ip_address: "maybe" is not on or off (from --prefer-ip-address)'
    )
