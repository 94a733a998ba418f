"""Soak: open-loop load through a client sidecar's egress and the instances' ingress for half an hour,
against a real Eureka server, with an instance restarted every two minutes; memory, descriptors and
failed calls over time.

    python bench/soak.py [--minutes 30] [--rate 200] [--restart-every 120] [--sample-every 10]
                         [--warmup 600] [--window 300] [--probe DIR] [--sidecar-env KEY=VALUE]

Three instances (a digits model behind its sidecar each) register as "soak-svc"; a client sidecar
calls them by name at --rate calls/s (Poisson arrivals, gRPC, x-sidecar-target). Every
--restart-every seconds one instance is replaced as a rolling update does it: a new instance starts,
the client discovers it, the old sidecar gets SIGTERM and drains with its default settings, then its
model stops. Instances 2 and 3 take turns; instance 1 is never restarted, so its sidecar is a
long-lived ingress to measure, as the client sidecar is a long-lived egress.

Every --sample-every seconds it records RSS (VmRSS, and by kind from /proc/PID/smaps: bench/smaps.py)
and open descriptors of the client sidecar and of the long-lived instance's sidecar, the client's
per-endpoint egress state (GET /egress) and discovery counters (GET /registry), and the machine's
load (load average, and CPU busy in all against the CPU of the soak's own processes); afterwards,
from the load generator's records, the most calls in flight and the p99 of each interval.

Verdicts (bench/soak_verdicts.py says why): RSS from the median of a --window after a stated
--warmup (default: minutes 10-15 of 30) to the median of the last window, under 5 %, and the
least-squares trend of RSS after the warm-up, taken over the whole run, under 5 % too (a leak grows
steadily, so no warm-up hides it); descriptors in the last window no more than in the first, each
window's median (a socket open or just closed at the moment of a sample is no leak; a leaked one
raises every later sample, and a leak grows with every restart, which takes new channels and
connections); no failed call;
every drain exits 0. The growth from minute 2, what the soak judged before, is printed beside
them. Results go to bench/results/soak-<UTC time>.json and a markdown summary to stdout;
`--judge FILE [--warmup S] [--window S]` judges a saved run again.

Diagnosis: `--probe DIR` runs the client sidecar under bench/memprobe.py, which writes a probe line
(mallinfo, pymalloc's arenas, smaps, gc counts, gc-tracked objects of per-endpoint and per-call
types, tracemalloc snapshots when `--probe-frames` > 0) after every restart, and one more after the
last sample followed by glibc's malloc_trim(0), recording what that gives back. Without tracemalloc
the probe only reads (a pause of the loop of some tens of ms per probe); with it, the sidecar's RSS
about doubles and its CPU per call rises, so such a run diagnoses Python-level growth, not RSS;
`--sidecar-env KEY=VALUE` (repeatable) sets an environment variable in every sidecar, e.g.
MALLOC_ARENA_MAX=2.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import signal
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "examples" / "python"), str(REPO / "bench")]

from procstat import cpu_seconds, machine_cpu_seconds, rss_bytes, tree  # noqa: E402
from smaps import breakdown  # noqa: E402
from soak_verdicts import call_windows, verdicts  # noqa: E402

from local_stack import Proc, http_get, start_model, start_sidecar  # noqa: E402
from tests.support.eureka import EurekaServer, start_eureka  # noqa: E402
from tests.support.openloop import OpenLoop, Summary, summarize  # noqa: E402

SERVICE = "soak-svc"
APP = SERVICE.upper()
MIB = 1024 * 1024


@dataclass
class Instance:
    model: Proc
    sidecar: Proc

    @property
    def instance_id(self) -> str:
        return f"localhost:{SERVICE}:{self.sidecar.ports['grpc']}"


def registry_flags(eureka: EurekaServer) -> list[str]:
    # Production's 1:3 renewal to lease, with a fetch interval short enough that a restart every two
    # minutes is seen in seconds (the drain's minimum follows from it: 1 s + 5 s).
    return ["--eureka-url", eureka.url, "--lease-renewal-interval", "5", "--lease-duration", "15",
            "--registry-fetch-interval", "1", "--advertise-host", "localhost"]


def discovered(client: Proc) -> set[str]:
    doc = json.loads(http_get(client.ports["admin"], "/registry")[1])
    return {e["instanceId"] for e in doc["discovery"]["apps"].get(APP, [])}


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout}s")
        time.sleep(0.1)


def start_instance(eureka: EurekaServer, client: Proc | None, env: dict[str, str]) -> Instance:
    model = start_model()
    sidecar = start_sidecar(model.ports["grpc"], *registry_flags(eureka), "--model", "digits",
                            "--drain-delay", "auto", app_name=SERVICE, env=env)
    inst = Instance(model, sidecar)
    if client is not None:
        wait_until(lambda: inst.instance_id in discovered(client), 30, f"client discovers {inst}")
    return inst


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def egress_state(client: Proc) -> dict[str, Any]:
    """What the client sidecar keeps per endpoint and what discovery holds: bounded or not."""
    routes = json.loads(http_get(client.ports["admin"], "/egress")[1])
    registry = json.loads(http_get(client.ports["admin"], "/registry")[1])
    route = routes.get(APP, {})
    return {
        "routes": len(routes), "pool": len(route.get("pool", [])),
        "endpoint_stats": len(route.get("endpoints", {})), "ejected": len(route.get("ejected", [])),
        "breaker_transitions": route.get("breaker_transitions_total", 0),
        "discovered": sum(len(eps) for eps in registry["discovery"]["apps"].values()),
        "discovery": registry["discovery_fetches"],
    }


class Load:
    """The machine's load between two samples: busy cores in all, and those of the soak's processes."""

    def __init__(self) -> None:
        self._at = time.monotonic()
        self._busy = machine_cpu_seconds()[0]
        self._own = self._own_cpu()

    @staticmethod
    def _own_cpu() -> float:
        # This process (load generator, driver) and every child: Eureka, models, sidecars.
        return sum(cpu_seconds(p) for p in tree(os.getpid()))

    def sample(self) -> dict[str, float]:
        at, busy, own = time.monotonic(), machine_cpu_seconds()[0], self._own_cpu()
        span = max(1e-6, at - self._at)
        out = {
            "loadavg_1m": float(pathlib.Path("/proc/loadavg").read_text().split()[0]),
            "busy_cores": round((busy - self._busy) / span, 2),
            "soak_cores": round(max(0.0, own - self._own) / span, 2),
        }
        out["other_cores"] = round(max(0.0, out["busy_cores"] - out["soak_cores"]), 2)
        self._at, self._busy, self._own = at, busy, own
        return out


def sample(procs: dict[str, Proc], t0: float, client: Proc, load: Load) -> dict[str, Any]:
    row: dict[str, Any] = {"t": round(time.monotonic() - t0, 1)}
    for name, proc in procs.items():
        row[name] = {"rss_mib": round(rss_bytes(proc.pid) / MIB, 2), "fds": fds(proc.pid),
                     "smaps": breakdown(proc.pid)}
    row["egress"] = egress_state(client)
    row["machine"] = load.sample()
    return row


def probe(client: Proc, out: str | None, trim: bool = False) -> None:
    """Ask the probed client sidecar for a probe line (and a malloc_trim after it), and wait for it."""
    if out is None:
        return
    lines = pathlib.Path(out) / "probe.jsonl"
    before = len(lines.read_text().splitlines()) if lines.exists() else 0
    client.signal(signal.SIGUSR2 if trim else signal.SIGUSR1)
    wait_until(lambda: lines.exists() and len(lines.read_text().splitlines()) > before, 60, "a probe line")


def report(result: dict[str, Any], path: pathlib.Path) -> int:
    """The markdown summary of a run on stdout; 0 when every verdict passed."""
    o, restarts, judged = result["options"], result["restarts"], result["verdicts"]
    machine_load = result["machine"]
    summary = Summary(**result["calls"])
    print(f"## Soak: {o['minutes']:g} min at {o['rate']:g} calls/s, an instance restarted every "
          f"{o['restart_every']:g} s ({len(restarts)} restarts)\n")
    print(f"Calls: {summary}\n")
    print(f"Machine: load average (1 min) median {machine_load['loadavg_1m_median']:.1f}, max "
          f"{machine_load['loadavg_1m_max']:.1f} on {machine_load['cores']} cores; other processes' "
          f"CPU median {machine_load['other_cores_median']:.2f}, "
          f"max {machine_load['other_cores_max']:.2f} cores\n")
    w, m = round(o["window"] / 60, 1), round(o["warmup"] / 60, 1)
    print(f"| process | RSS median, {m:g}-{m + w:g} min → last {w:g} min (MiB) | growth | trend over the run "
          f"| from 2 min (not judged) | peak | fds (median) first → last |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, v in judged.items():
        rss = f"{v['rss_first_mib']:.1f} → {v['rss_last_mib']:.1f}"
        print(f"| {name} | {rss} | {100 * v['rss_growth']:+.1f} % | {100 * v['rss_trend']:+.1f} % "
              f"| {100 * v['rss_growth_from_2min']:+.1f} % | {v['rss_peak_mib']:.1f} MiB "
              f"| {v['fds_first']} → {v['fds_last']} |")
    drains = [r["drain_s"] for r in restarts]
    if drains:
        codes = sorted({r["exit"] for r in restarts})
        print(f"\nDrains: {min(drains):.1f} to {max(drains):.1f} s, exit codes {codes}")
    print(f"\nRaw: {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    ok = summary.failed == 0 and all(v["rss_ok"] and v["fds_ok"] for v in judged.values())
    ok = ok and all(r["exit"] == 0 for r in restarts)
    print("\nverdict:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--restart-every", type=float, default=120)
    parser.add_argument("--sample-every", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=600, help="seconds before the RSS baseline's window")
    parser.add_argument("--window", type=float, help="seconds of each RSS window (default: run / 6)")
    parser.add_argument("--probe", metavar="DIR", help="run the client sidecar under bench/memprobe.py")
    parser.add_argument("--probe-frames", type=int, default=0, help="tracemalloc frames (0: off)")
    parser.add_argument("--sidecar-env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--judge", metavar="JSON", help="judge a saved run again (another --warmup)")
    args = parser.parse_args()
    if args.judge:
        saved = json.loads(pathlib.Path(args.judge).read_text())
        args.minutes = saved["options"]["minutes"]
    env = dict(kv.split("=", 1) for kv in args.sidecar_env)
    run = args.minutes * 60
    if args.window is None:
        args.window = run / 6
    if args.warmup + 2 * args.window > run:
        parser.error(f"--warmup {args.warmup:g} s and two --window {args.window:g} s do not fit in {run:g} s")
    if args.judge:
        saved["verdicts"] = verdicts(saved["samples"], list(saved["verdicts"]), args.warmup, args.window)
        saved["options"] |= {"warmup": args.warmup, "window": args.window}
        return report(saved, pathlib.Path(args.judge).resolve())

    # A soak run in the background (nohup ... &) ignores SIGINT: SIGTERM ends it, and the finally
    # below still stops every process it started.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    eureka = start_eureka()
    own = start_model()
    command = None
    if args.probe:
        command = [sys.executable, str(REPO / "bench" / "memprobe.py"), "wrap", "--out", args.probe,
                   "--frames", str(args.probe_frames), "--"]
    client = start_sidecar(own.ports["grpc"], *registry_flags(eureka), app_name="soak-client", env=env,
                           command=command, startup_timeout=60)
    instances = [start_instance(eureka, client, env) for _ in range(3)]
    restarts: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    load = OpenLoop(client.ports["egress_grpc"], args.rate, metadata=(("x-sidecar-target", SERVICE),),
                    max_seconds=args.minutes * 60 + 60)
    try:
        load.start()
        load.wait_for(100)
        t0 = time.monotonic()
        end = t0 + args.minutes * 60
        next_restart, next_sample, turn = t0 + args.restart_every, t0, 1
        watched = {"client_sidecar_egress": client, "instance_sidecar_ingress": instances[0].sidecar}
        machine = Load()
        probe(client, args.probe)
        while (now := time.monotonic()) < end:
            if now >= next_sample:
                samples.append(sample(watched, t0, client, machine))
                next_sample += args.sample_every
                print(f"soak: {samples[-1]}", file=sys.stderr)
            if now >= next_restart:
                old = instances[turn]
                new = start_instance(eureka, client, env)
                old.sidecar.signal(signal.SIGTERM)
                t_drain = time.monotonic()
                code = old.sidecar.wait(150)
                drain_s = time.monotonic() - t_drain
                old.model.stop()
                instances[turn] = new
                restarts.append({"t": round(t_drain - t0, 1), "drain_s": round(drain_s, 1), "exit": code})
                print(f"soak: restarted instance {turn + 1}: {restarts[-1]}", file=sys.stderr)
                turn = 2 if turn == 1 else 1
                next_restart += args.restart_every
                probe(client, args.probe)
            time.sleep(0.2)
        samples.append(sample(watched, t0, client, machine))
        probe(client, args.probe, trim=True)
        records = load.stop()
    finally:
        for inst in instances:
            inst.sidecar.stop(timeout=30)
            inst.model.stop()
        client.stop(timeout=30)
        own.stop()
        eureka.stop()

    summary = summarize(records)
    call_windows(records, samples, t0)
    judged = verdicts(samples, list(watched), args.warmup, args.window)
    loads = [s["machine"]["loadavg_1m"] for s in samples[1:]]
    others = [s["machine"]["other_cores"] for s in samples[1:]]
    machine_load = {
        "loadavg_1m_median": statistics.median(loads), "loadavg_1m_max": max(loads),
        "other_cores_median": statistics.median(others), "other_cores_max": max(others),
        "cores": os.cpu_count(),
    }  # fmt: skip
    result = {
        "options": vars(args), "calls": summary.__dict__, "restarts": restarts, "machine": machine_load,
        "verdicts": judged, "samples": samples,
    }
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out / f"soak-{stamp}.json"
    path.write_text(json.dumps(result, indent=1))

    return report(result, path)


if __name__ == "__main__":
    sys.exit(main())
