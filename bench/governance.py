"""What governance costs per call on the relay: CPU added by a warm JWT check, a local rate limit, RBAC.

Two ways, as bench/observability.py measures observability:

- In process: the governance filters alone around a terminal that answers at once, CPU time per
  call over 10,000 calls, median of 5, minus the same chain without them. Precise, and blind to
  what the relay does around the chain.
- On the relay: five relay sidecars in front of one digits model, in one run: without a policy,
  and with a policy that turns on one filter (a bearer JWT verified against a JWKS file, the same
  token every call so the verified-token cache is warm, forwarded to the model or stripped; a
  local rate limit far above the load, so nothing is refused; three RBAC rules, the last one
  matching). Every sidecar gets the same open-loop load from the Go generator (bench/loadgen,
  sending metadata with -header); what each one used is read from /proc over the measured
  window. The added cost is its sidecar's CPU per call minus the plain relay's within each
  repeat (targets rotate), then the median.

- Under callgrind (`--callgrind`): each of those relays in turn under valgrind, at 10 calls/s
  that never overlap (bench/callgrind.py's method), instructions per call less the plain relay's.
  Other load on the machine does not move this count, which the CPU-time figures above need a
  quiet machine for.

    python bench/governance.py                      # 500 calls/s, 10 s + 2 s warm-up, 5 repeats
    python bench/governance.py --rate 1000 --repeat 3
    python bench/governance.py --callgrind          # 300 calls per window, 3 windows per target
    python bench/governance.py --callgrind --targets relay,relay+jwt-strip --repeat 1
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

BENCH = pathlib.Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO / "examples" / "python"))

import loadgen_run  # noqa: E402
from ingress import complaints_in, payload, wait_quiet  # noqa: E402
from joserfc import jwk, jwt  # noqa: E402

from local_stack import HOST, Proc, running, start_model, start_sidecar  # noqa: E402

ISSUER, AUDIENCE = "https://id.bench", "digits"
TARGETS = ("relay", "relay+jwt", "relay+jwt-strip", "relay+limit", "relay+rbac")
POLICIES = {
    # The token forwarded to the model: the verification alone. With it stripped (the default), the
    # relay re-encodes each call's header block for the model (a removed header cannot be cut out
    # of an HPACK block), which is its own row.
    "relay+jwt": f"jwt: {{issuers: [{ISSUER}], audiences: [{AUDIENCE}], forward_token: true}}\n",
    "relay+jwt-strip": f"jwt: {{issuers: [{ISSUER}], audiences: [{AUDIENCE}]}}\n",
    "relay+limit": "rate_limits: {default: {rate: 1000000, burst: 1000000}}\n",
    "relay+rbac": (
        "rbac:\n  rules:\n"
        "    - {name: no-guests, action: deny, principals: {client: [guest]}}\n"
        "    - {name: ops, action: allow, principals: {client: [ops]}, methods: [ModelMetadata]}\n"
        "    - {name: bench, action: allow, principals: {client: [bench]}, methods: [ModelInfer],"
        " models: [digits]}\n"
    ),
}


def keys_and_token(d: pathlib.Path) -> tuple[pathlib.Path, str]:
    key = jwk.RSAKey.generate_key(2048, parameters={"kid": "bench"})
    jwks = d / "jwks.json"
    jwks.write_text(json.dumps(jwk.KeySet([key]).as_dict(private=False)))
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "bench", "exp": now + 24 * 3600, "nbf": now}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        token = jwt.encode({"alg": "RS256", "kid": "bench"}, claims, key)
    return jwks, token


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=500.0)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--max-others", type=float, default=0.15, help="see bench/README.md; 0 turns it off")
    p.add_argument("--micro-only", action="store_true", help="only the in-process measurement")
    p.add_argument("--callgrind", action="store_true", help="instructions per call under callgrind instead")
    p.add_argument("--targets", default=",".join(TARGETS), help="with --callgrind: which, comma-separated")
    a = p.parse_args(argv)
    if a.callgrind:
        targets = tuple(t for t in a.targets.split(",") if t)
        unknown = set(targets) - set(TARGETS)
        if unknown or "relay" not in targets:
            p.error(f"--targets: want relay and any of {', '.join(TARGETS[1:])}; got {a.targets}")
        print(instructions(a.repeat if a.repeat != 5 else 3, targets=targets))
        return 0
    print(in_process())
    if a.micro_only:
        return 0
    binary = loadgen_run.build()
    with tempfile.TemporaryDirectory(prefix="governance-bench-") as tmp:
        d = pathlib.Path(tmp)
        payload_path = d / "payload.bin"
        payload_path.write_bytes(payload())
        jwks, token = keys_and_token(d)
        headers = (("authorization", f"Bearer {token}"), ("x-client-id", "bench"))
        with running(start_model()) as model:
            procs: dict[str, Proc] = {}
            stack = []
            try:
                for name in TARGETS:
                    flags = ["--model", "digits", "--dataplane", "relay"]
                    if name in POLICIES:
                        policy = d / f"{name}.yaml"
                        policy.write_text(POLICIES[name])
                        flags += ["--policy-file", str(policy), "--jwks-file", str(jwks)]
                    cm = running(start_sidecar(model.ports["grpc"], *flags))
                    procs[name] = cm.__enter__()
                    stack.append(cm)
                results = measure(a, binary, payload_path, headers, procs, model.pid)
            finally:
                for cm in reversed(stack):
                    cm.__exit__(None, None, None)
            for name, proc in procs.items():
                for line in complaints_in(proc.log()):
                    print(f"{name}: {line}", file=sys.stderr)
    print(table(results, a))
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    path = out / f"governance-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps({"options": vars(a), "runs": results}, indent=1))
    print(f"raw runs: {path}", file=sys.stderr)
    return 0


def measure(
    a: argparse.Namespace,
    binary: pathlib.Path,
    payload_path: pathlib.Path,
    headers: tuple[tuple[str, str], ...],
    procs: dict[str, Proc],
    model_pid: int,
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    names = list(procs)
    for name in names:  # prime each: first calls of a fresh process are slower
        address = f"{HOST}:{procs[name].ports['grpc']}"
        prime = loadgen_run.LoadSpec(address, payload_path, 0.0, 2.0, a.rate, headers=headers)
        loadgen_run.run(binary, prime, {})
    for r in range(1, a.repeat + 1):
        order = names[(r - 1) % len(names) :] + names[: (r - 1) % len(names)]
        for name in order:
            proc = procs[name]
            spec = loadgen_run.LoadSpec(
                address=f"{HOST}:{proc.ports['grpc']}", payload=payload_path, warmup_s=a.warmup,
                duration_s=a.duration, rate=a.rate, seed=r, headers=headers,
            )  # fmt: skip
            time.sleep(1.0)
            if a.max_others > 0:
                wait_quiet(a.max_others, [model_pid, *(p.pid for p in procs.values())])
            result = loadgen_run.run(binary, spec, {"sidecar": proc.pid, "model": model_pid})
            ok = int(result.report["ok_in_window"])
            errors = sum((result.report.get("errors") or {}).values())
            cpu = result.usage["sidecar"].cpu_s
            ours = sum(u.cpu_s for u in result.usage.values())
            others = max(0.0, result.machine_busy_s - ours + result.steal_s) / result.window_s
            row = {
                "repeat": r, "target": name, "ok": ok, "errors": errors,
                "cpu_us_per_call": cpu / ok * 1e6 if ok else None, "other_cpu_share": others,
                "p50_ms": result.report.get("p50_ms"), "p99_ms": result.report.get("p99_ms"),
            }  # fmt: skip
            print(json.dumps(row), file=sys.stderr)
            results.append(row)
    return results


def table(results: list[dict[str, Any]], a: argparse.Namespace) -> str:
    by = {(row["repeat"], row["target"]): row for row in results}
    lines = [
        f"open loop {a.rate:g} calls/s, {a.duration:g} s windows, {a.repeat} repeats (medians)",
        "",
        "| target | sidecar CPU µs/call | added vs relay, µs/call | p50 ms | p99 ms | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in TARGETS:
        rows = [row for row in results if row["target"] == name]
        cpu = statistics.median(row["cpu_us_per_call"] for row in rows)
        added = [
            row["cpu_us_per_call"] - by[(row["repeat"], "relay")]["cpu_us_per_call"]
            for row in rows
            if (row["repeat"], "relay") in by
        ]
        p50 = statistics.median(float(row["p50_ms"] or 0) for row in rows)
        p99 = statistics.median(float(row["p99_ms"] or 0) for row in rows)
        errors = sum(row["errors"] for row in rows)
        extra = "—" if name == "relay" else f"{statistics.median(added):+.1f}"
        lines.append(f"| {name} | {cpu:.1f} | {extra} | {p50:.2f} | {p99:.2f} | {errors} |")
    return "\n".join(lines)


def in_process(calls: int = 10_000, repeat: int = 5) -> str:
    """The filters alone: CPU µs per call added to a chain that answers at once."""
    import asyncio

    sys.path.insert(0, str(REPO))
    import yaml

    from sidecar.auth.keys import from_jwks
    from sidecar.core.call import Call, Outcome
    from sidecar.core.status import Code
    from sidecar.filters.admission import AdmissionFilter
    from sidecar.filters.auth import AuthFilter
    from sidecar.filters.chain import build_chain
    from sidecar.filters.rate_limit import RateLimitFilter
    from sidecar.filters.rbac import RbacFilter
    from sidecar.governance.active import PolicyStore
    from sidecar.governance.assembly import Governance  # noqa: F401  (the same modules the sidecar loads)
    from sidecar.governance.stats import GovernanceStats
    from sidecar.ratelimit.bucket import BucketTable

    with tempfile.TemporaryDirectory() as tmp:
        jwks, token = keys_and_token(pathlib.Path(tmp))
        key_set = from_jwks(jwks.read_bytes(), 1, "bench")
    ok = Outcome(Code.OK)

    async def terminal(call: Call) -> Outcome:
        return ok

    def chain(doc: str):  # type: ignore[no-untyped-def]
        stats = GovernanceStats()
        store = PolicyStore(
            static_settings=frozenset(), check=lambda p: None, keys=lambda: key_set,
            on_unknown_kid=lambda: None, stats=stats,
        )  # fmt: skip
        assert store.offer(yaml.safe_load(doc) or {}, "bench", kind="file"), store.last_error
        active = lambda: store.current  # noqa: E731
        return build_chain(
            [
                AuthFilter(active, stats),
                RbacFilter(active, stats),
                RateLimitFilter(active, stats, BucketTable(1000, time.monotonic), None),
                AdmissionFilter(active, stats, lambda: None),
            ],
            terminal,
        )

    metadata = [("authorization", f"Bearer {token}"), ("x-client-id", "bench"), ("user-agent", "grpc-go")]

    async def per_call(run) -> float:  # type: ignore[no-untyped-def]
        batch = [
            Call(method="/inference.GRPCInferenceService/ModelInfer", metadata=list(metadata), deadline=None,
                 protocol="grpc", peer="ipv4:127.0.0.1:5000", model="digits")
            for _ in range(calls)
        ]  # fmt: skip
        started = time.process_time()
        for call in batch:
            await run(call)
        return (time.process_time() - started) / calls * 1e6

    async def measure_all() -> dict[str, float]:
        configs = {"no policy (the chain itself)": None, **{k: v for k, v in POLICIES.items()}}
        out: dict[str, list[float]] = {k: [] for k in configs}
        runs = {k: (build_chain([], terminal) if v is None else chain(v)) for k, v in configs.items()}
        for _ in range(repeat):
            for name, run in runs.items():
                await per_call(run)  # warm: the token cache, the bucket
                out[name].append(await per_call(run))
        return {k: statistics.median(v) for k, v in out.items()}

    medians = asyncio.run(measure_all())
    base = medians["no policy (the chain itself)"]
    lines = [
        f"in process, {calls} calls x {repeat} (medians), CPU µs per call",
        "",
        "| policy | µs/call | added µs/call |",
        "| --- | ---: | ---: |",
    ]
    for name, value in medians.items():
        lines.append(f"| {name} | {value:.1f} | {value - base:+.1f} |")
    return "\n".join(lines)



def instructions(repeat: int, calls: int = 300, targets: tuple[str, ...] = TARGETS) -> str:
    """Instructions per call of each policy's relay under callgrind, and what each adds to the plain
    relay's: bench/callgrind.py's windows, with this file's policies and the token on every call."""
    import callgrind

    out = callgrind.RESULTS / f"governance-callgrind-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    out.mkdir(parents=True, exist_ok=True)
    binary = loadgen_run.build()
    with tempfile.TemporaryDirectory(prefix="governance-callgrind-") as tmp:
        d = pathlib.Path(tmp)
        payload_path = d / "payload.bin"
        payload_path.write_bytes(payload())
        jwks, token = keys_and_token(d)
        started: dict[str, Callable[[int, list[str], pathlib.Path], Proc]] = {}
        for name in targets:
            flags = {"model": "digits"}
            if name in POLICIES:
                policy = d / f"{name}.yaml"
                policy.write_text(POLICIES[name])
                flags |= {"policy-file": str(policy), "jwks-file": str(jwks)}
            started[name] = functools.partial(callgrind.start_relay, extra={}, flags=flags)
        opts = callgrind.Options(
            targets, 10.0, calls, 5.0, repeat, 2, 1, out,
            headers=(("authorization", f"Bearer {token}"), ("x-client-id", "bench")),
        )
        with running(start_model()) as model:
            results = callgrind.measure(opts, binary, payload_path, model.ports["grpc"], out, started)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    base = results["relay"]["median_net_per_call"]
    lines = [
        f"Callgrind, 10 calls/s open loop, {calls} calls per window, medians of {repeat} (net of idle):",
        "",
        "| target | instructions/call | added vs relay |",
        "| --- | ---: | ---: |",
    ]
    for name, result in results.items():
        net = result["median_net_per_call"]
        added = "—" if name == "relay" else f"{(net - base) / 1e3:+.1f} k"
        lines.append(f"| {name} | {net / 1e6:.3f} M | {added} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
