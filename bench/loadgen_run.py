"""Builds the Go load generator once per source version; runs it, measuring processes in its window.

Knows nothing about which proxies exist or how results are reported.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from procstat import Usage, Window

LOADGEN_DIR = pathlib.Path(__file__).resolve().parent / "loadgen"
EVENT = "EVENT "


def go_binary() -> str:
    found = shutil.which("go") or (
        "/usr/local/go/bin/go" if os.path.exists("/usr/local/go/bin/go") else None
    )
    if found is None:
        raise RuntimeError("go is not installed; the load generator needs Go >= 1.26")
    return found


def build() -> pathlib.Path:
    """The loadgen binary, built into the user cache dir unless this source version already is."""
    digest = hashlib.sha256()
    for path in sorted([*LOADGEN_DIR.glob("*.go"), LOADGEN_DIR / "go.mod", LOADGEN_DIR / "go.sum"]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache")
    binary = cache / "ai-sidecar-bench" / f"loadgen-{digest.hexdigest()[:16]}"
    if not binary.exists():
        binary.parent.mkdir(parents=True, exist_ok=True)
        tmp = binary.with_suffix(".tmp")
        subprocess.run(
            [go_binary(), "build", "-trimpath", "-o", str(tmp), "."],
            cwd=LOADGEN_DIR,
            check=True,
            timeout=600,
        )
        tmp.replace(binary)
    return binary


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """One generator run: open loop at `rate`, or closed loop with `saturate_workers` workers."""

    address: str
    payload: pathlib.Path
    warmup_s: float
    duration_s: float
    rate: float = 0.0
    arrivals: str = "poisson"  # or "uniform": one call every 1/rate
    saturate_workers: int = 0
    connections: int = 1
    seed: int = 1
    timeout_s: float = 5.0
    headers: tuple[tuple[str, str], ...] = ()  # metadata sent with every call
    authority: str = ""  # the channel's :authority, if not the address (a service, for egress)

    def args(self) -> list[str]:
        args = [
            f"-addr={self.address}",
            f"-payload={self.payload}",
            f"-warmup={self.warmup_s}s",
            f"-duration={self.duration_s}s",
            f"-conns={self.connections}",
            f"-timeout={self.timeout_s}s",
            f"-seed={self.seed}",
            *(f"-header={k}={v}" for k, v in self.headers),
            *([f"-authority={self.authority}"] if self.authority else []),
        ]
        if self.saturate_workers:
            return [*args, "-saturate", f"-workers={self.saturate_workers}"]
        return [*args, f"-rate={self.rate}", f"-arrivals={self.arrivals}"]


@dataclass(frozen=True, slots=True)
class LoadResult:
    report: dict[str, Any]  # the generator's JSON object
    window_s: float  # wall time between its window events, as the generator's clock saw it
    usage: dict[str, Usage]  # by the name given in `watch`, plus "loadgen"
    machine_busy_s: float  # CPU time all cores were busy in the window, whoever used it
    steal_s: float  # CPU time the hypervisor took from this machine in the window


def _ignore(event: str) -> None:
    pass


def run(
    binary: pathlib.Path,
    spec: LoadSpec,
    watch: dict[str, int],
    on_event: Callable[[str], None] = _ignore,
) -> LoadResult:
    """Run the generator; measure each tree in `watch` (name -> root pid) over its window.

    `on_event` hears each of the generator's events ("window-start", "window-end") as it comes,
    after this function's own measurement started or before it stopped."""
    popen = subprocess.Popen(
        [str(binary), *spec.args()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # The generator bounds itself; this bounds a generator that hangs anyway.
    limit = spec.warmup_s + spec.duration_s + spec.timeout_s + 30.0
    killer = threading.Timer(limit, popen.kill)
    killer.start()
    window = Window({**watch, "loadgen": popen.pid})
    usage: dict[str, Usage] = {}
    events: dict[str, int] = {}
    other: list[str] = []
    try:
        assert popen.stderr is not None and popen.stdout is not None
        for line in popen.stderr:
            if not line.startswith(EVENT):
                other.append(line)
                continue
            name, ns = line[len(EVENT) :].split()
            events[name] = int(ns)
            if name == "window-start":
                window.start()
                on_event(name)
            elif name == "window-end" and window.started:
                on_event(name)
                usage = window.stop()
        out = popen.stdout.read()
        code = popen.wait()
    finally:
        killer.cancel()
        if window.started and not usage:
            window.stop()
        if popen.poll() is None:
            popen.kill()
            popen.wait()
    if code != 0 or not usage:
        raise RuntimeError(
            f"loadgen {' '.join(spec.args())} exited with {code}:\n{''.join(other)}{out}"
        )
    window_s = (events["window-end"] - events["window-start"]) / 1e9
    return LoadResult(json.loads(out), window_s, usage, window.machine_busy_s, window.steal_s)
