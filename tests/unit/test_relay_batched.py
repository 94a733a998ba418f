"""The relay's batching helpers (sidecar/ingress/relay/batched.py): what is held whole, what is answered."""

from __future__ import annotations

import hpack

from sidecar.core.call import Outcome
from sidecar.core.status import Code
from sidecar.h2 import frames as f
from sidecar.ingress.relay import batched
from sidecar.ingress.relay.observer import NO_OBSERVER, joined, tap


def _framed(body: bytes) -> bytes:
    return b"\x00" + len(body).to_bytes(4, "big") + body


def test_a_request_is_held_whole_when_it_fits_and_given_up_when_it_cannot():
    body = b"m" * 100
    assert batched.whole_request(_framed(body), False) == body
    assert batched.whole_request(_framed(body) + b"next", True) == body
    assert batched.whole_request(_framed(body)[:50], False) is batched.NEED_MORE
    assert batched.whole_request(_framed(body)[:3], False) is batched.NEED_MORE
    assert batched.whole_request(_framed(body)[:50], True) is None  # ended short: not held
    assert batched.whole_request(b"\x01" + _framed(body)[1:], False) is None  # compressed
    big = b"b" * batched.HELD_REQUEST
    assert batched.whole_request(_framed(big)[:20], False) is None  # too long to hold: relayed


class _Taken:
    def __init__(self, reply: tuple[bytes, list[tuple[str, str]]] | None) -> None:
        self.sid = 5
        self.reply = reply
        self.observer = NO_OBSERVER


def _decoded(frames: bytes) -> list[tuple[int, int, object]]:
    decoder = hpack.Decoder()
    out: list[tuple[int, int, object]] = []
    pos = 0
    while pos < len(frames):
        length, kind, flags, sid = f.parse_header(frames[pos : pos + f.HEADER_LEN])
        payload = frames[pos + f.HEADER_LEN : pos + f.HEADER_LEN + length]
        assert sid == 5
        pos += f.HEADER_LEN + length
        if kind == f.CONTINUATION:
            kind, first_flags, block = out.pop()
            payload, flags = block + payload, first_flags | flags  # type: ignore[operator]
        if kind == f.HEADERS and flags & f.END_HEADERS:
            out.append((kind, flags, dict(decoder.decode(payload))))
        else:
            out.append((kind, flags, payload))
    return out


def test_a_taken_call_is_answered_with_its_reply_headers_and_trailers_or_its_outcome():
    seen: list[tuple[bool, bytes]] = []
    st = _Taken((b"r" * 40, [("x-model", "m")]))
    st.observer = joined(NO_OBSERVER, tap(lambda d, m: seen.append((d, m))))
    frames, data_bytes = batched.answer(st, Outcome(Code.OK, "", [("x-t", "1")]), 16)  # type: ignore[arg-type]
    parts = _decoded(frames)
    assert parts[0][0] == f.HEADERS and parts[0][2] == {":status": "200", "content-type": "application/grpc",
                                                        "x-model": "m"}  # fmt: skip
    data = b"".join(p for kind, _, p in parts if kind == f.DATA)  # type: ignore[misc]
    assert data == _framed(b"r" * 40) and data_bytes == 45
    assert all(len(p) <= 16 for kind, _, p in parts if kind == f.DATA)  # type: ignore[arg-type]
    assert parts[-1][1] & f.END_STREAM and parts[-1][2] == {"grpc-status": "0", "x-t": "1"}
    assert seen == [(False, _framed(b"r" * 40))] and st.reply is None

    failed = _Taken(None)
    frames, data_bytes = batched.answer(failed, Outcome(Code.DEADLINE_EXCEEDED, "late"), 16384)  # type: ignore[arg-type]
    [(_, flags, headers)] = _decoded(frames)
    assert flags & f.END_STREAM and data_bytes == 0
    assert headers == {":status": "200", "content-type": "application/grpc", "grpc-status": "4",
                       "grpc-message": "late"}  # fmt: skip

    huge = _Taken((b"h" * batched.ANSWERED_REPLY, []))
    frames, data_bytes = batched.answer(huge, Outcome(Code.OK), 16384)  # type: ignore[arg-type]
    [(_, _, headers)] = _decoded(frames)
    assert data_bytes == 0 and isinstance(headers, dict) and headers["grpc-status"] == "8"
    assert "the relay answers at most 65530" in headers["grpc-message"].replace("%20", " ")


async def test_the_terminal_sends_own_calls_and_taken_ones_over_the_link_and_the_rest_on_their_stream():
    from sidecar.core.call import Call
    from sidecar.ingress.relay.calls import RelayedCall

    sent: list[tuple[str, object]] = []

    async def forward(call: Call) -> Outcome:
        sent.append(("stream", call.exchange))
        return Outcome(Code.OK)

    async def own(call: Call) -> Outcome:
        exchange = call.exchange
        assert isinstance(exchange, batched.OwnInfer)
        sent.append(("link", exchange.request))
        exchange.response, exchange.initial = b"reply:" + exchange.request, [("x-model", "m")]
        return Outcome(Code.OK)

    send = batched.terminal(forward, own)
    relayed = RelayedCall(None, 1)  # type: ignore[arg-type]
    await send(Call(method="/m", metadata=[], deadline=None, protocol="grpc", exchange=relayed))
    batch = batched.OwnInfer(b"merged")
    await send(Call(method="/m", metadata=[], deadline=None, protocol="grpc", exchange=batch))
    # A call taken into a batch whose reply could not be split goes alone, over the link, and its
    # answer waits for the relay to send it.
    alone = RelayedCall(None, 3)  # type: ignore[arg-type]
    alone.taken, alone.request = True, b"mine"
    await send(Call(method="/m", metadata=[], deadline=None, protocol="grpc", exchange=alone))
    assert sent == [("stream", relayed), ("link", b"merged"), ("link", b"mine")]
    assert batch.response == b"reply:merged" and alone.reply == (b"reply:mine", [("x-model", "m")])
