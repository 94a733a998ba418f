"""Governance metrics (auth, RBAC, rate limits, admission, policy reloads, JWKS, Redis), read at scrape time.

Every label is bounded: client classes are the policy's (anything else was already folded into
the default class by the auth filter), decisions and reasons are fixed words. Knows nothing
about filters; it reads the counters and state the governance assembly keeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sidecar.governance.stats import GovernanceStats

PREFIX = "ai_sidecar"


class GovernanceView(Protocol):
    stats: GovernanceStats

    def describe(self) -> dict[str, object]: ...


class GovernanceCollector(Collector):
    def __init__(self, governance: GovernanceView) -> None:
        self._g = governance

    def collect(self) -> Iterator[Metric]:
        stats = self._g.stats
        d = CounterMetricFamily(
            f"{PREFIX}_governance_decisions",
            "Calls each governance filter admitted, limited, denied or shed, by client class.",
            labels=("filter", "client_class", "decision"),
        )
        for (f, c, decision), n in sorted(stats.decisions.items()):
            d.add_metric((f, c, decision), float(n))
        yield d
        a = CounterMetricFamily(
            f"{PREFIX}_auth_failures", "Calls refused UNAUTHENTICATED, by reason.", labels=("reason",)
        )
        for reason, n in sorted(stats.auth_failures.items()):
            a.add_metric((reason,), float(n))
        yield a
        r = CounterMetricFamily(
            f"{PREFIX}_policy_reloads",
            "Policy documents offered, by source and result (ok, invalid, unchanged, unreachable).",
            labels=("source", "result"),
        )
        for (source, result), n in sorted(stats.reloads.items()):
            r.add_metric((source, result), float(n))
        yield r
        state = self._g.describe()
        info = GaugeMetricFamily(
            f"{PREFIX}_policy_info", "The active policy's version and sha256; always 1.",
            labels=("version", "sha256"),
        )  # fmt: skip
        info.add_metric((str(state["version"])[:64], str(state["sha256"])), 1.0)
        yield info
        failures = CounterMetricFamily(
            f"{PREFIX}_ratelimit_redis_failures",
            "Global rate-limit checks Redis could not answer in time, by the failure mode that decided.",
            labels=("failure_mode",),
        )
        for mode, n in sorted(stats.redis_failures.items()):
            failures.add_metric((mode,), float(n))
        yield failures
        redis = state.get("redis")
        if isinstance(redis, dict):
            up = 1.0 if redis["up"] else 0.0
            yield GaugeMetricFamily(
                f"{PREFIX}_ratelimit_redis_up", "1 while the Redis connection is up.", value=up
            )
        evictions = CounterMetricFamily(
            f"{PREFIX}_ratelimit_bucket_evictions",
            "Client buckets evicted from the full table: full ones (lossless) or not.",
            labels=("kind",),
        )
        for kind, n in sorted(stats.bucket_evictions.items()):
            evictions.add_metric((kind,), float(n))
        yield evictions
        adm = state.get("admission")
        if isinstance(adm, dict):
            for key, doc in (("limit", "The admission concurrency limit now."),
                             ("in_flight", "Calls admitted to the model now."),
                             ("queued", "Calls waiting in the admission queue now.")):  # fmt: skip
                yield GaugeMetricFamily(f"{PREFIX}_admission_{key}", doc, value=float(adm[key]))
        jwks = state.get("jwks")
        if isinstance(jwks, dict):
            g = GaugeMetricFamily(f"{PREFIX}_jwks_state", "1 for the key set's state.", labels=("state",))
            for s in ("ok", "stale", "none"):
                g.add_metric((s,), 1.0 if jwks["state"] == s else 0.0)
            yield g
            yield GaugeMetricFamily(
                f"{PREFIX}_jwks_keys", "Keys in the key set in use.", value=float(len(jwks["keys"]))
            )
