"""Governance counters kept as plain integers on the event loop's thread; read at scrape time.

prometheus_client's counters take a lock per increment; these are dict increments. Labels are
bounded: client classes come from the policy (anything else reads "other"), reasons are fixed
words. Knows nothing about Prometheus (sidecar/telemetry/prometheus.py exposes these).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field


@dataclass(slots=True)
class GovernanceStats:
    # (filter, client class, decision) -> calls: decision is admitted / limited / denied / shed / ...
    decisions: collections.Counter[tuple[str, str, str]] = field(default_factory=collections.Counter)
    # auth failures by reason (bounded: sidecar/auth/verifier.py's reasons)
    auth_failures: collections.Counter[str] = field(default_factory=collections.Counter)
    # policy reloads by (source, result): ok / invalid / unchanged / unreachable
    reloads: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    # global rate limit: Redis errors that took the configured failure mode
    redis_failures: collections.Counter[str] = field(default_factory=collections.Counter)
    bucket_evictions: dict[str, int] = field(default_factory=lambda: {"full": 0, "not_full": 0})

    def count(self, filter: str, client_class: str, decision: str) -> None:
        self.decisions[(filter, client_class, decision)] += 1
