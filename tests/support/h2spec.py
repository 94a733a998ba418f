"""h2spec (built by scripts/setup-h2spec.sh) run against HTTP/2 servers; its verdicts per case and how two
servers' verdicts differ. Knows no sidecar: a target is a port speaking prior-knowledge h2c.

A gRPC server resets h2spec's plain `GET /` requests, and h2spec then waits out its per-case timeout
for a response that never comes, so most of a run is waiting, not work: the cases are split over
several h2spec processes that run at once.
"""

from __future__ import annotations

import enum
import functools
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

VERSION = "2.2.1"  # scripts/setup-h2spec.sh builds this one
HOST = "127.0.0.1"
# Its three spec groups as --dryrun titles them, and as case ids name them.
_GROUPS = {
    "Generic tests for HTTP/2 server": "generic",
    "Hypertext Transfer Protocol Version 2 (HTTP/2)": "http2",
    "HPACK: Header Compression for HTTP/2": "hpack",
}
_SECTION = re.compile(r"^\s+(\d+(?:\.\d+)*)\. ")
_CASE = re.compile(r"^\s+(\d+): (.+)$")


class H2specError(RuntimeError):
    """h2spec is missing, did not finish in time, or left no verdict for a case."""


class Verdict(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Result:
    case: str  # h2spec's own id, which its command line takes too: http2/6.5/1
    title: str
    verdict: Verdict
    actual: str = ""  # what h2spec saw instead of what it wanted, for a failed case


Report = dict[str, Result]  # by case id, in h2spec's order


def binary() -> pathlib.Path | None:
    cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache")
    exe = cache / "ai-sidecar" / f"h2spec-{VERSION}" / "h2spec"
    return exe if exe.is_file() and os.access(exe, os.X_OK) else None


def _exe() -> pathlib.Path:
    exe = binary()
    if exe is None:
        raise H2specError(f"h2spec {VERSION} is not built: run scripts/setup-h2spec.sh")
    return exe


@functools.cache
def catalogue() -> dict[tuple[str, str], str]:
    """Every case's id by (JUnit package, title), from `--dryrun`: the JUnit report names a case only
    by its section and title, and numbers nothing."""
    out = subprocess.run(
        [str(_exe()), "--dryrun"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    found: dict[tuple[str, str], str] = {}
    group = section = ""
    for line in out.splitlines():
        if line in _GROUPS:
            group, section = _GROUPS[line], ""
        elif m := _CASE.match(line):
            package = f"{group}/{section}"
            found[(package, m[2])] = f"{package}/{m[1]}"
        elif m := _SECTION.match(line):
            section = m[1]
        elif line.strip():
            raise H2specError(f"h2spec --dryrun printed a line this parser does not know: {line!r}")
    if not found:
        raise H2specError(f"h2spec --dryrun listed no cases:\n{out}")
    return found


def parse_junit(path: pathlib.Path) -> Report:
    ids = catalogue()
    report: Report = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        package, title = case.get("package", ""), case.get("classname", "")
        case_id = ids.get((package, title))
        if case_id is None:
            raise H2specError(f"{path}: case {package} {title!r} is not in h2spec --dryrun")
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if case.find("skipped") is not None:
            report[case_id] = Result(case_id, title, Verdict.SKIPPED)
        elif problem is None:
            report[case_id] = Result(case_id, title, Verdict.PASSED)
        else:
            # Either "Expect:\n<one a line>\nActual:\n<one>" or "<expected, one a line>\n<actual>".
            lines = (problem.text or "").splitlines()
            report[case_id] = Result(case_id, title, Verdict.FAILED, lines[-1] if lines else "")
    return report


def run(
    ports: Mapping[str, int],
    *,
    cases: Sequence[str] = (),
    shards: int = 16,
    case_timeout: int = 2,
    limit: float = 90.0,
) -> dict[str, Report]:
    """`cases` (all by default) against each named port, all at once, each target's cases dealt
    round-robin over `shards` processes. Raises H2specError if they have not all finished after
    `limit` seconds, killing them first."""
    exe = _exe()
    wanted = list(cases or catalogue().values())
    work = pathlib.Path(tempfile.mkdtemp(prefix="h2spec-"))
    procs: list[tuple[str, pathlib.Path, pathlib.Path, subprocess.Popen[bytes]]] = []
    try:
        for name, port in ports.items():
            for i in range(shards):
                chunk = wanted[i::shards]
                if not chunk:
                    continue  # h2spec without case ids runs every case
                junit, log = work / f"{name}-{i}.xml", work / f"{name}-{i}.log"
                argv = [str(exe), "-h", HOST, "-p", str(port), "-o", str(case_timeout), "-j", str(junit)]
                with log.open("wb") as out:
                    popen = subprocess.Popen([*argv, *chunk], stdout=out, stderr=out)
                procs.append((name, junit, log, popen))
        deadline = time.monotonic() + limit
        for name, _, log, popen in procs:
            try:
                popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise H2specError(
                    f"h2spec against {name} still running after {limit:.0f} s; its output so far:\n"
                    + log.read_text(errors="replace")[-4000:]
                ) from None
        reports: dict[str, Report] = {name: {} for name in ports}
        for name, junit, log, _ in procs:
            if not junit.exists():
                raise H2specError(
                    f"h2spec against {name} wrote no report:\n{log.read_text(errors='replace')}"
                )
            reports[name].update(parse_junit(junit))
        for name, report in reports.items():
            missing = [c for c in wanted if c not in report]
            if missing:
                raise H2specError(f"h2spec against {name} has no verdict for {', '.join(missing)}")
            reports[name] = {c: report[c] for c in wanted}
        return reports
    finally:
        for _, _, _, popen in procs:
            if popen.poll() is None:
                popen.kill()
                popen.wait()
        shutil.rmtree(work, ignore_errors=True)


def passed(report: Report) -> int:
    return sum(r.verdict is Verdict.PASSED for r in report.values())


def regressions(backend: Report, relayed: Report) -> set[str]:
    """Cases the backend alone passes and the same backend behind the relay does not."""
    return {
        c for c, r in backend.items() if r.verdict is Verdict.PASSED and relayed[c].verdict is not r.verdict
    }


def differences(backend: Report, relayed: Report) -> list[str]:
    return [c for c, r in backend.items() if r.verdict is not relayed[c].verdict]


def _cell(r: Result) -> str:
    if r.verdict is not Verdict.FAILED:
        return r.verdict.value
    return f"failed: {r.actual}".replace("|", "\\|")


def markdown(backend: Report, relayed: Report, notes: Mapping[str, str]) -> str:
    """A table of the cases whose verdict differs, with `notes` (by case id) saying why."""
    rows = [
        "| h2spec case | what it checks | backend alone | through the relay | why |",
        "| --- | --- | --- | --- | --- |",
    ]
    for c in differences(backend, relayed):
        b, r = backend[c], relayed[c]
        title = b.title.replace("|", "\\|")
        rows.append(f"| `{c}` | {title} | {_cell(b)} | {_cell(r)} | {notes.get(c, '')} |")
    return "\n".join(rows) + "\n"
