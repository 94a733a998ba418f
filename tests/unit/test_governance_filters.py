"""The governance filters and the policy store, on plain Calls (no transport), with real parts."""

from __future__ import annotations

import asyncio

import pytest

from sidecar.admission.limits import FixedLimit
from sidecar.admission.queue import Admission
from sidecar.auth.keys import NO_KEYS
from sidecar.core.call import Call, Outcome
from sidecar.core.clock import FakeClock
from sidecar.core.deadline import Deadline
from sidecar.core.status import Code
from sidecar.filters.admission import AdmissionFilter
from sidecar.filters.auth import AuthFilter
from sidecar.filters.chain import build_chain
from sidecar.filters.rate_limit import RateLimitFilter
from sidecar.filters.rbac import RbacFilter
from sidecar.governance.active import PolicyStore
from sidecar.governance.stats import GovernanceStats
from sidecar.policy.reader import PolicyError
from sidecar.ratelimit.bucket import BucketTable

INFER = "/inference.GRPCInferenceService/ModelInfer"


def store(doc: dict[str, object], check=lambda policy: None) -> PolicyStore:
    s = PolicyStore(
        static_settings=frozenset({"grpc_port"}), check=check, keys=lambda: NO_KEYS,
        on_unknown_kid=lambda: None, stats=GovernanceStats(),
    )  # fmt: skip
    assert s.offer(doc, "test", kind="file"), s.last_error
    return s


def call(
    *metadata: tuple[str, str], method: str = INFER, model: str = "digits", peer: str = "ipv4:10.1.2.3:5000"
) -> Call:
    return Call(
        method=method, metadata=list(metadata), deadline=None, protocol="grpc", peer=peer, model=model
    )


async def reached(c: Call) -> Outcome:
    c.governance = c.governance or "reached"
    return Outcome(Code.OK)


async def test_identity_from_the_header_else_the_peer_and_class_from_the_policy():
    s = store({"identity": {"classes": {"gold": ["checkout"]}}})
    chain = build_chain([AuthFilter(lambda: s.current, GovernanceStats())], reached)
    c = call(("x-client-id", "checkout"))
    await chain(c)
    assert (c.client_id, c.client_class) == ("checkout", "gold")
    c = call()
    await chain(c)
    assert (c.client_id, c.client_class) == ("10.1.2.3", "default")


async def test_claim_headers_are_stripped_even_without_a_token():
    s = store(
        {"jwt": {"issuers": ["i"], "audiences": ["a"], "required": False, "forward_claims": {"sub": "x-sub"}}}
    )
    chain = build_chain([AuthFilter(lambda: s.current, GovernanceStats())], reached)
    c = call(("x-sub", "admin"), ("x-other", "kept"))
    assert (await chain(c)).ok
    assert c.metadata == [("x-other", "kept")]


async def test_a_required_token_that_is_missing_or_doubled_is_unauthenticated():
    s = store({"jwt": {"issuers": ["i"], "audiences": ["a"]}})
    stats = GovernanceStats()
    chain = build_chain([AuthFilter(lambda: s.current, stats)], reached)
    out = await chain(call())
    assert out.code is Code.UNAUTHENTICATED and "no bearer token" in out.message
    out = await chain(call(("authorization", "Bearer a.b.c"), ("authorization", "Bearer a.b.c")))
    assert out.code is Code.UNAUTHENTICATED and "2 authorization headers" in out.message
    out = await chain(call(("authorization", "Basic dXNlcg==")))
    assert out.code is Code.UNAUTHENTICATED
    assert stats.auth_failures == {"missing": 1, "duplicate": 1, "malformed": 1}


async def test_rbac_denies_with_the_reason_and_exempts_health_calls():
    s = store({"rbac": {"rules": [{"action": "allow", "models": ["digits"]}]}})
    chain = build_chain(
        [AuthFilter(lambda: s.current, GovernanceStats()), RbacFilter(lambda: s.current, GovernanceStats())],
        reached,
    )
    assert (await chain(call(model="digits"))).ok
    out = await chain(call(model="secret"))
    assert out.code is Code.PERMISSION_DENIED and 'model "secret"' in out.message
    assert (await chain(call(method="/inference.GRPCInferenceService/ServerReady", model=""))).ok


async def test_a_limited_call_gets_resource_exhausted_with_pushback():
    s = store(
        {
            "rate_limits": {
                "default": {"rate": 1, "burst": 1},
                "overrides": [{"clients": ["vip"], "rate": 100, "burst": 5}],
            }
        }
    )
    clock = FakeClock()
    stats = GovernanceStats()
    chain = build_chain(
        [
            AuthFilter(lambda: s.current, stats),
            RateLimitFilter(lambda: s.current, stats, BucketTable(10, clock), None),
        ],
        reached,
    )
    assert (await chain(call(("x-client-id", "a")))).ok
    out = await chain(call(("x-client-id", "a")))
    assert out.code is Code.RESOURCE_EXHAUSTED
    assert out.trailing_metadata == [("grpc-retry-pushback-ms", "1000")]
    assert all([(await chain(call(("x-client-id", "vip")))).ok for _ in range(5)])
    assert stats.decisions[("rate_limit", "default", "limited")] == 1


