"""Outlier ejection times and retry-budget accounting, on a fake clock."""

import random

import pytest

from sidecar.core.clock import FakeClock
from sidecar.outlier.ejector import Ejector, OutlierConfig
from sidecar.retry.budget import BudgetConfig, RetryBudget, full_jitter


def test_consecutive_failures_eject_for_base_time_times_ejections_capped():
    clock = FakeClock()
    ej = Ejector(OutlierConfig(consecutive_failures=3, base_ejection_time=10, max_ejection_time=25,
                               max_ejected_percent=100), clock)
    for _ in range(2):
        ej.record("a", True, 3)
    ej.record("a", False, 3)  # a success resets the streak
    ej.record("a", True, 3)
    ej.record("a", True, 3)
    assert ej.ejected() == frozenset()
    ej.record("a", True, 3)
    assert ej.ejected() == {"a"} and ej.next_return() == 10
    clock.advance(10)
    assert ej.ejected() == frozenset()
    for _ in range(3):
        ej.record("a", True, 3)
    assert ej.next_return() == 10 + 20  # second ejection: 2 x base
    clock.advance(20)
    assert ej.ejected() == frozenset()
    for _ in range(3):
        ej.record("a", True, 3)
    assert ej.next_return() == 30 + 25  # third: 3 x base, capped at 25


def test_failure_rate_ejects_after_minimum_calls():
    clock = FakeClock()
    ej = Ejector(OutlierConfig(consecutive_failures=100, failure_rate_threshold=50,
                               failure_rate_window=10, failure_rate_minimum_calls=4,
                               max_ejected_percent=100), clock)
    for failed in (True, False, True):
        ej.record("a", failed, 2)
    assert not ej.ejected()
    ej.record("a", False, 2)  # 2 of 4 failed
    assert ej.ejected() == {"a"}


def test_max_ejected_percent_keeps_part_of_the_pool():
    clock = FakeClock()
    ej = Ejector(OutlierConfig(consecutive_failures=1, max_ejected_percent=50), clock)
    for inst in ("a", "b", "c", "d"):
        ej.record(inst, True, 4)
    assert len(ej.ejected()) == 2
    assert ej.ejections_total == 2


def test_budget_allows_ratio_of_requests_plus_floor_in_the_window():
    clock = FakeClock()
    budget = RetryBudget(BudgetConfig(ratio=0.2, min_per_second=0.5, window=10), clock)
    for _ in range(100):
        budget.deposit()
    granted = sum(budget.withdraw() for _ in range(100))
    assert granted == 25  # 0.2 x 100 + 0.5 x 10
    assert budget.exhausted_total == 75
    clock.advance(10)  # everything slid out of the window
    assert budget.requests == 0 or budget.withdraw()


def test_budget_window_slides():
    clock = FakeClock()
    budget = RetryBudget(BudgetConfig(ratio=1.0, min_per_second=0, window=2), clock)
    budget.deposit()
    assert budget.withdraw() and not budget.withdraw()
    clock.advance(1)
    budget.deposit()
    assert budget.withdraw()
    clock.advance(1)  # the first second's request and retry expire
    assert not budget.withdraw()  # 1 request and 1 retry left in the window
    assert (budget.requests, budget.retries) == (1, 1)


def test_full_jitter_stays_within_the_capped_exponential():
    rng = random.Random(5)
    for attempt, ceiling in ((1, 0.1), (2, 0.2), (3, 0.4), (6, 1.0)):
        samples = [full_jitter(attempt, 0.1, 1.0, rng) for _ in range(200)]
        assert min(samples) >= 0 and max(samples) <= ceiling
        assert max(samples) > ceiling * 0.8


@pytest.mark.parametrize("bad", [{"consecutive_failures": 0}, {"max_ejected_percent": 101},
                                 {"base_ejection_time": 0}])
def test_invalid_outlier_config(bad):
    with pytest.raises(ValueError):
        OutlierConfig(**bad)
