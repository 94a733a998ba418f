"""Soak: open-loop load through a client sidecar's egress and the instances' ingress for half an hour,
against a real Eureka server, with an instance restarted every two minutes; memory, descriptors and
failed calls over time.

    python bench/soak.py [--minutes 30] [--rate 200] [--restart-every 120] [--sample-every 10]

Three instances (a digits model behind its sidecar each) register as "soak-svc"; a client sidecar
calls them by name at --rate calls/s (Poisson arrivals, gRPC, x-sidecar-target). Every
--restart-every seconds one instance is replaced as a rolling update does it: a new instance starts,
the client discovers it, the old sidecar gets SIGTERM and drains with its default settings, then its
model stops. Instances 2 and 3 take turns; instance 1 is never restarted, so its sidecar is a
long-lived ingress to measure, as the client sidecar is a long-lived egress.

Every --sample-every seconds it records RSS (VmRSS) and open descriptors of the client sidecar and
of the long-lived instance's sidecar. Verdicts: RSS growth from the median of the first window after
warm-up to the median of the last window (each a sixth of the run), under 5 %; descriptors at the end
no more than at the start of the measured part (a leak grows with every restart, which takes new
channels and connections); and no failed call. Results go to bench/results/soak-<UTC time>.json and
a markdown summary to stdout.
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

from procstat import rss_bytes  # noqa: E402

from local_stack import Proc, http_get, start_model, start_sidecar  # noqa: E402
from tests.support.eureka import EurekaServer, start_eureka  # noqa: E402
from tests.support.openloop import OpenLoop, summarize  # noqa: E402

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


def start_instance(eureka: EurekaServer, client: Proc | None) -> Instance:
    model = start_model()
    sidecar = start_sidecar(model.ports["grpc"], *registry_flags(eureka), "--model", "digits",
                            "--drain-delay", "auto", app_name=SERVICE)
    inst = Instance(model, sidecar)
    if client is not None:
        wait_until(lambda: inst.instance_id in discovered(client), 30, f"client discovers {inst}")
    return inst


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def sample(procs: dict[str, Proc], t0: float) -> dict[str, Any]:
    row: dict[str, Any] = {"t": round(time.monotonic() - t0, 1)}
    for name, proc in procs.items():
        row[name] = {"rss_mib": round(rss_bytes(proc.pid) / MIB, 2), "fds": fds(proc.pid)}
    return row


def verdicts(samples: list[dict[str, Any]], names: list[str], warmup: float) -> dict[str, Any]:
    measured = [s for s in samples if s["t"] >= warmup]
    window = max(1, len(measured) // 6)
    out: dict[str, Any] = {}
    for name in names:
        first = [s[name]["rss_mib"] for s in measured[:window]]
        last = [s[name]["rss_mib"] for s in measured[-window:]]
        growth = statistics.median(last) / statistics.median(first) - 1
        fd_start = max(s[name]["fds"] for s in measured[:window])
        fd_end = max(s[name]["fds"] for s in measured[-window:])
        out[name] = {
            "rss_first_mib": statistics.median(first), "rss_last_mib": statistics.median(last),
            "rss_growth": round(growth, 4), "rss_ok": growth < 0.05,
            "fds_first": fd_start, "fds_last": fd_end, "fds_ok": fd_end <= fd_start,
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--restart-every", type=float, default=120)
    parser.add_argument("--sample-every", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=120, help="seconds left out of the verdicts")
    args = parser.parse_args()

    eureka = start_eureka()
    own = start_model()
    client = start_sidecar(own.ports["grpc"], *registry_flags(eureka), app_name="soak-client")
    instances = [start_instance(eureka, client) for _ in range(3)]
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
        while (now := time.monotonic()) < end:
            if now >= next_sample:
                samples.append(sample(watched, t0))
                next_sample += args.sample_every
                print(f"soak: {samples[-1]}", file=sys.stderr)
            if now >= next_restart:
                old = instances[turn]
                new = start_instance(eureka, client)
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
            time.sleep(0.2)
        samples.append(sample(watched, t0))
        records = load.stop()
    finally:
        for inst in instances:
            inst.sidecar.stop(timeout=30)
            inst.model.stop()
        client.stop(timeout=30)
        own.stop()
        eureka.stop()

    summary = summarize(records)
    judged = verdicts(samples, list(watched), args.warmup)
    result = {
        "options": vars(args), "calls": summary.__dict__, "restarts": restarts,
        "verdicts": judged, "samples": samples,
    }
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out / f"soak-{stamp}.json"
    path.write_text(json.dumps(result, indent=1))

    print(f"## Soak: {args.minutes:g} min at {args.rate:g} calls/s, an instance restarted every "
          f"{args.restart_every:g} s ({len(restarts)} restarts)\n")
    print(f"Calls: {summary}\n")
    print("| process | RSS first → last (MiB) | growth | fds first → last |")
    print("| --- | --- | --- | --- |")
    for name, v in judged.items():
        rss = f"{v['rss_first_mib']:.1f} → {v['rss_last_mib']:.1f}"
        print(f"| {name} | {rss} | {100 * v['rss_growth']:+.1f} % | {v['fds_first']} → {v['fds_last']} |")
    drains = [r["drain_s"] for r in restarts]
    if drains:
        codes = sorted({r["exit"] for r in restarts})
        print(f"\nDrains: {min(drains):.1f} to {max(drains):.1f} s, exit codes {codes}")
    print(f"\nRaw: {path.relative_to(REPO)}")
    ok = summary.failed == 0 and all(v["rss_ok"] and v["fds_ok"] for v in judged.values())
    ok = ok and all(r["exit"] == 0 for r in restarts)
    print("\nverdict:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
