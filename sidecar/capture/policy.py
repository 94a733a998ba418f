"""Payload capture's settings: which calls are captured (rules per model and method), the sinks, the
event identity and the queue bounds; frozen, validated when read. Knows nothing about I/O.

The `capture` section of the inference policy file (docs in README.md, "Payload capture"):

    capture:
      inference_service: digits      # ce-inferenceservicename; default: app_name
      namespace: ml                  # ce-namespace
      endpoint: default              # ce-endpoint (KServe: default or canary)
      component: predictor           # ce-component
      source: http://digits.ml/      # ce-source; default http://localhost:{http_port}/ as KServe's agent
      queue_events: 10000            # per sink: events held while it is slow or down ...
      queue_bytes: 64MiB             # ... and their bytes; past either, events are dropped and counted
      batch_size: 100                # events a sink takes per send
      flush_interval: 20ms           # how long a sink waits for a batch to fill
      max_payload_bytes: 512KiB      # longer payloads are cut there, flagged and counted
      retry: {max_attempts: 5, base_backoff: 100ms, max_backoff: 5s}
      sinks:
        - http: {url: http://collector:8080/, timeout: 5s, connections: 8}
        - kafka: {bootstrap_servers: [kafka:9092], topic: inference, acks: all}
        - file: {path: /tmp/capture.jsonl}
      rules:
        - model: digits              # or "*"
          methods: [ModelInfer]      # default: ModelInfer and ModelStreamInfer
          ratio: 0.1
          mode: all                  # request | response | all (KServe's logger modes)
          redact: {inputs: [SSN], outputs: [], metadata: [x-user-email]}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from sidecar.config_section import Section
from sidecar.config_values import Choice, Duration, Int, KiB, MiB, Ratio, Size, Text
from sidecar.core.errors import ConfigError
from sidecar.oip import contract

MODES: Final = ("all", "request", "response")
# Metadata never put in an event, whatever the rules say: credentials have no place in a data lake.
ALWAYS_REDACTED: Final = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
DEFAULT_METHODS: Final = (contract.MODEL_INFER, contract.MODEL_STREAM_INFER)
ANY_MODEL: Final = "*"


@dataclass(frozen=True, slots=True)
class Redaction:
    """What an event leaves out: tensors by name, metadata keys (lower case)."""

    inputs: frozenset[str] = frozenset()
    outputs: frozenset[str] = frozenset()
    metadata: frozenset[str] = ALWAYS_REDACTED

    @property
    def tensors(self) -> bool:
        return bool(self.inputs or self.outputs)


@dataclass(frozen=True, slots=True)
class CaptureRule:
    model: str
    methods: frozenset[str]
    ratio: float
    requests: bool
    responses: bool
    redaction: Redaction = field(default_factory=Redaction)

    def matches(self, model: str) -> bool:
        return self.model == ANY_MODEL or self.model == model


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """Capped exponential backoff with full jitter between tries of one batch; then its events drop."""

    max_attempts: int = 5
    base_backoff: float = 0.1
    max_backoff: float = 5.0


@dataclass(frozen=True, slots=True)
class HttpSinkSettings:
    url: str
    timeout: float = 5.0
    connections: int = 8

    @property
    def name(self) -> str:
        return "http"


@dataclass(frozen=True, slots=True)
class KafkaSinkSettings:
    bootstrap_servers: tuple[str, ...]
    topic: str
    acks: str = "all"
    timeout: float = 10.0
    client_id: str = "ai-sidecar-capture"

    @property
    def name(self) -> str:
        return "kafka"


@dataclass(frozen=True, slots=True)
class FileSinkSettings:
    path: str

    @property
    def name(self) -> str:
        return "file"


SinkSettings = HttpSinkSettings | KafkaSinkSettings | FileSinkSettings


@dataclass(frozen=True, slots=True)
class EventIdentity:
    """The attributes every event of this sidecar carries (KServe's logger's flags of the same names)."""

    source: str
    inference_service: str
    namespace: str = ""
    endpoint: str = ""
    component: str = "predictor"


@dataclass(frozen=True, slots=True)
class CaptureSettings:
    identity: EventIdentity
    rules: tuple[CaptureRule, ...] = ()
    sinks: tuple[SinkSettings, ...] = ()
    queue_events: int = 10_000
    queue_bytes: int = 64 * MiB
    batch_size: int = 100
    flush_interval: float = 0.02
    max_payload_bytes: int = 512 * KiB
    retry: RetrySettings = field(default_factory=RetrySettings)

    @property
    def enabled(self) -> bool:
        return bool(self.rules)

    def rules_for(self, method: str) -> tuple[CaptureRule, ...]:
        return tuple(r for r in self.rules if method in r.methods)


def no_capture(app_name: str, http_port: int) -> CaptureSettings:
    return CaptureSettings(EventIdentity(_default_source(http_port), app_name))


def _default_source(http_port: int) -> str:
    return f"http://localhost:{http_port}/"


@dataclass(frozen=True)
class _Acks:
    """Kafka's producer acks: all, 1 or 0 (YAML reads a bare 1 as a number)."""

    metavar: str = "ACKS"

    def parse(self, raw: object) -> str:
        text = str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else raw
        return Choice(("all", "1", "0"), upper=False).parse(text)

    def show(self, value: str) -> str:
        return value


