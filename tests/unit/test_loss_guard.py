"""Discovery across a Eureka server restart, replaying answers recorded from the real Spring Cloud server.

tests/unit/data/eureka_restart.json holds what GET /eureka/apps/ and /eureka/apps/delta answered at
each step: three DIGITS-SVC instances and a CLIENT registered; the server restarted (empty); one
instance registered again; all of them again; then two instances cancelled (deregistered).
"""

from __future__ import annotations

import asyncio
import copy
import json
import pathlib
from typing import Any

import pytest

from sidecar.core.clock import FakeClock
from sidecar.discovery.endpoint import Snapshot
from sidecar.discovery.eureka_discovery import EurekaDiscovery
from sidecar.discovery.eureka_registry import parse_full
from sidecar.discovery.loss_guard import LossGuard
from sidecar.registry.eureka_http import EurekaUnreachable

STEPS: list[dict[str, Any]] = json.loads(
    (pathlib.Path(__file__).parent / "data" / "eureka_restart.json").read_text()
)
BEFORE, RESTARTED, ONE_BACK, ALL_BACK, TWO_CANCELLED = (
    "before the restart", "just restarted", "one digits-svc", "all registered again", "two digits-svc"
)
DIGITS = "DIGITS-SVC"
DOWN = "down"
INTERVAL = 30.0


def answer(step: str, path: str) -> Any:
    (found,) = [s["answer"] for s in STEPS if s["step"].startswith(step) and s["path"] == path]
    return copy.deepcopy(found)


class RecordedServer:
    """Answers GET /apps/ and /apps/delta as the real server did at the step it is at."""

    def __init__(self, step: str) -> None:
        self.step = step

    async def applications(self) -> Any:
        return answer(self.step, "apps/")

    async def delta(self) -> Any:
        if self.step == DOWN:
            raise EurekaUnreachable("no Eureka server answered: connection refused")
        return answer(self.step, "apps/delta")


def ids(snapshot: Snapshot, app: str = DIGITS) -> list[str]:
    return sorted(e.instance_id.split(":")[0] for e in snapshot.endpoints(app))


def discovery() -> tuple[EurekaDiscovery, RecordedServer, FakeClock, list[Snapshot]]:
    server, clock = RecordedServer(BEFORE), FakeClock(1000.0)
    d = EurekaDiscovery(server, INTERVAL, clock=clock)  # type: ignore[arg-type]
    published: list[Snapshot] = []
    d.watch(published.append)
    asyncio.run(d.refresh())
    assert ids(d.current) == ["pod-digits-svc-1", "pod-digits-svc-2", "pod-digits-svc-3"]
    assert ids(d.current, "CLIENT") == ["pod-client-7"]
    return d, server, clock, published


def step(d: EurekaDiscovery, server: RecordedServer, name: str) -> None:
    server.step = name
    if name == DOWN:
        with pytest.raises(EurekaUnreachable):
            asyncio.run(d.refresh())
    else:
        asyncio.run(d.refresh())


def test_a_restarted_empty_server_empties_nothing_and_instances_rejoin_as_they_register(caplog):
    d, server, clock, published = discovery()
    before = d.current
    step(d, server, RESTARTED)  # the delta's hash code differs: a full fetch, which lists nothing
    assert d.current is before and len(published) == 1  # no new snapshot: channels stay open
    assert d.stats() == {"full": 2, "delta": 1, "suspect_full": 1, "held": 4, "held_dropped": 0}
    assert "lost 3 of the 3 UP instances of DIGITS-SVC" in caplog.text
    assert "keeping them for up to 120s" in caplog.text  # their 90 s lease plus one fetch interval

    clock.advance(INTERVAL)
    step(d, server, ONE_BACK)  # a delta, consistent with the empty registry plus one
    assert d.current is before and d.stats()["held"] == 3
    step(d, server, ALL_BACK)
    assert d.current is before and d.stats()["held"] == 0 and d.stats()["suspect_full"] == 1

    step(d, server, TWO_CANCELLED)  # departures the server reports are taken at once
    assert ids(d.current) == ["pod-digits-svc-3"]
    assert d.stats()["suspect_full"] == 1


def test_a_first_fetch_after_a_partial_reregistration_keeps_the_missing_instances():
    d, server, _, published = discovery()
    step(d, server, ONE_BACK)  # restarted, and one instance already back before our next fetch
    assert ids(d.current) == ["pod-digits-svc-1", "pod-digits-svc-2", "pod-digits-svc-3"]
    assert ids(d.current, "CLIENT") == ["pod-client-7"]
    assert len(published) == 1
    assert d.stats()["suspect_full"] == 1 and d.stats()["held"] == 3


