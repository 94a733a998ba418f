"""Attacks that hold the target's resources over time: streams never finished, connections that
never speak, answers never read, a window that stays shut. Each returns the spec's checks
(tests/attacks/spec.py). Knows nothing about how targets are started or judged beyond its own answer.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from tests.attacks import h2
from tests.attacks.h2 import Peer, Requests
from tests.attacks.spec import (
    ATTACK_S,
    CHECK,
    EXTRA_STREAMS,
    HEALTH_BODY,
    IDLE,
    INFER,
    MAX_SENSIBLE_STREAMS,
    METADATA,
    METADATA_BODY,
    PARTIAL,
    PIPELINED,
    PREFACE_TIMEOUT_S,
    SETTLE_S,
    SILENT,
    WATCH,
    Check,
    Result,
    Target,
    closed_or_throttled,
    infer_body,
    until,
)


def stream_exhaustion(path: str) -> Callable[[Target], Result]:
    def run(t: Target) -> Result:
        with Peer(t.host, t.port) as p:
            limit = p.handshake().get(h2.MAX_CONCURRENT_STREAMS)
            sane = limit is not None and 1 <= limit <= MAX_SENSIBLE_STREAMS
            n = (limit if sane and limit is not None else MAX_SENSIBLE_STREAMS) + EXTRA_STREAMS
            reqs, out = Requests(), []
            for i in range(n):
                sid = 2 * i + 1
                out.append(h2.frame(h2.HEADERS, h2.END_HEADERS, sid, reqs.block(path)))
                if path == WATCH:  # the request, with END_STREAM: the answer stream stays open
                    out.append(h2.frame(h2.DATA, h2.END_STREAM, sid, HEALTH_BODY))
            p.write(b"".join(out), until())
            p.pump(ATTACK_S)
        a = p.answer
        sids = [2 * i + 1 for i in range(n)]
        refused = {sid for sid, code in a.resets.items() if code == h2.REFUSED_STREAM}
        advertised = Check(
            "advertised",
            sane,
            f"SETTINGS_MAX_CONCURRENT_STREAMS {limit} (expected 1..{MAX_SENSIBLE_STREAMS})",
            holds=False,
        )
        if sane and limit is not None:
            within, past = sids[:limit], sids[limit:]
            # Relayed calls are the model's to end; health streams the relay may bound lower itself.
            allowed = (h2.REFUSED_STREAM,) if path == WATCH else ()
            wrong = [s for s in within if s in a.resets and a.resets[s] not in allowed]
            ok = set(past) <= refused and not wrong and not a.goaways
            detail = (
                f"the {len(past)} streams past {limit} refused (RST_STREAM REFUSED_STREAM)"
                + (", none before" if path != WATCH else ", any before only REFUSED_STREAM")
                + f": {len(refused & set(past))} refused past, {len(wrong)} reset within; {a.summary()}"
            )
        else:
            ok, detail = False, f"no limit to enforce; {n} streams opened: {a.summary()}"
        bounded = Check("defended", len(refused) >= EXTRA_STREAMS or bool(a.goaways), a.summary())
        summary = f"{n} {path.rsplit('/', 1)[1]} streams held open; {a.summary()}"
        return Result(summary, (advertised, Check("answer", ok, detail, holds=False), bounded))

    return run


def model_sockets(pid: int) -> int:
    """How many sockets the model process holds open (its listeners and every connection)."""
    fds = Path(f"/proc/{pid}/fd")
    count = 0
    for fd in fds.iterdir():
        try:
            count += os.readlink(fd).startswith("socket:")
        except OSError:
            continue
    return count


def connection_flood(t: Target) -> Result:
    before = model_sockets(t.model_pid)
    start = time.monotonic()
    silent, f1 = h2.connect_many(t.host, t.port, SILENT)
    partial, f2 = h2.connect_many(t.host, t.port, PARTIAL, h2.PREFACE[:16])
    idle, f3 = h2.connect_many(t.host, t.port, IDLE, h2.PREFACE + h2.settings())
    time.sleep(1.0)
    dialled = model_sockets(t.model_pid) - before
    prefaceless = silent + partial
    closed: set[object] = set()
    deadline = start + PREFACE_TIMEOUT_S + 1.0
    while len(closed) < len(prefaceless) and time.monotonic() < deadline:
        closed |= h2.closed_by_peer(s for s in prefaceless if s not in closed)
        time.sleep(0.2)
    took = time.monotonic() - start
    for s in silent + partial + idle:
        s.close()
    failed = f1 + f2 + f3
    done = len(closed) == len(prefaceless)
    answer = Check(
        "answer",
        done,
        f"every connection without a preface closed within {PREFACE_TIMEOUT_S:g}s: "
        f"{len(closed)} of {len(prefaceless)} closed in {took:.1f}s",
        holds=False,
    )
    # The model is dialled only for connections that sent a preface (or not per client at all).
    quiet = Check(
        "defended",
        dialled <= IDLE + 5,
        f"the model gained {dialled} connections for {IDLE} clients with a preface"
        f" and {len(prefaceless)} without",
    )
    summary = (
        f"{SILENT} silent, {PARTIAL} half-preface, {IDLE} idle connections ({failed} failed to connect); "
        f"{len(closed)} of {len(prefaceless)} preface-less closed in {took:.1f}s; model +{dialled} sockets"
    )
    return Result(summary, (answer, quiet))


def slow_read(t: Target) -> Result:
    """Small calls with larger answers, pipelined on huge windows, never read: the target must stop."""
    calls = 0
    with Peer(t.host, t.port, reading=False, sndbuf=64 << 10, rcvbuf=16 << 10) as p:
        p.handshake({h2.INITIAL_WINDOW_SIZE: 2**31 - 1}, window=2**31 - 1 - 65535)
        reqs, sid = Requests(), 1

        def batch() -> bytes:
            nonlocal sid, calls
            out = []
            for _ in range(256):
                out.append(h2.frame(h2.HEADERS, h2.END_HEADERS, sid, reqs.block(METADATA)))
                out.append(h2.frame(h2.DATA, h2.END_STREAM, sid, METADATA_BODY))
                sid += 2
                calls += 1
            return b"".join(out)

        p.flood(batch, until())
        p.drain(SETTLE_S * 2)
    result = closed_or_throttled(p.answer)
    return Result(f"{calls} ModelMetadata calls written, answers never read; {result.summary}", result.checks)


def zero_window(t: Target) -> Result:
    """Calls of three kinds behind a zero window: nothing may come until it opens, then everything."""
    with Peer(t.host, t.port) as p:
        p.handshake({h2.INITIAL_WINDOW_SIZE: 0})
        reqs, out, sids = Requests(), [], []
        for i in range(3 * PIPELINED):
            sid = 2 * i + 1
            path, body = ((INFER, infer_body()), (METADATA, METADATA_BODY), (CHECK, HEALTH_BODY))[i % 3]
            out.append(h2.frame(h2.HEADERS, h2.END_HEADERS, sid, reqs.block(path)))
            out.append(h2.frame(h2.DATA, h2.END_STREAM, sid, body))
            sids.append(sid)
        p.write(b"".join(out), until())
        p.pump(ATTACK_S)
        early = {sid: n for sid, n in p.answer.data_bytes.items() if n and sid}
        p.write(h2.settings({h2.INITIAL_WINDOW_SIZE: 65535}), until())
        p.pump(2.0)
    a = p.answer
    unfinished = [s for s in sids if s not in a.ended]
    held = Check(
        "defended", not early, f"no DATA while the window was 0: {len(early)} streams got DATA early"
    )
    served = Check(
        "answer",
        not early and not unfinished and not a.goaways,
        f"nothing early, every call answered once the window opened: {len(early)} streams got DATA early, "
        f"{len(unfinished)} of {len(sids)} unfinished; {a.summary()}",
        holds=False,
    )
    return Result(f"{len(sids)} calls behind a zero window; {a.summary()}", (served, held))