async def test_admission_queues_wakes_and_sheds_with_a_reason():
    s = store({"admission": {"limit": "fixed", "max_concurrency": 1, "queue": {"size": 1}}})
    admission = Admission(FixedLimit(1), queue_size=1, priorities=1, clock=FakeClock())
    release = asyncio.Event()

    async def slow(c: Call) -> Outcome:
        await release.wait()
        return Outcome(Code.OK)

    chain = build_chain([AdmissionFilter(lambda: s.current, GovernanceStats(), lambda: admission)], slow)
    first = asyncio.ensure_future(chain(call()))
    queued = asyncio.ensure_future(chain(call()))
    await asyncio.sleep(0)
    assert admission.queued == 1
    shed = await chain(call())
    assert shed.code is Code.RESOURCE_EXHAUSTED and "queue full" in shed.message
    release.set()
    assert (await first).ok and (await queued).ok
    assert admission.in_flight == 0


async def test_a_queued_call_is_shed_at_its_deadline():
    s = store({"admission": {"limit": "fixed", "max_concurrency": 1, "queue": {"size": 5}}})
    admission = Admission(FixedLimit(1), queue_size=5, priorities=1, clock=FakeClock())
    hold = asyncio.Event()

    async def slow(c: Call) -> Outcome:
        await hold.wait()
        return Outcome(Code.OK)

    chain = build_chain([AdmissionFilter(lambda: s.current, GovernanceStats(), lambda: admission)], slow)
    first = asyncio.ensure_future(chain(call()))
    await asyncio.sleep(0)
    waiting = call()
    waiting.deadline = Deadline.after(0.05)
    out = await chain(waiting)
    assert out.code is Code.RESOURCE_EXHAUSTED and "until its deadline" in out.message
    assert admission.queued == 0
    hold.set()
    await first


async def test_the_relay_sheds_where_others_queue():
    s = store({"admission": {"limit": "fixed", "max_concurrency": 1, "queue": {"size": 5}}})
    admission = Admission(FixedLimit(1), queue_size=5, priorities=1, clock=FakeClock())
    admission.acquire(0, None)
    f = AdmissionFilter(lambda: s.current, GovernanceStats(), lambda: admission, queueing=False)
    out = await build_chain([f], reached)(call())
    assert out.code is Code.RESOURCE_EXHAUSTED and "concurrency limit 1 reached" in out.message


def test_an_invalid_policy_keeps_the_active_one_and_is_counted():
    s = store({"version": "good"})
    seen: list[str] = []
    s.watch(lambda old, new: seen.append(new.version))
    assert not s.offer({"rate_limits": {"default": {"rate": 0}}}, "test", kind="file")
    assert s.current.version == "good" and "rate_limits.default.rate" in s.last_error
    assert not s.offer({"grpc_port": 1}, "test", kind="file")
    assert s.offer({"version": "good"}, "test", kind="file")  # unchanged
    assert s.offer({"version": "next"}, "test", kind="file")
    assert seen == ["next"]
    stats = s._stats
    assert stats.reloads == {("file", "ok"): 2, ("file", "invalid"): 2, ("file", "unchanged"): 1}


def test_the_check_refuses_what_the_document_cannot_know():
    def needs_redis(policy) -> None:
        if policy.rate_limits.mode == "global":
            raise PolicyError("rate_limits.mode: global needs the redis_address setting")

    s = store({}, check=needs_redis)
    assert not s.offer({"rate_limits": {"mode": "global", "default": {"rate": 1}}}, "t", kind="file")
    assert "redis_address" in s.last_error


@pytest.mark.parametrize("peer", ["ipv6:[::1]:5000", "::1"])
async def test_ipv6_peers_are_named_by_address(peer: str):
    s = store({})
    c = call(peer=peer)
    await build_chain([AuthFilter(lambda: s.current, GovernanceStats())], reached)(c)
    assert c.client_id == "::1"


async def test_a_verified_caller_is_never_named_by_a_header(monkeypatch: pytest.MonkeyPatch):
    s = store({"jwt": {"issuers": ["i"], "audiences": ["a"]}, "identity": {"claim": "client_id"}})
    verifier = s.current.verifier
    assert verifier is not None
    monkeypatch.setattr(verifier, "verify", lambda token: {"sub": "alice"})
    c = call(("authorization", "Bearer t"), ("x-client-id", "admin"))
    assert (await build_chain([AuthFilter(lambda: s.current, GovernanceStats())], reached)(c)).ok
    assert c.client_id == "alice"
