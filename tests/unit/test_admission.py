"""The admission controller and its limit algorithms, with a fake clock."""

import pytest

from sidecar.admission.limits import AimdLimit, AimdSettings, FixedLimit, GradientLimit, GradientSettings
from sidecar.admission.queue import Admission, Shed, Waiter
from sidecar.core.clock import FakeClock


def admission(limit: int = 2, queue: int = 2, priorities: int = 2) -> Admission:
    return Admission(FixedLimit(limit), queue_size=queue, priorities=priorities, clock=FakeClock())


def test_admits_up_to_the_limit_then_queues_then_sheds():
    a = admission()
    assert a.acquire(0, None) is True
    assert a.acquire(0, None) is True
    assert a.acquire(0, None) is False
    a.enqueue(Waiter(lambda ok: None, 0))
    a.enqueue(Waiter(lambda ok: None, 0))
    shed = a.acquire(0, None)
    assert isinstance(shed, Shed) and "queue full" in shed.reason


def test_a_release_hands_the_slot_to_the_first_waiter_of_the_best_priority():
    a = admission()
    a.acquire(0, None), a.acquire(0, None)
    woken: list[str] = []
    a.enqueue(Waiter(lambda ok: woken.append("low"), 1))
    a.enqueue(Waiter(lambda ok: woken.append("high"), 0))
    a.release(0.01, sample=True)
    assert woken == ["high"]
    assert a.in_flight == 2 and a.queued == 1


def test_a_wait_that_would_outlast_the_deadline_is_shed_at_once():
    a = admission(limit=1, queue=10)
    a.acquire(0, None)
    a.release(0.2, sample=True)  # calls take 200 ms
    a.acquire(0, None)
    assert a.acquire(0, 5.0) is False
    shed = a.acquire(0, 0.1)
    assert isinstance(shed, Shed) and "outlast the deadline" in shed.reason


def test_cancelled_waiters_leave_the_queue():
    a = admission(limit=1)
    a.acquire(0, None)
    w = Waiter(lambda ok: pytest.fail("woken after cancel"), 0)
    a.enqueue(w)
    a.cancel(w)
    assert a.queued == 0
    a.release(0.01, sample=False)
    assert a.in_flight == 0


def test_unsampled_releases_do_not_teach_the_limit():
    class Spy(FixedLimit):
        samples = 0

        def sample(self, rtt: float, in_flight: int, dropped: bool) -> None:
            Spy.samples += 1

    a = Admission(Spy(1), queue_size=0, priorities=1, clock=FakeClock())
    a.acquire(0, None)
    a.release(0.01, sample=False)
    assert Spy.samples == 0 and a.rtt == 0.0


def _drive(limit: GradientLimit, capacity: int, service: float, rounds: int, clock: FakeClock) -> None:
    # A model that serves `capacity` at once: with L in flight each call takes service * L / capacity.
    for _ in range(rounds):
        in_flight = limit.limit
        rtt = service * max(1.0, in_flight / capacity)
        limit.sample(rtt, in_flight, False)
        clock.advance(rtt / max(1, in_flight))


def test_gradient_first_probes_then_converges_near_the_models_capacity():
    clock = FakeClock()
    limit = GradientLimit(
        GradientSettings(initial_limit=40, probe_limit=2, tolerance=1.2, probe_interval=0), clock
    )
    assert limit.probing and limit.limit == 2
    _drive(limit, 8, 0.05, 3000, clock)
    assert limit.unloaded_rtt == pytest.approx(0.05)
    assert 8 <= limit.limit <= 16


def test_gradient_never_goes_below_its_floor_and_probes_at_its_own_level():
    clock = FakeClock()
    s = GradientSettings(initial_limit=10, min_limit=6, probe_limit=1, probe_interval=1.0, probe_samples=5)
    limit = GradientLimit(s, clock)
    assert limit.limit == 1  # the probe level, below the floor: it only measures
    _drive(limit, 1, 0.05, 2000, clock)
    assert limit.limit >= 6 or limit.probing


def test_aimd_backs_off_on_drops_and_grows_when_used():
    limit = AimdLimit(AimdSettings(initial_limit=10, min_limit=2))
    limit.sample(0.01, 10, dropped=True)
    assert limit.limit == 9
    limit.sample(0.01, 9, dropped=False)
    assert limit.limit == 10
    limit.sample(0.01, 1, dropped=False)  # not in use: no growth
    assert limit.limit == 10
    for _ in range(100):
        limit.sample(10.0, 10, dropped=False)  # slower than the timeout counts as a drop
    assert limit.limit == 2


def test_reconfigure_keeps_calls_in_flight():
    a = admission(limit=1)
    a.acquire(0, None)
    woken: list[bool] = []
    a.enqueue(Waiter(woken.append, 0))
    a.reconfigure(FixedLimit(2), queue_size=5, priorities=2)
    assert woken == [True] and a.in_flight == 2
