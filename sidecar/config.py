"""Sidecar settings: one table read from flags, SIDECAR_* env and a YAML file, validated at load.

Knows nothing about what the settings drive (sockets, gRPC, logging) or how the CLI presents them.

Every setting is a field of `SidecarConfig` (the relay's of its base, config_relay.py); the field's
metadata is its row in the table (help, parser, flag spelling; config_table.py), so adding a setting
is adding one field. From that row:

- flag: `--` + kebab-case name (`--grpc-port`), unless the row names another (`--model`);
- environment variable: `SIDECAR_` + upper snake (`SIDECAR_GRPC_PORT`);
- YAML key in the `--config` / `SIDECAR_CONFIG` file: the snake_case name, or the kebab-case one.

Precedence is flags > environment > file > defaults. The first problem found is raised as one
`ConfigError` line naming the key and where the value came from.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NoReturn

from sidecar import config_rules
from sidecar.config_layers import Layer, read_environ, read_file
from sidecar.config_relay import RelaySettings
from sidecar.config_table import Setting, about, rows
from sidecar.config_values import (
    AppName,
    AutoDuration,
    AutoSwitch,
    Choice,
    Choices,
    Duration,
    Host,
    HostPort,
    Int,
    Invalid,
    KiB,
    MiB,
    Mode,
    Names,
    Ratio,
    Size,
    Switch,
    Text,
    Urls,
)
from sidecar.core.env import CONFIG_FILE, PREFIX
from sidecar.core.errors import ConfigError

# The one place SIDECAR_* environment variables are declared: each setting's own, plus
# core/env.py's (the relay reads SIDECAR_NO_EXTENSIONS there too).
ENV_PREFIX: Final = PREFIX
CONFIG_ENV: Final = CONFIG_FILE
# Set by the kubelet in every container: how `auto` settings know they run in Kubernetes.
KUBERNETES_ENV: Final = "KUBERNETES_SERVICE_HOST"


_PORT_HELP = "0 picks a free port"


@dataclass(frozen=True, slots=True, kw_only=True)
class SidecarConfig(RelaySettings):
    """Every setting of `ai-sidecar run`, validated. Build it with `load_config`."""

    app_name: str = field(metadata=about(AppName(), "Name this service registers and reports under."))
    model_address: str = field(
        metadata=about(HostPort(), "The model server, HOST:PORT ([::1]:PORT for IPv6).")
    )
    model_protocol: str = field(
        default="grpc",
        metadata=about(
            Choice(("grpc", "http"), upper=False),
            "Protocol the model server speaks: OIP v2 gRPC, or the OIP v2 REST binding (e.g. PHP).",
        ),
    )
    dataplane: str = field(
        default="auto",
        metadata=about(
            Choice(("auto", "relay", "grpcio"), upper=False),
            "gRPC ingress: relay (frame-level HTTP/2) or grpcio (grpc.aio); "
            "auto: relay unless the model is REST.",
        ),
    )
    listen_host: str = field(
        default="0.0.0.0",
        metadata=about(Host(), "Address the gRPC and HTTP listeners bind (the pod IP)."),
    )
    grpc_port: int = field(
        default=8081,
        metadata=about(Int(0, 65535, "PORT"), f"OIP v2 gRPC listen port; {_PORT_HELP}."),
    )
    http_port: int = field(
        default=8080,
        metadata=about(Int(0, 65535, "PORT"), f"OIP v2 REST listen port; {_PORT_HELP}."),
    )
    admin_host: str = field(default="127.0.0.1", metadata=about(Host(), "Address admin listeners bind."))
    max_message_bytes: int = field(
        default=64 * MiB,
        metadata=about(Size(KiB, 2**31 - 1), "Largest request or response message (e.g. 64MiB)."),
    )
    models: tuple[str, ...] = field(
        default=(),
        metadata=about(
            Names(),
            "Model to probe and advertise; repeat or comma-separate.",
            flag="--model",
            repeatable=True,
        ),
    )
    probe_interval: float = field(
        default=2.0,
        metadata=about(Duration(positive=True), "Time between model health probes."),
    )
    probe_timeout: float = field(
        default=1.0, metadata=about(Duration(positive=True), "Deadline of one health probe.")
    )
    probe_failure_threshold: int = field(
        default=3,
        metadata=about(Int(1), "Consecutive failed probes before the model is not ready."),
    )
    probe_success_threshold: int = field(
        default=1,
        metadata=about(Int(1), "Consecutive passed probes before the model is ready again."),
    )
    drain_timeout: float = field(
        default=30.0,
        metadata=about(Duration(positive=False), "On SIGTERM, how long in-flight calls may finish."),
    )
    drain_delay: float | None = field(
        default=None,
        metadata=about(
            AutoDuration(positive=False),
            "On SIGTERM, serve this long while reporting not ready; auto: until calls stop coming"
            " (drain_quiet_period).",
        ),
    )
    drain_quiet_period: float = field(
        default=5.0,
        metadata=about(
            Duration(positive=False),
            "With drain_delay auto: stop serving once no call has arrived for this long.",
        ),
    )
    drain_min_delay: float | None = field(
        default=None,
        metadata=about(
            AutoDuration(positive=False),
            "With drain_delay auto: serve at least this long; auto: registry_fetch_interval + 5s with"
            " Eureka, else 5s.",
        ),
    )
    drain_max_delay: float = field(
        default=100.0,
        metadata=about(
            Duration(positive=False),
            "With drain_delay auto: serve at most this long (Spring Cloud's default caches:"
            " 30s + 35s + 30s).",
        ),
    )
    rest_timeout: float = field(
        default=60.0,
        metadata=about(
            Duration(positive=True),
            "Deadline of a REST call to the model if the client sets none (a grpc-timeout header sets"
            " a sooner one).",
        ),
    )
    admin_port: int = field(
        default=15000,
        metadata=about(
            Int(0, 65535, "PORT"), "Admin listen port on admin_host (drain, registry); 0 = any free port."
        ),
    )
    drain_wait_port: int = field(
        default=0,
        metadata=about(
            Int(0, 65535, "PORT"),
            "Port of GET /drained on listen_host, answered once drained (a model's preStop); 0 = off.",
        ),
    )
    eureka_url: tuple[str, ...] = field(
        default=(),
        metadata=about(
            Urls(), "Eureka server URLs, comma-separated, tried in order (e.g. http://eureka:8761/eureka/)."
        ),
    )
    zone: str = field(
        default="",
        metadata=about(
            Text(r"[A-Za-z0-9._-]+", "a zone name"), "Zone this instance runs in (Eureka metadata)."
        ),
    )
    weight: int = field(
        default=1, metadata=about(Int(1, 1000), "Load-balancing weight advertised in Eureka metadata.")
    )
    instance_id: str = field(
        default="{host}:{app}:{grpc_port}",
        metadata=about(
            Text(r"[^\s/]*", "an instance id template (no spaces or slashes)", empty=False),
            "Eureka instance id; {host}, {app}, {grpc_port}, {http_port} are filled in.",
        ),
    )
    advertise_host: str = field(
        default="",
        metadata=about(
            Text(r"[A-Za-z0-9._-]+", "a host name"), "Host name registered in Eureka; empty = this machine's."
        ),
    )
    advertise_ip: str = field(
        default="",
        metadata=about(
            Text(r"[0-9A-Fa-f.:]+", "an IP address"),
            "IP registered in Eureka (the pod IP); empty = listen_host if specific, else the host name's.",
        ),
    )
    # `auto` (None) is resolved by load_config from the environment; a loaded config holds a bool.
    prefer_ip_address: bool | None = field(
        default=None,
        metadata=about(
            AutoSwitch(),
            "Register the IP as hostName, which Spring clients connect to; auto: on in Kubernetes without"
            " advertise_host.",
        ),
    )
    lease_renewal_interval: int = field(
        default=30, metadata=about(Int(1, 3600, "SECONDS"), "Seconds between Eureka heartbeats.")
    )
    lease_duration: int = field(
        default=90,
        metadata=about(Int(1, 36000, "SECONDS"), "Seconds Eureka keeps an instance without a heartbeat."),
    )
    registry_fetch_interval: float = field(
        default=30.0,
        metadata=about(Duration(positive=True), "Time between registry (delta) fetches for discovery."),
    )
    registry_file: str = field(
        default="",
        metadata=about(
            Text(describe="a path"), "Static YAML registry used for discovery when there is no Eureka."
        ),
    )
    egress_grpc_port: int = field(
        default=15001,
        metadata=about(
            Int(0, 65535, "PORT"), "Loopback gRPC egress port (call services by name); 0 = any free port."
        ),
    )
    egress_dataplane: str = field(
        default="proxy",
        metadata=about(
            Choice(("proxy", "grpcio"), upper=False),
            "gRPC egress: proxy (stream-level HTTP/2, routes by :authority or x-sidecar-target) "
            "or grpcio (grpc.aio, x-sidecar-target only).",
        ),
    )
    egress_http_port: int = field(
        default=15080,
        metadata=about(
            Int(0, 65535, "PORT"),
            "Loopback HTTP egress port: /{service}/{path}, or Host: {service}, or an HTTP proxy"
            " for http://{service}/{path}; 0 = any free port.",
        ),
    )
    egress_policy_file: str = field(
        default="",
        metadata=about(
            Text(describe="a path"),
            "YAML of egress policies (balancer, retries, breakers, ejection) per target service.",
        ),
    )
    inference_policy_file: str = field(
        default="",
        metadata=about(
            Text(describe="a path", metavar="PATH"),
            "YAML of per-model payload capture (CloudEvents to HTTP, Kafka, a file) and dynamic batching.",
        ),
    )
    log_level: str = field(
        default="INFO",
        metadata=about(
            Choice(("DEBUG", "INFO", "WARNING", "ERROR"), upper=True, metavar="LEVEL"),
            "Least severe log records written.",
        ),
    )
    metrics: bool = field(
        default=True,
        metadata=about(Switch(), "Prometheus metrics at GET /metrics on the HTTP port."),
    )
    tracing: bool = field(
        default=False,
        metadata=about(
            Switch(), "OpenTelemetry tracing: a server span per call, a client span per upstream attempt."
        ),
    )
    trace_propagation: tuple[str, ...] = field(
        default=("w3c",),
        metadata=about(
            Choices(("w3c", "b3", "b3multi")),
            "Trace headers sent upstream (W3C traceparent, B3 single, B3 multi); all are read from callers.",
        ),
    )
    trace_sample_ratio: float = field(
        default=1.0,
        metadata=about(
            Ratio(), "Share of new traces sampled (parentbased_traceidratio: a caller's decision wins)."
        ),
    )
    trace_exporter: str = field(
        default="otlp",
        metadata=about(
            Choice(("otlp", "file"), upper=False),
            "Where spans go: OTLP over gRPC to otlp_endpoint, or JSON lines appended to trace_file.",
        ),
    )
    otlp_endpoint: str = field(
        default="http://localhost:4317",
        metadata=about(
            Text(r"https?://[^\s/]+/?", "an http(s):// URL of host:port", empty=False, metavar="URL"),
            "OTLP/gRPC collector (http:// plaintext, https:// TLS).",
        ),
    )
    trace_file: str = field(
        default="",
        metadata=about(
            Text(describe="a path", metavar="PATH"), "File spans are appended to when trace_exporter is file."
        ),
    )
    access_log: str = field(
        default="off",
        metadata=about(
            Mode(("off", "on", "sampled")),
            "JSON access log on stdout: every call, or sampled (failures and access_log_sample_ratio"
            " of the rest).",
        ),
    )
    access_log_sample_ratio: float = field(
        default=0.01,
        metadata=about(Ratio(), "Share of successful calls logged when access_log is sampled."),
    )
    policy_file: str = field(
        default="",
        metadata=about(
            Text(describe="a path", metavar="PATH"),
            "Governance policy document (limits, JWT, RBAC, admission, egress), watched and hot-reloaded.",
        ),
    )
    policy_config_server: str = field(
        default="",
        metadata=about(
            Text(r"https?://\S+", "an http(s):// URL", metavar="URL"),
            "Spring Cloud Config Server the policy document is polled from (instead of policy_file).",
        ),
    )
    policy_config_name: str = field(
        default="",
        metadata=about(
            Text(r"[A-Za-z0-9._,-]+", "an application name"),
            "Application name asked of the Config Server; empty = app_name.",
        ),
    )
    policy_config_profile: str = field(
        default="default",
        metadata=about(Text(r"[A-Za-z0-9._,-]+", "a profile list"), "Config Server profile(s)."),
    )
    policy_config_label: str = field(
        default="",
        metadata=about(Text(r"[A-Za-z0-9._()-]+", "a label"), "Config Server label; empty = its default."),
    )
    policy_poll_interval: float = field(
        default=5.0,
        metadata=about(
            Duration(positive=True), "Time between polls of the policy (the file's hash, or Config Server)."
        ),
    )
    jwks_file: str = field(
        default="",
        metadata=about(
            Text(describe="a path", metavar="PATH"), "JWKS file the policy's jwt section checks tokens with."
        ),
    )
    jwks_url: str = field(
        default="",
        metadata=about(
            Text(r"https?://\S+", "an http(s):// URL", metavar="URL"),
            "JWKS URL the policy's jwt section verifies tokens with (instead of jwks_file).",
        ),
    )
    jwks_refresh_interval: float = field(
        default=300.0,
        metadata=about(Duration(positive=True), "Time between JWKS fetches."),
    )
    jwks_cooldown: float = field(
        default=30.0,
        metadata=about(
            Duration(positive=False), "Least time between JWKS fetches that tokens with unknown kids trigger."
        ),
    )
    redis_address: str = field(
        default="",
        metadata=about(
            Text(r"[^\s/]+:\d+", "HOST:PORT", metavar="HOST:PORT"),
            "Redis for global rate limits (the policy's rate_limits.mode: global); empty = none.",
        ),
    )
    redis_timeout: float = field(
        default=0.01,
        metadata=about(
            Duration(positive=True), "Longest a call waits for Redis before the limits' failure mode decides."
        ),
    )


def _in_shown_order() -> list[dataclasses.Field[Any]]:
    """SidecarConfig's fields in the order they were added, which --help and README's table show.

    dataclasses.fields lists the base's first; the relay's connection bounds were added after
    rest_timeout, and its HTTP/2 limits last.
    """
    relay = dataclasses.fields(RelaySettings)
    connections = [f for f in relay if f.name.startswith("relay_")]
    shown: list[dataclasses.Field[Any]] = []
    for f in dataclasses.fields(SidecarConfig)[len(relay) :]:
        shown.append(f)
        if f.name == "rest_timeout":
            shown += connections
    return shown + [f for f in relay if f not in connections]


SETTINGS: Final[tuple[Setting, ...]] = rows(_in_shown_order())
_NAMES: Final = frozenset(s.name for s in SETTINGS)
_NAME_BY_ENV: Final = {s.env: s.name for s in SETTINGS}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `--config` and one flag per setting; every flag defaults to None, meaning "not given"."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"YAML file of settings, keyed by name as below. [env {CONFIG_ENV}]",
    )
    for s in SETTINGS:
        default = f"default: {s.shown_default()}" if not s.required else "required"
        parser.add_argument(
            s.flag,
            dest=s.name,
            metavar=s.kind.metavar,
            action="append" if s.repeatable else "store",
            help=f"{s.help} [env {s.env}; {default}]".replace("%", "%%"),
        )


class _RaisingParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def load_config(argv: Sequence[str], environ: Mapping[str, str]) -> SidecarConfig:
    """The config from the arguments after `ai-sidecar run`, `environ` and the file they name."""
    parser = _RaisingParser(prog="ai-sidecar run", allow_abbrev=False)
    add_arguments(parser)
    return from_arguments(parser.parse_args(list(argv)), environ)


def from_arguments(args: argparse.Namespace, environ: Mapping[str, str]) -> SidecarConfig:
    """The config from flags parsed by a parser `add_arguments` set up, `environ` and the file."""
    flags: Layer = {}
    for s in SETTINGS:
        raw = getattr(args, s.name, None)
        if raw is not None:
            flags[s.name] = (raw, s.flag)
    path = getattr(args, "config", None) or environ.get(CONFIG_ENV) or None
    file = read_file(path, _NAMES) if path is not None else {}
    env = read_environ(environ, _NAME_BY_ENV)

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for s in SETTINGS:
        found = flags.get(s.name) or env.get(s.name) or file.get(s.name)
        if found is None:
            if s.required:
                raise ConfigError(f"{s.name} is required ({s.flag} or {s.env})")
            values[s.name], sources[s.name] = s.default, "default"
            continue
        raw, source = found
        try:
            values[s.name], sources[s.name] = s.kind.parse(raw), source
        except Invalid as e:
            raise ConfigError(f"{s.name}: {e} (from {source})") from None

    if values["prefer_ip_address"] is None:
        # Spring's prefer-ip-address: in Kubernetes a pod's own host name does not resolve.
        values["prefer_ip_address"] = KUBERNETES_ENV in environ and not values["advertise_host"]
    config_rules.check(values, sources)
    return SidecarConfig(**values)
