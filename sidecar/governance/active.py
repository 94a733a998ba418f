"""The active policy: a validated document compiled once, swapped atomically, kept when a new one is invalid.

`offer(doc, source)` parses and validates a document, compiles what the filters read (RBAC
rules, the token verifier, class priorities) and swaps the one reference filters read; a call
already past a filter is not looked at again, so calls in flight finish under the policy they
started with. An invalid document keeps the active one: the refusal is logged with the reason,
counted, and shown by GET /policy. No I/O: sources (sidecar/policy/*_source.py) bring documents.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from sidecar.auth.keys import KeySet
from sidecar.auth.verifier import Verifier
from sidecar.governance.stats import GovernanceStats
from sidecar.policy.document import EMPTY, Policy, parse
from sidecar.policy.reader import PolicyError
from sidecar.rbac.matcher import Rbac

log = logging.getLogger("sidecar.policy")


@dataclass(frozen=True, slots=True)
class Active:
    policy: Policy
    hash: str
    source: str
    loaded_at: float
    rbac: Rbac
    verifier: Verifier | None
    # client class -> queue priority (0 first); classes not listed come after every listed one.
    priorities: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    class_names: frozenset[str] = frozenset()
    # Some RBAC rule or rate-limit override names models: the relay must read each call's.
    needs_model: bool = False

    @property
    def version(self) -> str:
        return self.policy.version or self.hash[:12]

    def priority(self, client_class: str) -> int:
        return self.priorities.get(client_class, len(self.priorities))


def document_hash(doc: object) -> str:
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


Watcher = Callable[[Active, Active], None]


class PolicyStore:
    def __init__(
        self,
        *,
        static_settings: frozenset[str],
        check: Callable[[Policy], None],
        keys: Callable[[], KeySet],
        on_unknown_kid: Callable[[], None],
        stats: GovernanceStats,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """`check` refuses what the document alone cannot know is wrong (a JWT section without a
        JWKS setting, global limits without Redis) by raising PolicyError."""
        self._static = static_settings
        self._check = check
        self._keys = keys
        self._on_unknown_kid = on_unknown_kid
        self._stats = stats
        self._clock = wall_clock
        self._watchers: list[Watcher] = []
        self.current = self._compile(EMPTY, document_hash({}), "none")
        self.last_error = ""
        self.history: list[dict[str, object]] = []

    def watch(self, watcher: Watcher) -> None:
        self._watchers.append(watcher)

    def offer(self, doc: object, source: str, *, kind: str) -> bool:
        """Validate `doc` (parsed YAML/JSON) from `source` and make it active; False if it was refused.

        `kind` is the bounded metric label of the source ("file", "config_server")."""
        digest = document_hash(doc)
        if digest == self.current.hash:
            self._stats.reloads[(kind, "unchanged")] += 1
            return True
        try:
            policy = parse(doc, static_settings=self._static)
            self._check(policy)
            active = self._compile(policy, digest, source)
        except PolicyError as e:
            return self.refuse(source, kind, str(e))
        old, self.current = self.current, active
        self.last_error = ""
        self._stats.reloads[(kind, "ok")] += 1
        self._remember(source, "ok", active.version)
        log.info("policy: version %s (sha256 %s) from %s is active", active.version, digest[:12], source)
        for watcher in self._watchers:
            watcher(old, active)
        return True

    def unreachable(self, kind: str) -> None:
        """A source could not be read (not a refusal: no document came); the active one stays."""
        self._stats.reloads[(kind, "unreachable")] += 1

    def refuse(self, source: str, kind: str, why: str) -> bool:
        self.last_error = f"{source}: {why}"
        self._stats.reloads[(kind, "invalid")] += 1
        self._remember(source, f"invalid: {why}", "")
        log.error("policy from %s refused, keeping version %s: %s", source, self.current.version, why)
        return False

    def _remember(self, source: str, result: str, version: str) -> None:
        self.history.append({"time": self._clock(), "source": source, "result": result, "version": version})
        del self.history[:-20]

    def _compile(self, policy: Policy, digest: str, source: str) -> Active:
        verifier = None
        if policy.jwt is not None:
            verifier = Verifier(
                policy.jwt, self._keys, on_unknown_kid=self._on_unknown_kid, wall_clock=self._clock
            )
        priorities = {name: i for i, name in enumerate(policy.admission.priorities)}
        return Active(
            policy=policy,
            hash=digest,
            source=source,
            loaded_at=self._clock(),
            rbac=Rbac(policy.rules),
            verifier=verifier,
            priorities=MappingProxyType(priorities),
            class_names=frozenset(policy.class_names),
            needs_model=any(r.models for r in policy.rules)
            or any(o.models for o in policy.rate_limits.overrides),
        )

    def describe(self) -> dict[str, object]:
        a = self.current
        return {
            "version": a.version,
            "sha256": a.hash,
            "source": a.source,
            "loaded_at": a.loaded_at,
            "last_error": self.last_error or None,
            "history": list(self.history),
        }


def parse_error(source: str, e: Exception) -> PolicyError:
    return PolicyError(f"not valid YAML or JSON: {e}".replace("\n", " "))
