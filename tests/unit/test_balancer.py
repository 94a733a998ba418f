"""Pickers and load statistics, with seeded randomness and a fake clock."""

import collections
import math
import random

from sidecar.balancer.pickers import Pool, RoundRobin, Weighted, least_request, peak_ewma, zone_preferring
from sidecar.balancer.stats import EndpointStats
from sidecar.core.clock import FakeClock
from sidecar.discovery.endpoint import Endpoint


def eps(n: int, **kw: object) -> list[Endpoint]:
    return [Endpoint(app="S", instance_id=f"i{k}", host="h", http_port=k, grpc_port=k, **kw)  # type: ignore[arg-type]
            for k in range(n)]


def name(e: Endpoint | None) -> str:
    assert e is not None
    return e.instance_id


def test_round_robin_is_exactly_even_and_avoids_tried_instances():
    pool, rr = Pool.of(eps(3)), RoundRobin()
    counts = collections.Counter(name(rr.pick(pool, {}, frozenset())) for _ in range(3000))
    assert counts == {"i0": 1000, "i1": 1000, "i2": 1000}
    assert name(rr.pick(pool, {}, frozenset({"i0", "i1"}))) == "i2"


def test_weighted_follows_weights_via_the_alias_table():
    endpoints = [Endpoint(app="S", instance_id=f"w{w}", host="h", http_port=1, grpc_port=1, weight=w)
                 for w in (1, 2, 7)]
    pool, picker = Pool.of(endpoints), Weighted(random.Random(1))
    counts = collections.Counter(name(picker.pick(pool, {}, frozenset())) for _ in range(100_000))
    for e in endpoints:
        assert math.isclose(counts[e.instance_id] / 100_000, e.weight / 10, abs_tol=0.01)


def test_least_request_prefers_the_less_loaded_of_two():
    clock = FakeClock()
    pool = Pool.of(eps(2))
    stats = {"i0": EndpointStats(clock), "i1": EndpointStats(clock)}
    for _ in range(5):
        stats["i0"].started()
    picker = least_request(random.Random(0))
    assert {name(picker.pick(pool, stats, frozenset())) for _ in range(50)} == {"i1"}


def test_peak_ewma_reacts_at_once_to_a_slow_endpoint_and_decays_back():
    clock = FakeClock()
    s = EndpointStats(clock, tau=10.0)
    s.observe(0.010)
    s.observe(0.500)  # a peak replaces the estimate at once
    assert s.latency() == 0.5
    s.started()
    clock.advance(10.0)  # one tau later, busy all along: a fast answer weighs 1 - 1/e
    s.finished(0.010)
    assert math.isclose(s.latency(), 0.5 * math.exp(-1) + 0.010 * (1 - math.exp(-1)))
    s.started()
    assert math.isclose(s.cost(), s.latency() * 2)


def test_peak_ewma_decays_with_idle_time_when_read_and_holds_while_a_call_is_out():
    clock = FakeClock()
    s = EndpointStats(clock, tau=10.0)
    s.observe(0.500)
    clock.advance(10.0)
    assert math.isclose(s.latency(), 0.5 * math.exp(-1))  # read-time decay, nothing observed
    assert math.isclose(s.cost(), 0.5 * math.exp(-1))
    s.started()
    clock.advance(30.0)  # a call out for 30 s: no evidence of speed, the estimate holds
    assert math.isclose(s.latency(), 0.5 * math.exp(-1))
    s.abandoned()
    clock.advance(10.0)  # idle again: decay resumes from the end of that call
    assert math.isclose(s.latency(), 0.5 * math.exp(-2))
    # A slower answer than the decayed estimate is a new peak.
    s.observe(0.2)
    assert s.latency() == 0.2


def test_an_endpoint_not_answered_yet_is_tried_first_then_costs_default_rtt_while_out():
    clock = FakeClock()
    fresh, busy = EndpointStats(clock), EndpointStats(clock)
    busy.observe(0.002)
    assert fresh.cost() == 0.0 < busy.cost()
    fresh.started()
    assert fresh.cost() == fresh.default_rtt * 2


def test_an_instance_that_had_one_slow_period_gets_its_share_back_once_idle_decay_passes_baseline():
    clock = FakeClock()
    pool = Pool.of(eps(3))
    stats = {e.instance_id: EndpointStats(clock, tau=10.0) for e in pool.endpoints}
    picker = peak_ewma(random.Random(5))
    for s in stats.values():
        s.observe(0.002)
    stats["i0"].observe(0.500)  # one slow period; the instance is healthy again from now on

    def second(t: int) -> collections.Counter[str]:
        # 100 calls in one simulated second, each answered in 2 ms by whichever instance is picked.
        counts: collections.Counter[str] = collections.Counter()
        for _ in range(100):
            e = name(picker.pick(pool, stats, frozenset()))
            counts[e] += 1
            stats[e].started()
            clock.advance(0.002)
            stats[e].finished(0.002)
            clock.advance(0.008)
        return counts

    shares = [second(t)["i0"] for t in range(120)]
    # Starved while its decayed estimate is above the others' (tau * ln(0.5 / 0.002) = 55 s)...
    assert sum(shares[:50]) == 0
    # ...then probed, and from then on as good as any: a third of the traffic.
    assert 28 <= sum(shares[60:]) / len(shares[60:]) <= 38
def test_peak_ewma_sends_little_to_a_slow_endpoint():
    clock = FakeClock()
    pool = Pool.of(eps(3))
    stats = {e.instance_id: EndpointStats(clock) for e in pool.endpoints}
    for _ in range(20):
        stats["i0"].observe(0.060)
        stats["i1"].observe(0.010)
        stats["i2"].observe(0.010)
    picker = peak_ewma(random.Random(7))
    counts = collections.Counter(name(picker.pick(pool, stats, frozenset())) for _ in range(3000))
    assert counts["i0"] == 0  # whenever i0 is drawn, the other draw is cheaper


def test_reported_load_counts_until_it_goes_stale():
    clock = FakeClock()
    s = EndpointStats(clock, report_ttl=5.0)
    s.report_load(7)
    assert s.load() == 7
    clock.advance(5.1)
    assert s.load() == 0


def test_zone_preference_spills_over_when_the_local_zone_is_too_small():
    endpoints = [Endpoint(app="S", instance_id=f"{z}{k}", host="h", http_port=1, grpc_port=1, zone=z)
                 for z, k in (("a", 1), ("a", 2), ("b", 1))]
    assert [e.instance_id for e in zone_preferring(endpoints, "a", 2)] == ["a1", "a2"]
    assert len(zone_preferring(endpoints, "b", 2)) == 3
    assert len(zone_preferring(endpoints, "", 1)) == 3


def test_picking_cost_does_not_grow_with_pool_size():
    # O(1): the number of RNG draws per pick is bounded whatever the pool size.
    class CountingRandom(random.Random):
        draws = 0

        def randrange(self, *a, **kw):
            CountingRandom.draws += 1
            return super().randrange(*a, **kw)

    for n in (10, 10_000):
        CountingRandom.draws = 0
        picker, pool = peak_ewma(CountingRandom(3)), Pool.of(eps(n))
        for _ in range(1000):
            picker.pick(pool, {}, frozenset())
        assert CountingRandom.draws <= 2 * 1000 + 50
