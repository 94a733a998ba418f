from sidecar.health.readiness import Readiness, ReadinessSnapshot


def states(r: Readiness) -> list[ReadinessSnapshot]:
    seen: list[ReadinessSnapshot] = []
    r.watch(seen.append)
    return seen


def test_not_ready_until_first_success_then_ready_at_once():
    r = Readiness(failure_threshold=3, success_threshold=2)
    seen = states(r)
    assert not r.current.ready
    r.record(False, "connection refused")
    assert r.current.reason == "model not ready: connection refused"
    r.record(True)
    assert r.current.ready and r.current.ever_ready
    assert [s.ready for s in seen] == [False, True]


def test_failure_threshold_with_hysteresis():
    r = Readiness(failure_threshold=3, success_threshold=2)
    r.record(True)
    r.record(False, "x")
    r.record(False, "x")
    assert r.current.ready
    r.record(True)  # a success resets the failure streak
    r.record(False, "x")
    r.record(False, "x")
    assert r.current.ready
    r.record(False, "down")
    assert not r.current.ready and r.current.reason == "model not ready: down"
    r.record(True)  # after having been ready, recovery needs the full success streak
    assert not r.current.ready
    r.record(True)
    assert r.current.ready


def test_drain_reports_not_ready_but_keeps_serving_while_model_is_ready():
    r = Readiness(failure_threshold=1, success_threshold=1)
    seen = states(r)
    r.record(True)
    r.drain()
    assert not r.current.ready
    assert r.current.accepts_calls
    assert r.current.reason == "sidecar draining"
    r.record(False, "gone")
    assert not r.current.accepts_calls
    assert [(s.ready, s.accepts_calls) for s in seen] == [
        (False, False),
        (True, True),
        (False, True),
        (False, False),
    ]


def test_watchers_not_told_when_only_the_reason_changes():
    r = Readiness(failure_threshold=1, success_threshold=1)
    seen = states(r)
    r.record(False, "a")
    r.record(False, "b")
    assert len(seen) == 1
    assert r.current.reason == "model not ready: b"
