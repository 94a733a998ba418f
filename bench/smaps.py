"""A process's resident memory by kind, read from outside through /proc/PID/smaps. Knows nothing about
the process.

Where the pages of a CPython + grpc process sit:

- `heap`: the brk heap, glibc's main arena (the main thread's malloc, and everything of CPython's
  own that is not pymalloc: large objects, dict/list storage, bytes).
- `arenas`: glibc's other arenas, one per thread that mallocs when they are contended (grpc core's
  threads and the aio poller), each a 64 MiB reservation of which only the part in use is
  readable (a `rw-p` mapping followed at once by a `---p` one, 64 MiB together on x86-64).
- `anon_other`: every other anonymous mapping: pymalloc's 1 MiB arenas (often merged into one
  mapping by the kernel), mmapped blocks of 128 KiB and up, thread stacks.
- `file`: file-backed pages (shared libraries, mostly grpc's `cygrpc` .so, read-only and shared).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ARENA_RESERVATION = 64 * 1024 * 1024
_HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \d+\s*(.*)$")


@dataclass
class _Mapping:
    start: int
    end: int
    perms: str
    path: str
    rss_kib: int = 0
    anon_kib: int = 0


def _mappings(pid: int) -> list[_Mapping]:
    maps: list[_Mapping] = []
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = _HEADER.match(line)
            if m:
                maps.append(_Mapping(int(m[1], 16), int(m[2], 16), m[3], m[4].strip()))
            elif line.startswith("Rss:"):
                maps[-1].rss_kib = int(line.split()[1])
            elif line.startswith("Anonymous:"):
                maps[-1].anon_kib = int(line.split()[1])
    return maps


def breakdown(pid: int) -> dict[str, float]:
    """Resident MiB by kind (heap, arenas, anon_other, file, total) and the number of 64 MiB heaps
    of glibc's non-main arenas. Raises OSError when the process is gone."""
    maps = _mappings(pid)
    kib = {"heap": 0, "arenas": 0, "anon_other": 0, "file": 0}
    arenas = 0
    for i, m in enumerate(maps):
        if m.path == "[heap]":
            kib["heap"] += m.rss_kib
        elif m.path.startswith("/") and m.anon_kib < m.rss_kib:
            kib["file"] += m.rss_kib - m.anon_kib
            kib["anon_other"] += m.anon_kib  # private copies of a library's data pages
        elif not m.path or m.path.startswith("["):
            nxt = maps[i + 1] if i + 1 < len(maps) else None
            is_arena = (
                m.perms == "rw-p" and nxt is not None and nxt.start == m.end and nxt.perms == "---p"
                and not nxt.path and nxt.end - m.start == ARENA_RESERVATION
            )
            if is_arena:
                arenas += 1
                kib["arenas"] += m.rss_kib
            else:
                kib["anon_other"] += m.rss_kib
        else:
            kib["anon_other"] += m.anon_kib
    out = {k: round(v / 1024, 2) for k, v in kib.items()}
    out["total"] = round(sum(kib.values()) / 1024, 2)
    out["arena_heaps"] = arenas
    return out