def test_instances_that_never_register_again_are_dropped_after_their_lease():
    d, server, clock, _ = discovery()
    step(d, server, RESTARTED)
    clock.advance(90 + INTERVAL - 1)
    step(d, server, RESTARTED)
    assert d.stats()["held"] == 4
    clock.advance(1)
    step(d, server, RESTARTED)  # the server confirmed the loss across a whole lease
    assert d.current.apps == {} and d.stats()["held_dropped"] == 4


def test_a_server_that_restarts_again_during_a_hold_gives_the_held_instances_a_new_lease():
    d, server, clock, _ = discovery()
    step(d, server, RESTARTED)
    clock.advance(100)
    step(d, server, ONE_BACK)  # one instance made it back before the server went down again
    assert d.stats()["held"] == 3
    clock.advance(10)
    step(d, server, RESTARTED)  # empty again: a new suspect answer, 110 s after the first one
    assert d.stats() | {"delta": 0} == {
        "full": 3, "delta": 0, "suspect_full": 2, "held": 4, "held_dropped": 0
    }
    assert ids(d.current) == ["pod-digits-svc-1", "pod-digits-svc-2", "pod-digits-svc-3"]
    clock.advance(119)
    step(d, server, RESTARTED)
    assert d.stats()["held"] == 4
    clock.advance(1)
    step(d, server, RESTARTED)
    assert d.current.apps == {} and d.stats()["held_dropped"] == 4


def test_holds_do_not_run_down_while_the_server_is_unreachable():
    d, server, clock, _ = discovery()
    step(d, server, RESTARTED)
    clock.advance(60)
    step(d, server, RESTARTED)  # 60 s of the server answering without them
    step(d, server, DOWN)
    clock.advance(600)  # ten minutes down: nobody could register meanwhile
    step(d, server, DOWN)
    step(d, server, RESTARTED)  # back, still empty (its delta is consistent: no new suspect fetch)
    assert d.stats()["held"] == 4 and d.stats()["suspect_full"] == 1
    clock.advance(59)
    step(d, server, RESTARTED)
    assert d.stats()["held"] == 4
    clock.advance(1)
    step(d, server, RESTARTED)  # 120 s of answers in all
    assert d.current.apps == {} and d.stats()["held_dropped"] == 4


def test_a_server_reported_cancel_of_a_held_instance_ends_its_hold():
    guard = LossGuard(FakeClock(), margin=INTERVAL)
    believed = parse_full(answer(BEFORE, "apps/")).instances
    guard.full_fetch(believed, parse_full(answer(RESTARTED, "apps/")).instances)
    assert guard.held == 4
    guard.cancelled([(DIGITS, "pod-digits-svc-1:digits-svc:9001")])
    assert guard.held == 3
    assert "pod-digits-svc-1:digits-svc:9001" not in guard.view({}).get(DIGITS, {})


def registry(**apps: int) -> dict[str, dict[str, dict[str, Any]]]:
    return {
        app: {f"{app}-{k}": {"instanceId": f"{app}-{k}", "status": "UP"} for k in range(n)}
        for app, n in apps.items()
    }


@pytest.mark.parametrize(
    ("fetched", "held"),
    [
        (registry(A=10), 2),  # app B vanished at once: suspect, though the registry lost a sixth
        (registry(A=9, B=2), 0),  # one of ten gone without a cancel: an ordinary loss, taken
        (registry(A=5, B=2), 5),  # half of app A at once: suspect
        (registry(A=4, B=1), 7),  # most of the registry at once: every loss suspect
    ],
)
def test_what_counts_as_suspect(fetched, held):
    guard = LossGuard(FakeClock(), margin=INTERVAL)
    suspects = guard.full_fetch(registry(A=10, B=2), fetched)
    assert guard.held == held
    assert guard.suspect_fetches == (1 if held else 0) == (1 if suspects else 0)


def test_an_instance_listed_again_in_another_status_leaves_the_hold():
    guard = LossGuard(FakeClock(), margin=INTERVAL)
    guard.full_fetch(registry(B=2), {})
    down = {"B": {"B-0": {"instanceId": "B-0", "status": "DOWN"}}}
    view = guard.view(down)
    assert view["B"]["B-0"]["status"] == "DOWN" and view["B"]["B-1"]["status"] == "UP"
    assert guard.held == 1
