"""Fleet drills: a real Eureka server, three instances (a digits model behind its sidecar each), and
open-loop load through a client sidecar's egress (gRPC, `x-sidecar-target`), as a caller in the mesh
sees them: a rolling restart, a kill -9, and the registry going down and coming back empty.

Timings are scaled down from production's so the drills fit CI; each is equivalent because the
sidecar's behaviour depends on them only through the ratios kept here:

- lease renewal 3 s and lease duration 9 s (production 30 s / 90 s: the same 1:3): the registrar's
  reconnect backoff is capped at renewal / 2 (1.5 s here, 15 s there), so "registered again within
  one heartbeat" means the same; discovery holds an instance back for its lease plus a fetch interval;
- registry fetch interval 0.5 s (production 30 s): how soon a caller sees a change; every drill
  waits for what it needs by polling, never for a fixed multiple of it;
- Eureka down for DRILL_EUREKA_DOWN seconds (2 s in CI, plus the server's own start-up of 3-5 s, so
  unreachable for more than two heartbeats; 60 s in the issue's drill): while the server is away,
  clients keep their last snapshot, registrars retry at their backoff cap, and discovery's holds do
  not run down; nothing else changes with the outage's length, so an outage longer than the cap and
  a heartbeat reaches the same state as a minute. The full version runs with DRILL_EUREKA_DOWN=60
  (results in docs/operations.md);
- 100 calls/s in CI (DRILL_RATE; the issue's drills ran 200/s): two cores carry the server, seven
  Python processes and the load, and a drill must fail on lost calls, not on a starved machine.

Each drill prints its figures (calls, failures, latencies, re-registration and recovery times).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.eureka import EurekaServer, start_eureka
from tests.support.openloop import OpenLoop, Record, summarize
from tests.support.procs import Proc, http_get, start_model, start_sidecar

pytestmark = pytest.mark.integration

SERVICE = "drill-svc"
APP = SERVICE.upper()
RENEWAL, LEASE, FETCH = 3, 9, 0.5
RATE = float(os.environ.get("DRILL_RATE", "100"))
EUREKA_DOWN = float(os.environ.get("DRILL_EUREKA_DOWN", "2"))
EUREKA_RESTARTS = int(os.environ.get("DRILL_EUREKA_RESTARTS", "10"))
TARGET = (("x-sidecar-target", SERVICE),)


def registry_flags(eureka: EurekaServer) -> tuple[str, ...]:
    return (
        "--eureka-url", eureka.url,
        "--lease-renewal-interval", str(RENEWAL),
        "--lease-duration", str(LEASE),
        "--registry-fetch-interval", str(FETCH),
        "--advertise-host", "localhost",
    )  # fmt: skip


def eventually(check: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout}s (last {last!r})")


@dataclass
class Instance:
    model: Proc
    sidecar: Proc

    @property
    def instance_id(self) -> str:
        return f"localhost:{SERVICE}:{self.sidecar.ports['grpc']}"

    def stop(self) -> None:
        self.sidecar.stop()
        self.model.stop()


@dataclass
class Fleet:
    eureka: EurekaServer
    client: Proc
    client_model: Proc
    instances: list[Instance] = field(default_factory=list)

    def add(self) -> Instance:
        """A new instance, once the client's discovery lists it (the drain defaults are in force)."""
        model = start_model()
        sidecar = start_sidecar(
            model.ports["grpc"], *registry_flags(self.eureka), "--model", "digits",
            "--drain-delay", "auto", app_name=SERVICE,
        )  # fmt: skip
        instance = Instance(model, sidecar)
        self.instances.append(instance)
        eventually(lambda: instance.instance_id in self.discovered(), 15, f"client discovers {instance}")
        return instance

    def registry(self) -> dict[str, Any]:
        return dict(json.loads(http_get(self.client.ports["admin"], "/registry")[1]))

    def discovered(self) -> set[str]:
        apps = self.registry()["discovery"]["apps"]
        return {e["instanceId"] for e in apps.get(APP, [])}

    def pool(self) -> set[str]:
        """Instances the client's egress picks from now (discovered, not ejected)."""
        route = json.loads(http_get(self.client.ports["admin"], "/egress")[1]).get(APP, {})
        return set(route.get("pool", []))

    def registered_up(self) -> set[str]:
        doc = self.eureka.app(APP)
        found = [] if doc is None else doc["application"]["instance"]
        return {i["instanceId"] for i in found if i["status"] == "UP"}

    def discovery_log(self) -> str:
        """What the client's discovery decided (not its failed fetches), for a failing drill's message."""
        lines = self.client.log().splitlines()
        return "\n".join([ln for ln in lines if "discovery" in ln and "refresh failed" not in ln][-40:])

    def load(self) -> OpenLoop:
        return OpenLoop(self.client.ports["egress_grpc"], RATE, metadata=TARGET, timeout=5.0)


@pytest.fixture(scope="module")
def eureka() -> Iterator[EurekaServer]:
    with start_eureka() as server:
        yield server


