"""RBAC rules and their verdict for one call. No I/O, nothing about transports.

A rule matches a call when every part it sets matches: its principal (each named claim holds one
of the listed values; `client` and `class` name the caller's identity and class), its methods
(exact gRPC paths, as the caller sent them: no case folding, no decoding, no trailing-slash
tricks) and its models (exact names; "*" is any, including none). Deny rules win over allow
rules; once any rule exists, a call no allow rule matches is denied (default deny). With no
rules at all every call is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from sidecar.core.call import Claims

ANY: Final = "*"
# Claims whose string value is a space-separated list (RFC 8693 section 4.2, RFC 9068).
_SPACE_SEPARATED: Final = frozenset({"scope", "scp"})


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    allow: bool
    # claim -> accepted values; "client" and "class" are the caller's identity and class.
    principals: Mapping[str, frozenset[str]] = field(default_factory=dict)
    methods: frozenset[str] = frozenset()  # empty: any method
    models: frozenset[str] = frozenset()  # empty: any model


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    reason: str


ALLOWED: Final = Verdict(True, "")


def claim_values(claims: Claims, name: str) -> frozenset[str]:
    value = claims.get(name)
    if isinstance(value, str):
        return frozenset(value.split()) if name in _SPACE_SEPARATED else frozenset((value,))
    if isinstance(value, list | tuple):
        return frozenset(v for v in value if isinstance(v, str))
    if isinstance(value, bool | int):
        return frozenset((str(value).lower() if isinstance(value, bool) else str(value),))
    return frozenset()


class Rbac:
    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.rules = rules
        self._deny = tuple(r for r in rules if not r.allow)
        self._allow = tuple(r for r in rules if r.allow)

    @property
    def enabled(self) -> bool:
        return bool(self.rules)

    def check(self, method: str, model: str, client: str, client_class: str, claims: Claims) -> Verdict:
        if not self.rules:
            return ALLOWED
        for rule in self._deny:
            if _matches(rule, method, model, client, client_class, claims):
                return Verdict(False, f'denied by rule "{rule.name}"')
        for rule in self._allow:
            if _matches(rule, method, model, client, client_class, claims):
                return ALLOWED
        what = f'model "{model}"' if model else "this call"
        return Verdict(False, f"no rule allows client {client!r} to call {method} on {what} (default deny)")


def _matches(rule: Rule, method: str, model: str, client: str, client_class: str, claims: Claims) -> bool:
    if rule.methods and method not in rule.methods:
        return False
    if rule.models and ANY not in rule.models and model not in rule.models:
        return False
    for name, wanted in rule.principals.items():
        if name == "client":
            if client not in wanted:
                return False
        elif name == "class":
            if client_class not in wanted:
                return False
        elif (ANY not in wanted or name not in claims) and not wanted & claim_values(claims, name):
            return False
    return True
