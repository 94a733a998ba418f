"""Caps glibc's malloc arenas for a long-lived process with native threads. Knows nothing about the sidecar.

glibc gives each thread that mallocs an arena of its own, up to 8 per core. An arena other than the
main one keeps its high-water mark: it gives memory back only from the top of its last heap, so the
free pages under a chunk still in use stay resident for good. grpc core does its I/O, name
resolution and timers on threads of its own (event_engine, grpc_global_timer) and uvloop resolves
names on libuv's workers; an egress sidecar, which opens a channel for every instance that comes and
closes the one of every instance that goes, left each of those arenas at its own peak. Its RSS then
stepped up with every burst of calls (issue 13's soak: +6.4 % in 30 minutes) although nothing it
held grew: tracemalloc, gc object counts and mallinfo's bytes in use stayed flat while the arenas'
free bytes rose. grpc/grpc#40817 reports the same growth from channel churn, gone with
MALLOC_ARENA_MAX=1.

Two arenas, the usual remedy: the main thread's, where CPython does nearly all its allocating under
the GIL, and one that the native threads share (a second lock, so they seldom wait on the main one).

An operator's MALLOC_ARENA_MAX wins: glibc reads it itself at start-up, and this leaves it alone.
On a C library other than glibc (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import platform
from collections.abc import Mapping

ENV = "MALLOC_ARENA_MAX"  # glibc's own variable, not a sidecar setting
ARENAS = 2
_M_ARENA_MAX = -8  # <malloc.h>


def cap_arenas(environ: Mapping[str, str], arenas: int = ARENAS) -> bool:
    """Limit the process to `arenas` malloc arenas, unless `environ` sets MALLOC_ARENA_MAX or the C
    library is not glibc. Call it before threads start: arenas that exist stay. True when applied."""
    if ENV in environ or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arenas))