@pytest.fixture(scope="module")
def fleet(eureka: EurekaServer) -> Iterator[Fleet]:
    """Three instances and the client, shared by the drills: each leaves three healthy instances."""
    own = start_model()
    client = start_sidecar(own.ports["grpc"], *registry_flags(eureka), app_name="drill-client")
    f = Fleet(eureka, client, own)
    try:
        for _ in range(3):
            f.add()
        yield f
    finally:
        # SIGTERM all at once: each drains (5.5 s, the minimum of its default settings) in parallel.
        procs = [p for inst in f.instances for p in (inst.sidecar, inst.model)] + [client, own]
        for proc in procs:
            if proc.popen.poll() is None:
                proc.signal(signal.SIGTERM)
        for proc in procs:
            proc.stop(timeout=15)


def report(name: str, records: list[Record], **figures: object) -> None:
    extra = ", ".join(f"{k} {v}" for k, v in figures.items())
    print(f"\ndrill {name}: {summarize(records)}" + (f"; {extra}" if extra else ""))


def test_rolling_restart_of_three_instances_loses_no_call(fleet: Fleet):
    # As a Deployment with maxSurge 1 rolls: start a new pod, then SIGTERM an old one, which drains
    # with the default settings while the client's discovery notices it is OUT_OF_SERVICE.
    drains = []
    with fleet.load() as load:
        load.wait_for(200)
        for old in list(fleet.instances):
            fleet.add()
            old.sidecar.signal(signal.SIGTERM)
            t0 = time.monotonic()
            assert old.sidecar.wait(60) == 0
            drains.append(round(time.monotonic() - t0, 1))
            old.model.stop()
            fleet.instances.remove(old)
            assert "calls arrived" in old.sidecar.log()
        new = {i.instance_id for i in fleet.instances}
        eventually(lambda: fleet.pool() == new, 10, "the client picks only the new instances")
        t_settled = time.monotonic()
        time.sleep(2.0)
        records = load.stop()
    report("rolling restart", records, drains_s=drains)
    assert summarize(records).failed == 0
    assert len(load.since(t_settled)) > 0.5 * RATE * 2.0  # the load did go on to the end


def test_kill_9_of_one_instance_fails_under_a_thousandth_and_recovers_within_5s(fleet: Fleet):
    victim = fleet.instances[0]
    with fleet.load() as load:
        load.wait_for(200)
        time.sleep(1.0)
        t_kill = time.monotonic()
        os.kill(victim.sidecar.pid, signal.SIGKILL)
        os.kill(victim.model.pid, signal.SIGKILL)
        # Recovered: the client no longer picks the dead instance (ejected, or gone from discovery).
        eventually(lambda: victim.instance_id not in fleet.pool(), 10, "dead instance out of the pool",
                   every=0.02)
        recovery = time.monotonic() - t_kill
        time.sleep(3.0)
        records = load.stop()
    fleet.instances.remove(victim)
    victim.stop()
    fleet.add()  # for the next drill
    failed = [r for r in records if not r.ok]
    after = [r for r in records if r.at >= t_kill]
    slow = [r for r in after if r.took > 0.25]
    last_bad = max((r.at - t_kill for r in failed + slow), default=0.0)
    report("kill -9", records, recovery_s=round(recovery, 2), last_failed_or_slow_s=round(last_bad, 2))
    assert len(failed) < 0.001 * len(records), summarize(records)
    assert recovery < 5.0
    assert last_bad < 5.0


def test_eureka_down_then_back_empty_again_and_again_loses_no_call(fleet: Fleet):
    ids = {i.instance_id for i in fleet.instances}
    rejoined: list[float] = []
    with fleet.load() as load:
        load.wait_for(200)
        for _ in range(EUREKA_RESTARTS):
            fleet.eureka.stop()
            time.sleep(EUREKA_DOWN)
            fleet.eureka.start()  # same port, empty registry; returns once GET /apps answers
            back = time.monotonic()
            eventually(lambda: ids <= fleet.registered_up(), 3 * RENEWAL, "all registered again", 0.02)
            rejoined.append(round(time.monotonic() - back, 2))
            # The next outage comes at once: the client may still be holding instances back.
        # In the end the client's view is the server's again, with nothing held.
        eventually(lambda: fleet.registry()["discovery_fetches"]["held"] == 0, 10, "nothing held")
        assert ids <= fleet.discovered(), fleet.discovery_log()
        time.sleep(1.0)
        records = load.stop()
    stats = fleet.registry()["discovery_fetches"]
    report("eureka down then back empty", records, restarts=EUREKA_RESTARTS, down_s=EUREKA_DOWN,
           reregistered_s=rejoined, client_discovery=stats)
    assert summarize(records).failed == 0, fleet.discovery_log()
    # Within one heartbeat of the server answering again (the registrars' backoff is capped below it).
    assert max(rejoined) <= RENEWAL, rejoined
    # The restarted server's empty or partial answers were seen, and held back.
    assert stats["suspect_full"] >= 1, stats
