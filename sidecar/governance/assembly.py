"""Governance as the config asks for it: the policy and its source, JWKS, Redis, and the filters.

Without a policy setting nothing is built and no filter goes in the chain. Otherwise the
filters (auth, RBAC, rate limit, admission, in that order, after the readiness gate) read the
active policy; background tasks fetch keys, reload the policy and keep Redis connected. Until
a first valid policy is loaded from a Config Server, or while a jwt section has no key set yet,
readiness is held, so a sidecar never serves unprotected calls it was asked to protect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pathlib
import time
from collections.abc import Callable

import aiohttp

from sidecar.admission.limits import AimdLimit, FixedLimit, GradientLimit, Limit
from sidecar.admission.queue import Admission
from sidecar.auth.jwks_source import JwksSource
from sidecar.auth.keys import NO_KEYS, KeySet
from sidecar.config import SETTINGS, SidecarConfig
from sidecar.core.errors import ConfigError
from sidecar.core.tasks import supervised
from sidecar.egress.policy import EgressPolicies
from sidecar.filters.admission import AdmissionFilter
from sidecar.filters.auth import AuthFilter
from sidecar.filters.chain import Filter
from sidecar.filters.rate_limit import RateLimitFilter
from sidecar.filters.rbac import RbacFilter
from sidecar.governance.active import Active, PolicyStore
from sidecar.governance.stats import GovernanceStats
from sidecar.health.readiness import Readiness
from sidecar.policy import config_server, file_source
from sidecar.policy.document import Policy
from sidecar.policy.reader import PolicyError
from sidecar.ratelimit.bucket import BucketTable
from sidecar.ratelimit.redis_client import RedisClient
from sidecar.ratelimit.redis_limiter import GlobalLimiter

log = logging.getLogger("sidecar.policy")

STATIC_SETTINGS = frozenset(s.name for s in SETTINGS)
_HOLD_POLICY = "policy"
_HOLD_JWKS = "jwks"


class Governance:
    def __init__(
        self,
        config: SidecarConfig,
        readiness: Readiness,
        *,
        egress: Callable[[EgressPolicies], None] = lambda policies: None,
        egress_default: EgressPolicies | None = None,
    ) -> None:
        self._config = config
        self._readiness = readiness
        self._egress = egress
        self._egress_default = egress_default or EgressPolicies()
        self.enabled = bool(config.policy_file or config.policy_config_server)
        self.stats = GovernanceStats()
        self.jwks: JwksSource | None = None
        if config.jwks_file or config.jwks_url:
            self.jwks = JwksSource(
                file=config.jwks_file,
                url=config.jwks_url,
                refresh=config.jwks_refresh_interval,
                cooldown=config.jwks_cooldown,
                on_change=self._on_keys,
            )
        self.redis: RedisClient | None = None
        self.limiter: GlobalLimiter | None = None
        if config.redis_address:
            host, _, port = config.redis_address.rpartition(":")
            self.redis = RedisClient(host.strip("[]"), int(port), timeout=config.redis_timeout)
            self.limiter = GlobalLimiter(self.redis, f"ai-sidecar:rl:{config.app_name}:")
        self.store = PolicyStore(
            static_settings=STATIC_SETTINGS,
            check=self._check,
            keys=self._keys,
            on_unknown_kid=self.jwks.request_refresh if self.jwks else lambda: None,
            stats=self.stats,
        )
        self.table = BucketTable(self.store.current.policy.rate_limits.max_clients, time.monotonic)
        self.admission: Admission | None = None
        self.store.watch(self._on_policy)
        self._file: file_source.FilePolicySource | None = None
        self._server: config_server.ConfigServerSource | None = None
        if config.policy_file:
            self._file = file_source.FilePolicySource(
                config.policy_file, self.store, poll_interval=config.policy_poll_interval
            )
            if not self._file.load():
                raise ConfigError(f"policy_file: {self.store.last_error}")
        elif config.policy_config_server:
            self._server = config_server.ConfigServerSource(
                config.policy_config_server,
                config.policy_config_name or config.app_name,
                config.policy_config_profile,
                config.policy_config_label,
                self.store,
                poll_interval=config.policy_poll_interval,
            )
            readiness.hold(_HOLD_POLICY, f"no policy loaded yet from {self._server.endpoint}")
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- what the request path reads

    def active(self) -> Active:
        return self.store.current

    def egress_policies(self) -> EgressPolicies | None:
        """The active policy's egress section; None: it has none."""
        return self.store.current.policy.egress

    def needs_model(self) -> bool:
        """Whether the active policy decides anything by model (the relay reads it only then)."""
        return self.store.current.needs_model

    def current_admission(self) -> Admission | None:
        return self.admission

    def filters(self, *, queueing: bool = True) -> list[Filter]:
        """The governance filters, in order; `queueing` False where a waiting call would hold
        others (the relay: sidecar/filters/admission.py)."""
        if not self.enabled:
            return []
        active = self.active
        return [
            AuthFilter(active, self.stats),
            RbacFilter(active, self.stats),
            RateLimitFilter(active, self.stats, self.table, self.limiter),
            AdmissionFilter(active, self.stats, self.current_admission, queueing=queueing),
        ]

    # -- control plane

    def _keys(self) -> KeySet:
        return self.jwks.current if self.jwks is not None else NO_KEYS

    def _check(self, policy: Policy) -> None:
        if policy.jwt is not None and self.jwks is None:
            raise PolicyError(
                "jwt: verifying tokens needs a key set: set jwks_file or jwks_url (static settings)"
            )
        if policy.rate_limits.mode == "global" and self.limiter is None:
            raise PolicyError("rate_limits.mode: global needs the redis_address setting")

    def _on_policy(self, old: Active, new: Active) -> None:
        self._readiness.hold(_HOLD_POLICY, None)
        self._hold_for_keys()
        policy = new.policy
        self.table.resize(policy.rate_limits.max_clients)
        a = policy.admission
        if a.limit == "off":
            self.admission = None
        elif self.admission is None or a != old.policy.admission:
            limit = _limit(policy)
            priorities = max(1, len(a.priorities) + 1)
            if self.admission is None:
                self.admission = Admission(
                    limit, queue_size=a.queue.size, priorities=priorities, clock=time.monotonic
                )
            else:
                self.admission.reconfigure(limit, queue_size=a.queue.size, priorities=priorities)
        if policy.egress != old.policy.egress:
            self._egress(policy.egress or self._egress_default)

    def _on_keys(self, keys: KeySet) -> None:
        self._hold_for_keys()

    def _hold_for_keys(self) -> None:
        needs = self.store.current.policy.jwt is not None and self.jwks is not None
        keys = self._keys()
        self._readiness.hold(
            _HOLD_JWKS, f"no JWKS key set ({keys.detail})" if needs and not keys.keys else None
        )

    async def start(self) -> None:
        if self.jwks is not None:
            self._tasks.append(supervised(self.jwks.run(), "jwks"))
        if self.redis is not None:
            self._tasks.append(supervised(self.redis.run(), "redis"))
        if self._file is not None:
            self._tasks.append(supervised(self._file.run(), "policy-file"))
        if self._server is not None:
            self._session = aiohttp.ClientSession()
            self._tasks.append(
                supervised(self._first_then_poll(self._server, self._session), "policy-config-server")
            )
        self._hold_for_keys()

    async def _first_then_poll(
        self, server: config_server.ConfigServerSource, session: aiohttp.ClientSession
    ) -> None:
        await server.load(session)
        await server.run(session)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()

    def describe(self) -> dict[str, object]:
        """GET /policy on the admin listener."""
        self.stats.bucket_evictions["full"] = self.table.evicted_full
        self.stats.bucket_evictions["not_full"] = self.table.evicted_not_full
        out = self.store.describe()
        out["file"] = str(pathlib.Path(self._config.policy_file)) if self._file else None
        out["file_watched"] = self._file.watching if self._file else None
        out["config_server"] = self._server.endpoint if self._server else None
        out["config_server_version"] = self._server.version if self._server else None
        out["jwks"] = self._keys().describe() if self.jwks else None
        out["redis"] = {"up": self.redis.up, "errors": dict(self.redis.errors)} if self.redis else None
        adm = self.admission
        out["admission"] = (
            {"limit": adm.limit, "in_flight": adm.in_flight, "queued": adm.queued}
            if adm is not None
            else None
        )
        return out


def _limit(policy: Policy) -> Limit:
    a = policy.admission
    if a.limit == "fixed":
        return FixedLimit(a.max_concurrency)
    if a.limit == "aimd":
        return AimdLimit(a.aimd)
    return GradientLimit(a.gradient, time.monotonic)
