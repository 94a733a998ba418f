"""The HTTP/2 attack classes of tests/attacks against three front doors side by side.

The relay (`--dataplane relay`), the grpcio plane (`--dataplane grpcio`) and nginx (`grpc_pass`,
bench/nginx_proxy.py), each in front of the same digits model and started afresh for every class.
Every class is the suite's own (tests/attacks/classes.py), judged by the suite's harness: a target
*held* when it survived (and logged no traceback), its RSS grew by less than 50 MB, it defended
itself (closed or throttled the attacker, or refused what the class abuses), a legitimate ModelInfer
on another connection succeeded within 1 s during the attack and after it, and readiness stayed
READY. Whether its answer had the exact form the spec asks of the relay is shown beside it.

    bash bench/setup.sh                      # nginx, if missing
    python bench/h2_attacks.py               # every class, all three targets (about 8 minutes)
    python bench/h2_attacks.py --targets relay,nginx --classes rapid-reset,ping-flood

Prints one line per run on stderr and markdown tables on stdout; writes everything to
bench/results/h2-attacks-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import Any

BENCH = pathlib.Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(REPO), str(REPO / "examples" / "python"), str(BENCH)]

import nginx_proxy  # noqa: E402

from local_stack import Proc, running  # noqa: E402
from tests.attacks.classes import ATTACKS  # noqa: E402
from tests.attacks.harness import Verdict, run  # noqa: E402
from tests.attacks.spec import Attack, Target  # noqa: E402
from tests.attacks.targets import Model, sidecar, target  # noqa: E402

TARGETS = ("relay", "grpcio", "nginx")
NAMES = {"relay": "the relay", "grpcio": "the grpcio plane", "nginx": "nginx"}
RESULTS = BENCH / "results"


@contextlib.contextmanager
def front_door(name: str, model: Proc) -> Iterator[tuple[Proc, Target]]:
    if name == "nginx":
        proc = nginx_proxy.start_nginx(model.ports["grpc"])
        try:
            with running(proc):
                yield proc, target("nginx", proc, model, http=False)
        finally:
            shutil.rmtree(proc.log_path.parent, ignore_errors=True)
    else:
        with sidecar(model, name) as door:
            yield door


def attack_once(attack: Attack, name: str, models: Model) -> tuple[Verdict, str]:
    with front_door(name, models.get()) as (proc, t):
        verdict = run(attack, t)
        log = proc.log()
    return verdict, ("Traceback" in log) * log[log.find("Traceback") :][:400]


def why(verdict: Verdict, traceback: str, width: int = 160) -> str:
    failed = [_clip(f"{c.name}: {c.detail}", width) for c in verdict.failures(spec=False)]
    if traceback:
        failed.append("logged a traceback")
    return "; ".join(failed)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def per_class_table(attack: Attack, rows: list[tuple[str, Verdict, str]]) -> str:
    out = [
        f"### {attack.title} ({attack.reference})",
        "",
        f"Expected of the relay: {attack.expected}.",
        "",
        "| target | held | answer | to spec | RSS +MB | legit ms during / after | ready | why not held |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, v, tb in rows:
        ready = next(c for c in v.checks if c.name == "ready")
        held = v.held and not tb
        during, after = v.legit_ms
        out.append(
            f"| {name} | {'held' if held else '**not held**'} | {cell(v.result.summary)} "
            f"| {'yes' if v.to_spec else 'no'} | {v.rss_growth / 1e6:.1f} | {during:.0f} / {after:.0f} "
            f"| {'yes' if ready.ok else 'no'} | {cell(why(v, tb)) or '-'} |"
        )
    return "\n".join(out)


def overview(results: dict[str, list[tuple[str, Verdict, str]]], targets: Sequence[str]) -> str:
    out = ["| class | " + " | ".join(targets) + " |", "| --- |" + " --- |" * len(targets)]
    held = dict.fromkeys(targets, 0)
    for attack in ATTACKS:
        rows = {name: (v, tb) for name, v, tb in results.get(attack.name, [])}
        if not rows:
            continue
        cells = []
        for name in targets:
            v, tb = rows[name]
            ok = v.held and not tb
            held[name] += ok
            cells.append(("held" if ok else "not held") + (" (to spec)" if v.to_spec and not tb else ""))
        out.append(f"| {attack.name} | " + " | ".join(cells) + " |")
    n = len(results)
    summary = "; ".join(f"{NAMES[name]} held {held[name]} of {n}" for name in targets)
    return "\n".join(out) + f"\n\n{summary[0].upper()}{summary[1:]}."


def commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "sidecar"], cwd=REPO, capture_output=True, text=True
    )
    return out.stdout.strip() + (" (sidecar/ modified)" if dirty.stdout.strip() else "")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--targets", default=",".join(TARGETS), help="subset of %(default)s")
    p.add_argument("--classes", default="", help="comma-separated class names (default: all)")
    p.add_argument("--out-dir", type=pathlib.Path, default=RESULTS)
    a = p.parse_args(argv)
    a.targets = [t for t in a.targets.split(",") if t]
    if bad := sorted(set(a.targets) - set(TARGETS)):
        p.error(f"--targets: unknown {', '.join(bad)}; choose from {', '.join(TARGETS)}")
    names = {x.name for x in ATTACKS}
    a.classes = [c for c in a.classes.split(",") if c] or [x.name for x in ATTACKS]
    if bad := sorted(set(a.classes) - names):
        p.error(f"--classes: unknown {', '.join(bad)}; choose from {', '.join(sorted(names))}")
    return a


def main(argv: Sequence[str] | None = None) -> int:
    a = parse_args(argv)
    started = datetime.datetime.now(datetime.UTC)
    head = commit()
    nginx = nginx_proxy.version() if "nginx" in a.targets else "-"
    results: dict[str, list[tuple[str, Verdict, str]]] = {}
    models = Model()
    try:
        for attack in (x for x in ATTACKS if x.name in a.classes):
            for name in a.targets:
                verdict, tb = attack_once(attack, name, models)
                results.setdefault(attack.name, []).append((name, verdict, tb))
                state = "held" if verdict.held and not tb else "NOT HELD: " + why(verdict, tb)
                print(f"{attack.name:20} {name:7} {state}", file=sys.stderr)
    finally:
        models.stop()
    header = f"Run on {started:%Y-%m-%d} at commit {head}; nginx {nginx}."
    tables = [header, "", overview(results, a.targets), ""]
    tables += [per_class_table(x, results[x.name]) + "\n" for x in ATTACKS if x.name in results]
    text = "\n".join(tables)
    print(text)
    a.out_dir.mkdir(parents=True, exist_ok=True)
    out = a.out_dir / f"h2-attacks-{started:%Y%m%dT%H%M%SZ}.json"
    doc: dict[str, Any] = {
        "command": " ".join([sys.executable, *sys.argv]),
        "commit": head,
        "nginx": nginx,
        "markdown": text,
        "runs": [
            {
                "class": cls,
                "target": name,
                "held": v.held and not tb,
                "to_spec": v.to_spec,
                "summary": v.result.summary,
                "rss_growth_bytes": v.rss_growth,
                "legit_ms": v.legit_ms,
                "traceback": tb,
                "checks": [
                    {"name": c.name, "ok": c.ok, "holds": c.holds, "detail": c.detail} for c in v.checks
                ],
            }
            for cls, rows in results.items()
            for name, v, tb in rows
        ],
    }
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
