"""Runs one attack class against one target while a legitimate client watches, and judges the outcome.

Issue 12's checks for every class, beside the class's own: the front door survives and still
serves; its RSS (the whole process tree's, from /proc, sampled every 50 ms) grows by less than
50 MB; a legitimate ModelInfer on another connection succeeds within 1 s during the attack and
after it; readiness stays READY throughout (grpc.health.v1 SERVING within 1 s and, for the sidecar,
GET /readyz 200). The watcher is a process of its own (tests/attacks/watch.py). Knows nothing
about pytest or how targets are started.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Final

from tests.attacks.spec import Attack, Check, Result, Target
from tests.support import REPO

sys.path.insert(0, str(REPO / "bench"))
import procstat

RSS_LIMIT: Final = 50 * 1000 * 1000  # issue 12: "RSS grows by less than 50 MB"
LEGIT_DEADLINE_S: Final = 1.0  # issue 12: "a legitimate call ... succeeds within 1 s"
AFTER_S: Final = 1.0  # how long the legitimate client keeps calling after the attack
WATCH_START_S: Final = 30.0


@dataclass(frozen=True)
class Verdict:
    attack: Attack
    target: str
    result: Result
    checks: tuple[Check, ...]  # the harness's, then the class's
    rss_growth: int  # bytes, at the peak
    legit_ms: tuple[float, float]  # slowest legitimate ModelInfer during the attack and after it

    @property
    def held(self) -> bool:
        """Every check that says whether the target held, whatever the form of its answer."""
        return all(c.ok for c in self.checks if c.holds)

    @property
    def to_spec(self) -> bool:
        """Every check, the spec's exact answer included: what the relay's tests require."""
        return all(c.ok for c in self.checks)

    def failures(self, *, spec: bool = True) -> list[Check]:
        return [c for c in self.checks if not c.ok and (spec or c.holds)]

    def report(self) -> str:
        lines = [f"{self.attack.name} against {self.target}: {self.result.summary}"]
        lines += [f"  [{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}" for c in self.checks]
        return "\n".join(lines)


class _Watcher:
    """tests/attacks/watch.py as a child process."""

    def __init__(self, target: Target) -> None:
        argv = [sys.executable, "-m", "tests.attacks.watch", "--host", target.host]
        argv += ["--grpc-port", str(target.port), "--deadline", str(LEGIT_DEADLINE_S)]
        if target.http_port:
            argv += ["--http-port", str(target.http_port)]
        self._proc = subprocess.Popen(
            argv, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._proc.stdout is not None
        line = _readline(self._proc, WATCH_START_S)
        if line.strip() != "watching":
            self._proc.kill()
            raise RuntimeError(f"{target.name} did not serve the legitimate client before the attack: {line}")

    def send(self, command: str) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(command + "\n")
        self._proc.stdin.flush()

    def stop(self) -> list[list[object]]:
        self.send("stop")
        out, _ = self._proc.communicate(timeout=10)
        samples: list[list[object]] = json.loads(out.strip().splitlines()[-1])["samples"]
        return samples

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()


def _readline(proc: subprocess.Popen[str], timeout: float) -> str:
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(proc.stdout.readline() if proc.stdout else ""))
    reader.daemon = True
    reader.start()
    reader.join(timeout)
    return got[0] if got else f"nothing within {timeout:g}s"


class _RssPeak:
    def __init__(self, pid: int) -> None:
        self._pid = pid
        self.peak = procstat.rss_bytes(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, procstat.rss_bytes(self._pid))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, procstat.rss_bytes(self._pid))
        return self.peak


def run(attack: Attack, target: Target) -> Verdict:
    watcher = _Watcher(target)
    try:
        before = procstat.rss_bytes(target.pid)
        rss = _RssPeak(target.pid)
        try:
            result = attack.run(target)
        finally:
            watcher.send("after")
            time.sleep(AFTER_S)
            peak = rss.stop()
        samples = watcher.stop()
    finally:
        watcher.kill()
    growth = peak - before
    checks = [
        *_legit(samples),
        Check(
            "rss", growth < RSS_LIMIT, f"RSS grew {growth / 1e6:.1f} MB (peak), limit {RSS_LIMIT / 1e6:g} MB"
        ),
        Check(
            "survived", target.alive(), "process alive after the attack" if target.alive() else "process gone"
        ),
        *result.checks,
    ]
    slowest = tuple(
        max((float(str(s[3])) for s in samples if s[1] == "infer" and s[0] == phase), default=float("nan"))
        for phase in ("during", "after")
    )
    return Verdict(attack, target.name, result, tuple(checks), growth, (slowest[0], slowest[1]))


def _legit(samples: list[list[object]]) -> list[Check]:
    def judged(kinds: tuple[str, ...], phase: str | None = None) -> tuple[int, list[str]]:
        chosen = [s for s in samples if s[1] in kinds and (phase is None or s[0] == phase)]
        bad = [f"{s[1]} at {s[2]}s: {s[5] or f'{s[3]} ms'}" for s in chosen if not s[4]]
        return len(chosen), bad

    checks = []
    for phase in ("during", "after"):
        n, bad = judged(("infer",), phase)
        ok = n > 0 and not bad
        detail = f"{n - len(bad)} of {n} ModelInfer within {LEGIT_DEADLINE_S:g}s" + (
            f"; {bad[:3]}" if bad else ""
        )
        checks.append(Check(f"legit-{phase}", ok, detail))
    n, bad = judged(("health", "readyz"))
    detail = f"{n - len(bad)} of {n} readiness probes answered SERVING/200" + (f"; {bad[:3]}" if bad else "")
    checks.append(Check("ready", n > 0 and not bad, detail))
    return checks