_NAME = Text(r"[A-Za-z0-9][A-Za-z0-9._-]*", "a name")
_URL = Text(r"https?://\S+", "an http(s):// URL", empty=False, metavar="URL")


def read_capture(section: Section, *, app_name: str, http_port: int) -> CaptureSettings:
    """The capture settings from the `capture` section; raises ConfigError naming the bad key."""
    s = section
    identity = EventIdentity(
        source=s.value("source", Text(r"\S+", "a URI reference", empty=False), _default_source(http_port)),
        inference_service=s.value("inference_service", _NAME, app_name),
        namespace=s.value("namespace", Text(r"[a-z0-9.-]*", "a namespace"), ""),
        endpoint=s.value("endpoint", Text(r"[A-Za-z0-9._-]*", "an endpoint name"), ""),
        component=s.value("component", Text(r"[A-Za-z0-9._-]*", "a component name"), "predictor"),
    )
    retry_s = s.section("retry")
    retry = RetrySettings(
        max_attempts=retry_s.value("max_attempts", Int(1, 100), 5),
        base_backoff=retry_s.value("base_backoff", Duration(positive=True), 0.1),
        max_backoff=retry_s.value("max_backoff", Duration(positive=True), 5.0),
    )
    retry_s.done()
    if retry.max_backoff < retry.base_backoff:
        raise retry_s.fail("max_backoff must be at least base_backoff")
    settings = CaptureSettings(
        identity=identity,
        rules=tuple(_rule(r) for r in s.sections("rules")),
        sinks=tuple(_sink(k) for k in s.sections("sinks")),
        queue_events=s.value("queue_events", Int(1, 10_000_000), 10_000),
        queue_bytes=s.value("queue_bytes", Size(KiB, 2**40), 64 * MiB),
        batch_size=s.value("batch_size", Int(1, 10_000), 100),
        flush_interval=s.value("flush_interval", Duration(positive=False), 0.02),
        max_payload_bytes=s.value("max_payload_bytes", Size(1, 2**31 - 1), 512 * KiB),
        retry=retry,
    )
    s.done()
    if settings.rules and not settings.sinks:
        raise s.fail("rules capture calls, but there are no sinks to send their events to")
    if settings.max_payload_bytes > settings.queue_bytes:
        raise s.fail("max_payload_bytes must not be more than queue_bytes (one event must fit)")
    names = [k.name for k in settings.sinks]
    for name in set(names):
        if names.count(name) > 1:
            raise s.fail(f"sinks: {name} appears {names.count(name)} times; one sink of each kind")
    return settings


def _rule(s: Section) -> CaptureRule:
    model = s.required("model", Text(r"\*|[A-Za-z0-9][A-Za-z0-9._-]*", 'a model name or "*"'))
    methods = s.strings("methods")
    paths = []
    for m in methods:
        path = contract.PATHS.get(m, m)
        if path not in contract.METHODS:
            raise ConfigError(f"{s.at('methods')}: {m!r} is not an OIP method (e.g. ModelInfer)")
        paths.append(path)
    mode = s.value("mode", Choice(MODES, upper=False), "all")
    redact = s.section("redact")
    redaction = Redaction(
        inputs=frozenset(redact.strings("inputs")),
        outputs=frozenset(redact.strings("outputs")),
        metadata=ALWAYS_REDACTED | {k.lower() for k in redact.strings("metadata")},
    )
    redact.done()
    rule = CaptureRule(
        model=model,
        methods=frozenset(paths or DEFAULT_METHODS),
        ratio=s.value("ratio", Ratio(), 1.0),
        requests=mode in ("all", "request"),
        responses=mode in ("all", "response"),
        redaction=redaction,
    )
    s.done()
    return rule


def _sink(s: Section) -> SinkSettings:
    kinds = [k for k in ("http", "kafka", "file") if s.has(k)]
    if len(kinds) != 1:
        raise s.fail("a sink is one of http, kafka, file, e.g. {http: {url: http://collector/}}")
    body = s.section(kinds[0])
    sink: SinkSettings
    if kinds[0] == "http":
        sink = HttpSinkSettings(
            url=body.required("url", _URL),
            timeout=body.value("timeout", Duration(positive=True), 5.0),
            connections=body.value("connections", Int(1, 1000), 8),
        )
    elif kinds[0] == "kafka":
        servers = body.strings("bootstrap_servers")
        if not servers:
            raise ConfigError(f"{body.at('bootstrap_servers')}: required (HOST:PORT, or a list of them)")
        sink = KafkaSinkSettings(
            bootstrap_servers=tuple(x for s_ in servers for x in s_.split(",") if x),
            topic=body.required("topic", Text(r"[A-Za-z0-9._-]{1,249}", "a Kafka topic name")),
            acks=body.value("acks", _Acks(), "all"),
            timeout=body.value("timeout", Duration(positive=True), 10.0),
            client_id=body.value("client_id", _NAME, "ai-sidecar-capture"),
        )
    else:
        sink = FileSinkSettings(path=body.required("path", Text(r"\S.*", "a path", empty=False)))
    body.done()
    s.done()
    return sink
