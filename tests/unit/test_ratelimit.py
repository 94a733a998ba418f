"""Token buckets, their bounded table, and GCRA: exact transitions with a fake clock."""

import pytest

from sidecar.core.clock import FakeClock
from sidecar.ratelimit import gcra
from sidecar.ratelimit.bucket import BucketTable


def test_a_bucket_admits_its_burst_then_refills_lazily_at_its_rate():
    clock = FakeClock()
    table = BucketTable(10, clock)
    assert [table.take("a", 10, 3) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert table.take("a", 10, 3) == pytest.approx(0.1)  # one token every 100 ms
    clock.advance(0.05)
    assert table.take("a", 10, 3) == pytest.approx(0.05)
    clock.advance(0.05)
    assert table.take("a", 10, 3) == 0.0
    clock.advance(100)  # a long idle time refills to the burst, never beyond
    assert [table.take("a", 10, 3) for _ in range(4)][-1] > 0


def test_admitted_over_a_window_is_rate_times_time_plus_burst():
    clock = FakeClock()
    table = BucketTable(10, clock)
    admitted = 0
    for _ in range(10_000):  # 1000 calls/s for 10 s against 300/s, burst 30
        admitted += table.take("c", 300, 30) == 0.0
        clock.advance(0.001)
    assert admitted == pytest.approx(3030, abs=2)


def test_keys_have_their_own_buckets():
    table = BucketTable(10, FakeClock())
    assert table.take("a", 1, 1) == 0.0
    assert table.take("a", 1, 1) > 0
    assert table.take("b", 1, 1) == 0.0


def test_a_full_table_evicts_a_full_bucket_not_a_drained_one():
    clock = FakeClock()
    table = BucketTable(2, clock)
    table.take("drained", 1, 5, cost=5)  # empty now
    table.take("full", 1, 5, cost=0.0001)
    clock.advance(0.01)  # "full" refills to its burst; "drained" is far from it
    table.take("new", 1, 5)
    assert table.evicted_full == 1 and table.evicted_not_full == 0
    # The drained client was kept: it does not come back with a fresh bucket.
    assert table.take("drained", 1, 5) > 0


def test_with_no_full_bucket_the_fullest_is_evicted_and_counted_apart():
    clock = FakeClock()
    table = BucketTable(2, clock)
    table.take("a", 1, 10, cost=9)  # 1 token left
    table.take("b", 1, 10, cost=2)  # 8 left
    table.take("c", 1, 10)
    assert table.evicted_not_full == 1
    assert table.take("a", 1, 10, cost=2) > 0  # a, the emptier, was kept


def test_a_changed_rate_keeps_the_level_capped_at_the_new_burst():
    clock = FakeClock()
    table = BucketTable(2, clock)
    table.take("a", 10, 10)
    assert table.take("a", 10, 2) == 0.0  # 9 tokens capped to 2, one taken
    assert table.take("a", 10, 2) == 0.0
    assert table.take("a", 10, 2) > 0


def test_gcra_is_a_token_bucket_of_burst_at_rate():
    tat = None
    allowed = 0
    now = 0.0
    for _ in range(10_000):
        d = gcra.decide(tat, now, 300, 30)
        tat = d.tat
        allowed += d.allowed
        now += 1000.0  # 1000 calls/s, in microseconds
    assert allowed == pytest.approx(3030, abs=2)


def test_gcra_refusal_says_when_to_retry():
    d = gcra.decide(None, 0.0, 10, 1)
    assert d.allowed
    d2 = gcra.decide(d.tat, 0.0, 10, 1)
    assert not d2.allowed and d2.retry_after_us == pytest.approx(100_000)
    assert gcra.decide(d.tat, 100_000.0, 10, 1).allowed
