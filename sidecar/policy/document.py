"""The policy document: identity, JWT, RBAC, rate limits, admission and egress, as frozen dataclasses.

`parse(doc)` validates a parsed YAML/JSON mapping and returns a `Policy`, or raises PolicyError
naming the field (`rate_limits.overrides[1].burst: 0 must be at least 1`). A key that is a
static setting of the sidecar (a port, the model address) is refused with a message saying so:
those change only with a restart, and a document that tried would be half-applied. No I/O.

    version: "2025-06-01.3"        # optional; shown by GET /policy beside the document's hash
    identity: {claim: sub, header: x-client-id, class_claim: tier,
               classes: {gold: [checkout]}, default_class: standard}
    jwt: {required: true, issuers: [https://id.example], audiences: [digits],
          algorithms: [RS256, ES256, EdDSA], leeway: 30s, header: authorization,
          forward_claims: {sub: x-auth-sub}, forward_token: false}
    rbac: {rules: [{name: ops, action: allow, principals: {roles: [ops]},
                    methods: [ModelInfer], models: [digits]}]}
    rate_limits: {mode: local, failure_mode: open, default: {rate: 300, burst: 30},
                  overrides: [{clients: [batch], rate: 50, burst: 5}]}
    admission: {limit: gradient, gradient: {min_limit: 4, probe_limit: 2}, queue: {size: 64},
                priorities: [gold, standard]}
    egress: {default: {balancer: round_robin}}   # the egress policy file's format
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from sidecar.admission.limits import AimdSettings, GradientSettings
from sidecar.core.errors import ConfigError
from sidecar.egress.policy import EgressPolicies, policies_from
from sidecar.oip import contract
from sidecar.policy.reader import Fields, PolicyError
from sidecar.rbac.matcher import Rule

# The allow-list's ceiling: asymmetric algorithms only ("none" and HS* never, whatever is asked).
# "Ed25519" is EdDSA's fully specified name (RFC 9864).
SUPPORTED_ALGORITHMS: Final = ("RS256", "ES256", "EdDSA", "Ed25519")
DEFAULT_CLASS: Final = "default"


@dataclass(frozen=True, slots=True)
class Identity:
    claim: str = "sub"
    header: str = "x-client-id"
    class_claim: str = ""
    classes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # client -> class
    class_names: tuple[str, ...] = ()
    default_class: str = DEFAULT_CLASS


@dataclass(frozen=True, slots=True)
class Jwt:
    required: bool = True
    issuers: frozenset[str] = frozenset()
    audiences: frozenset[str] = frozenset()
    algorithms: frozenset[str] = frozenset({"RS256", "ES256", "EdDSA", "Ed25519"})
    leeway: float = 30.0
    header: str = "authorization"
    max_token_bytes: int = 8192
    require_exp: bool = True
    forward_claims: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # claim -> header
    forward_token: bool = False
    cache_size: int = 10_000


@dataclass(frozen=True, slots=True)
class Rate:
    rate: float  # calls per second
    burst: float
    cost: float = 1.0


@dataclass(frozen=True, slots=True)
class Override:
    index: int
    rate: Rate
    clients: frozenset[str] = frozenset()
    classes: frozenset[str] = frozenset()
    methods: frozenset[str] = frozenset()
    models: frozenset[str] = frozenset()
    shared: bool = False  # one bucket for every client it matches, instead of one per client


@dataclass(frozen=True, slots=True)
class RateLimits:
    mode: str = "local"
    failure_mode: str = "open"
    default: Rate | None = None
    overrides: tuple[Override, ...] = ()
    max_clients: int = 100_000

    @property
    def enabled(self) -> bool:
        return self.default is not None or bool(self.overrides)


@dataclass(frozen=True, slots=True)
class Queue:
    size: int = 0
    timeout: float = 0.0  # 0: only the deadline bounds a wait


@dataclass(frozen=True, slots=True)
class Admission:
    limit: str = "off"  # off | fixed | gradient | aimd
    max_concurrency: int = 0  # for fixed
    gradient: GradientSettings = field(default_factory=GradientSettings)
    aimd: AimdSettings = field(default_factory=AimdSettings)
    queue: Queue = field(default_factory=Queue)
    priorities: tuple[str, ...] = ()  # client classes, first served first; others after them


@dataclass(frozen=True, slots=True)
class Policy:
    version: str = ""
    identity: Identity = field(default_factory=Identity)
    jwt: Jwt | None = None
    rules: tuple[Rule, ...] = ()
    rate_limits: RateLimits = field(default_factory=RateLimits)
    admission: Admission = field(default_factory=Admission)
    egress: EgressPolicies | None = None  # None: the egress policy file's, as at start-up

    @property
    def class_names(self) -> tuple[str, ...]:
        """Every client class the document names: the bounded label set of the metrics."""
        names = [self.identity.default_class, *self.identity.class_names, *self.admission.priorities]
        return tuple(dict.fromkeys(names))


EMPTY: Final = Policy()


def parse(doc: object, *, static_settings: frozenset[str] = frozenset()) -> Policy:
    top = Fields(doc, "")
    for key in top.spelled_keys():
        name = str(key).replace("-", "_")
        if name in static_settings:
            raise PolicyError(
                f"{key}: a static setting of the sidecar, not a policy; it changes only with a restart"
                f" (--{name.replace('_', '-')} or SIDECAR_{name.upper()})"
            )
    version = top.raw("version", "")
    if not isinstance(version, str | int | float) or isinstance(version, bool):
        raise PolicyError(f"version: {version!r} is not a string")
    identity = _identity(top.sub("identity"))
    jwt = _jwt(top.sub("jwt")) if top.has("jwt") and top.raw("jwt") is not None else None
    top.raw("jwt")
    rules = _rules(top.sub("rbac"))
    limits = _rate_limits(top.sub("rate_limits"))
    admission = _admission(top.sub("admission"))
    egress = None
    if top.has("egress"):
        try:
            egress = policies_from(top.raw("egress") or {}, "egress")
        except ConfigError as e:
            raise PolicyError(str(e)) from None
    top.done()
    return Policy(str(version), identity, jwt, rules, limits, admission, egress)


def _identity(f: Fields) -> Identity:
    classes: dict[str, str] = {}
    names: list[str] = []
    for name, clients in f.mapping("classes").items():
        at = f"{f.at('classes')}.{name}"
        if not isinstance(clients, list) or not all(isinstance(c, str) for c in clients):
            raise PolicyError(f"{at}: expected a list of client ids")
        names.append(name)
        for client in clients:
            if client in classes:
                raise PolicyError(f"{at}: client {client!r} is already in class {classes[client]!r}")
            classes[client] = name
    identity = Identity(
        claim=f.text("claim", "sub") or "sub",
        header=f.text("header", "x-client-id").lower(),
        class_claim=f.text("class_claim", ""),
        classes=MappingProxyType(classes),
        class_names=tuple(names),
        default_class=f.text("default_class", DEFAULT_CLASS) or DEFAULT_CLASS,
    )
    f.done()
    return identity


def _jwt(f: Fields) -> Jwt:
    algorithms = f.texts("algorithms") or ("RS256", "ES256", "EdDSA", "Ed25519")
    for alg in algorithms:
        if alg not in SUPPORTED_ALGORITHMS:
            raise PolicyError(
                f"{f.at('algorithms')}: {alg!r} is not allowed; the allow-list may hold"
                f" {', '.join(SUPPORTED_ALGORITHMS)} (never none or HS*)"
            )
    forward: dict[str, str] = {}
    for claim, header in f.mapping("forward_claims").items():
        if not isinstance(header, str) or not header or header.lower() != header or ":" in header:
            raise PolicyError(f"{f.at('forward_claims')}.{claim}: {header!r} is not a lower-case header name")
        forward[claim] = header
    jwt = Jwt(
        required=f.flag("required", True),
        issuers=frozenset(f.texts("issuers")),
        audiences=frozenset(f.texts("audiences")),
        algorithms=frozenset(algorithms),
        leeway=f.duration("leeway", 30.0),
        header=f.text("header", "authorization").lower(),
        max_token_bytes=f.integer("max_token_bytes", 8192, lo=64, hi=1 << 20),
        require_exp=f.flag("require_exp", True),
        forward_claims=MappingProxyType(forward),
        forward_token=f.flag("forward_token", False),
        cache_size=f.integer("cache_size", 10_000, lo=0, hi=10_000_000),
    )
    if not jwt.issuers:
        raise PolicyError(f"{f.at('issuers')}: required (the iss values a token may carry)")
    if not jwt.audiences:
        raise PolicyError(f"{f.at('audiences')}: required (the aud values a token must name one of)")
    f.done()
    return jwt


def method_paths(names: tuple[str, ...], at: str) -> frozenset[str]:
    """OIP method names ("ModelInfer") stand for their full path; others must be full paths."""
    paths = set()
    for name in names:
        if not name.startswith("/"):
            if "/" in name:
                raise PolicyError(
                    f"{at}: {name!r} is neither an OIP method name nor a /package.Service/Method path"
                )
            name = contract.path(name)
        paths.add(name)
    return frozenset(paths)


def _rules(f: Fields) -> tuple[Rule, ...]:
    rules = []
    for i, r in enumerate(f.items("rules")):
        action = r.text("action", "", allowed=("allow", "deny"))
        principals: dict[str, frozenset[str]] = {}
        for claim, values in r.mapping("principals").items():
            if isinstance(values, str):
                values = [values]
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values) or not values:
                raise PolicyError(f"{r.at('principals')}.{claim}: expected a non-empty list of strings")
            principals[claim] = frozenset(values)
        rules.append(
            Rule(
                name=r.text("name", f"rules[{i}]") or f"rules[{i}]",
                allow=action == "allow",
                principals=MappingProxyType(principals),
                methods=method_paths(r.texts("methods"), r.at("methods")),
                models=frozenset(r.texts("models")),
            )
        )
        r.done()
    f.done()
    return tuple(rules)


def _rate(f: Fields) -> Rate:
    return Rate(
        rate=f.number("rate", None, lo=0.0, above=True),
        burst=f.number("burst", 1.0, lo=1.0),
        cost=f.number("cost", 1.0, lo=0.0, above=True),
    )


def _rate_limits(f: Fields) -> RateLimits:
    default = None
    if f.has("default") and f.raw("default") is not None:
        d = f.sub("default")
        default = _rate(d)
        d.done()
    f.raw("default")
    overrides = []
    for i, o in enumerate(f.items("overrides")):
        overrides.append(
            Override(
                index=i,
                rate=_rate(o),
                clients=frozenset(o.texts("clients")),
                classes=frozenset(o.texts("classes")),
                methods=method_paths(o.texts("methods"), o.at("methods")),
                models=frozenset(o.texts("models")),
                shared=o.text("per", "client", allowed=("client", "all")) == "all",
            )
        )
        o.done()
    limits = RateLimits(
        mode=f.text("mode", "local", allowed=("local", "global")),
        failure_mode=f.text("failure_mode", "open", allowed=("open", "closed")),
        default=default,
        overrides=tuple(overrides),
        max_clients=f.integer("max_clients", 100_000, lo=1, hi=10_000_000),
    )
    for override in overrides:
        if override.rate.cost > override.rate.burst:
            raise PolicyError(
                f"rate_limits.overrides[{override.index}].cost: more than its burst, never admitted"
            )
    if default is not None and default.cost > default.burst:
        raise PolicyError("rate_limits.default.cost: more than its burst, never admitted")
    f.done()
    return limits


def _settings(cls: Any, f: Fields, ints: tuple[str, ...], floats: tuple[str, ...]) -> Any:
    base = cls()
    values: dict[str, Any] = {}
    for key in ints:
        values[key] = f.integer(key, getattr(base, key), lo=0)
    for key in floats:
        if key in ("timeout", "probe_interval"):
            values[key] = f.duration(key, getattr(base, key))
        else:
            values[key] = f.number(key, getattr(base, key))
    f.done()
    try:
        return cls(**values)
    except ValueError as e:
        raise PolicyError(f"{f.path}: {e}") from None


def _admission(f: Fields) -> Admission:
    limit = f.text("limit", "off", allowed=("off", "fixed", "gradient", "aimd"))
    gradient = _settings(
        GradientSettings, f.sub("gradient"),
        ("initial_limit", "min_limit", "max_limit", "probe_limit", "window", "probe_samples"),
        ("tolerance", "smoothing", "probe_interval"),
    )  # fmt: skip
    aimd = _settings(
        AimdSettings, f.sub("aimd"), ("initial_limit", "min_limit", "max_limit"), ("backoff", "timeout")
    )
    q = f.sub("queue")
    queue = Queue(size=q.integer("size", 0, lo=0, hi=100_000), timeout=q.duration("timeout", 0.0))
    q.done()
    admission = Admission(
        limit=limit,
        max_concurrency=f.integer("max_concurrency", 0, lo=0, hi=1_000_000),
        gradient=gradient,
        aimd=aimd,
        queue=queue,
        priorities=f.texts("priorities"),
    )
    if limit == "fixed" and admission.max_concurrency < 1:
        raise PolicyError(f"{f.at('max_concurrency')}: required (at least 1) when limit is fixed")
    f.done()
    return admission
