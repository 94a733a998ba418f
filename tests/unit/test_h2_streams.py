"""The stream layer (sidecar/h2/streams.py) through its API: what crosses up to the layer above, and when."""

from __future__ import annotations

import asyncio

import hpack

from sidecar.h2 import frames as f
from sidecar.h2.hpack_decoder import Headers
from sidecar.h2.limits import Limits
from sidecar.h2.outbox import Outbox
from sidecar.h2.stream_events import Stream
from sidecar.h2.streams import Streams

REQUEST = [(":method", "POST"), (":scheme", "http"), (":path", "/pkg.Svc/M"), ("te", "trailers")]


class _Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def set_write_buffer_limits(self, high: int) -> None:
        pass

    def is_reading(self) -> bool:
        return True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class _Events:
    """The layer above: relays every stream at once (or, with `hold`, leaves it awaiting its verdict),
    marks those in `observed`, and records every call it gets."""

    def __init__(self, observed: frozenset[int] = frozenset(), hold: bool = False) -> None:
        self.streams: Streams[Stream]
        self.observed = observed
        self.hold = hold
        self.calls: list[tuple[str, int]] = []
        self.messages: dict[tuple[int, bool], list[bytes]] = {}

    def opened(self, st: Stream, headers: Headers, end_stream: bool) -> bool:
        self.calls.append(("opened", st.sid))
        if st.sid in self.observed:
            self.streams.observe(st)
        if not self.hold:
            self.streams.admit(st, [], None)
        return True

    def trailers(self, st: Stream, headers: Headers) -> None:
        self.calls.append(("trailers", st.sid))

    def reset(self, st: Stream, code: int, by_client: bool) -> None:
        self.calls.append(("reset", st.sid))

    def message(self, st: Stream, from_client: bool, message: bytes) -> None:
        self.calls.append(("message", st.sid))
        self.messages.setdefault((st.sid, from_client), []).append(message)

    def held(self, st: Stream) -> bool:
        self.calls.append(("held", st.sid))
        return False

    def data(self, sid: int, payload: bytes) -> None:
        self.calls.append(("data", sid))

    def ended(self, sid: int, reset: bool) -> bool:
        self.calls.append(("ended", sid))
        return False


def _relay(events: _Events) -> tuple[Streams[Stream], _Transport, _Transport]:
    out = Outbox(asyncio.get_running_loop())
    client, model = _Transport(), _Transport()
    out.attach_client(client)  # type: ignore[arg-type]
    out.attach_model(model)  # type: ignore[arg-type]

    def fail(e: f.ConnectionError_) -> None:
        raise AssertionError(f"connection error: {e}")

    streams: Streams[Stream] = Streams(out, events, Stream, Limits(), fail, fail)
    events.streams = streams
    streams.model = True
    streams.resume()
    return streams, client, model


def _messages(*bodies: bytes) -> bytes:
    return b"".join(b"\x00" + len(m).to_bytes(4, "big") + m for m in bodies)


def _data_frames(sid: int, stream: bytes, step: int, end_stream: bool) -> bytes:
    chunks = [stream[i : i + step] for i in range(0, len(stream), step)]
    return b"".join(
        f.frame(f.DATA, f.END_STREAM if end_stream and i == len(chunks) - 1 else 0, sid, chunk)
        for i, chunk in enumerate(chunks)
    )


async def test_an_observed_call_gets_its_messages_whole_and_an_unmarked_one_crosses_nothing_between():
    requests = _messages(b"a" * 40, b"", b"b" * 7)
    responses = _messages(b"r" * 25, b"s")
    for step in (1, 3, 5, 8, 100):
        events = _Events(observed=frozenset({1}))
        streams, client, model = _relay(events)
        encoder = hpack.Encoder()
        opening = b"".join(f.frame(f.HEADERS, f.END_HEADERS, sid, encoder.encode(REQUEST)) for sid in (1, 3))
        bodies = _data_frames(1, requests, step, True) + _data_frames(3, requests, step, True)
        streams.client_data(f.PREFACE + opening + bodies)
        response_encoder = hpack.Encoder()
        replies = b""
        for sid in (1, 3):
            replies += f.frame(f.HEADERS, f.END_HEADERS, sid, response_encoder.encode([(":status", "200")]))
            replies += _data_frames(sid, responses, step, False)
            trailers = response_encoder.encode([("grpc-status", "0")])
            replies += f.frame(f.HEADERS, f.END_HEADERS | f.END_STREAM, sid, trailers)
        streams.model_data(replies)
        assert events.messages == {
            (1, True): [_messages(b"a" * 40), _messages(b""), _messages(b"b" * 7)],
            (1, False): [_messages(b"r" * 25), _messages(b"s")],
        }, step
        # Stream 3: its start and its end, nothing in between.
        assert [c for c in events.calls if c[1] == 3] == [("opened", 3), ("trailers", 3)]
        # Both passed to the other side as they came: observing copies, it does not re-frame.
        assert b"".join(model.writes).endswith(_data_frames(3, requests, step, True))
        assert events.calls.count(("message", 1)) == 5 and ("trailers", 1) in events.calls
        assert client.writes and streams.idle.is_set()


async def test_a_relayed_call_crosses_up_twice_however_many_frames_it_has():
    events = _Events()
    streams, _, _ = _relay(events)
    headers = f.frame(f.HEADERS, f.END_HEADERS, 1, hpack.Encoder().encode(REQUEST))
    streams.client_data(f.PREFACE + headers + _data_frames(1, _messages(b"x" * 500), 7, True))
    encoder = hpack.Encoder()
    streams.model_data(
        f.frame(f.HEADERS, f.END_HEADERS, 1, encoder.encode([(":status", "200")]))
        + _data_frames(1, _messages(b"y" * 300), 9, False)
        + f.frame(f.HEADERS, f.END_HEADERS | f.END_STREAM, 1, encoder.encode([("grpc-status", "0")]))
    )
    assert events.calls == [("opened", 1), ("trailers", 1)]


async def test_frames_after_a_new_stream_wait_for_its_verdict_then_go_in_the_clients_order():
    events = _Events(hold=True)
    streams, _, model = _relay(events)
    encoder = hpack.Encoder()
    first = f.frame(f.HEADERS, f.END_HEADERS, 1, encoder.encode(REQUEST))
    second = f.frame(f.HEADERS, f.END_HEADERS, 3, encoder.encode(REQUEST))
    streams.client_data(f.PREFACE + first + second)
    assert events.calls == [("opened", 1)] and streams.pending is not None
    sent = b"".join(model.writes)
    assert first not in sent  # held until its verdict
    held = streams.pending
    streams.admit(held, [("x-added", "1")], None)
    assert events.calls == [("opened", 1), ("opened", 3)]  # the read went on after the verdict
    streams.admit(streams.pending, [], None)
    assert [(kind, sid) for kind, sid in _frames(b"".join(model.writes)) if kind == f.HEADERS] == [
        (f.HEADERS, 1),
        (f.HEADERS, 3),
    ]


def _frames(raw: bytes) -> list[tuple[int, int]]:
    out, pos = [], 0
    if raw.startswith(f.PREFACE):
        pos = len(f.PREFACE)
    while pos < len(raw):
        length, kind, _, sid = f.parse_header(raw[pos : pos + f.HEADER_LEN])
        out.append((kind, sid))
        pos += f.HEADER_LEN + length
    return out


async def test_a_taken_stream_lets_the_connection_go_on_and_ends_when_answered_or_reset():
    events = _Events(hold=True)
    streams, client, model = _relay(events)
    encoder = hpack.Encoder()
    first = f.frame(f.HEADERS, f.END_HEADERS, 1, encoder.encode(REQUEST))
    second = f.frame(f.HEADERS, f.END_HEADERS, 3, encoder.encode(REQUEST))
    body = _data_frames(1, _messages(b"q" * 20), 100, True)
    streams.client_data(f.PREFACE + first + body + second)
    taken = streams.pending
    assert taken is not None and taken.sid == 1
    streams.take(taken)
    # The read went on: stream 1's DATA and end went up as a locally answered stream's, 3 opened.
    assert events.calls[-3:] == [("data", 1), ("ended", 1), ("opened", 3)]
    assert first not in b"".join(model.writes) and not streams.idle.is_set()
    assert streams.pending is not None
    streams.admit(streams.pending, [], None)
    reply = f.frame(f.HEADERS, f.END_HEADERS | f.END_STREAM, 1, b"\x88")
    streams.answered(taken, reply, 0)
    await asyncio.sleep(0)  # the outbox writes when the loop comes round
    assert b"".join(client.writes).endswith(reply)
    streams.answered(taken, reply, 0)  # once only
    await asyncio.sleep(0)
    assert b"".join(client.writes).count(reply) == 1
    # A taken stream counts as in flight, and close() hands it back.
    events2 = _Events(hold=True)
    streams2, _, _ = _relay(events2)
    streams2.client_data(f.PREFACE + first + second)
    held = streams2.pending
    assert held is not None
    streams2.take(held)
    refused = streams2.pending
    assert refused is not None and refused.sid == 3
    streams2.refuse(refused, b"\x88")
    assert not streams2.idle.is_set()  # stream 1 is still to be answered
    assert streams2.close() == [held]


def _frame_lengths(raw: bytes) -> list[tuple[int, int, int]]:
    """(type, flags, payload length) of each frame in raw, after a preface if it starts with one."""
    out, pos = [], len(f.PREFACE) if raw.startswith(f.PREFACE) else 0
    while pos < len(raw):
        length, kind, flags, _ = f.parse_header(raw[pos : pos + f.HEADER_LEN])
        out.append((kind, flags, length))
        pos += f.HEADER_LEN + length
    return out


async def test_header_blocks_use_the_models_larger_frames_only_once_the_model_has_the_ack():
    # grpc-core enforces the SETTINGS_MAX_FRAME_SIZE it advertised only from the ACK on, and
    # closes the connection on a larger frame before it: the relay must frame to the old size.
    events = _Events(hold=True)
    streams, _, model = _relay(events)
    streams.client_data(f.PREFACE + f.settings_frame({}))
    streams.model_data(f.settings_frame({f.MAX_FRAME_SIZE: 1 << 22}))
    encoder = hpack.Encoder()
    big = [*REQUEST, ("x-big", "v" * 40_000)]

    def send(sid: int) -> list[tuple[int, int, int]]:
        block = encoder.encode(big)
        chunks = [block[i : i + 16_384] for i in range(0, len(block), 16_384)]
        frames = f.frame(f.HEADERS, f.END_STREAM, sid, chunks[0])
        for i, chunk in enumerate(chunks[1:], 1):
            frames += f.frame(f.CONTINUATION, f.END_HEADERS if i == len(chunks) - 1 else 0, sid, chunk)
        model.writes.clear()
        streams.client_data(frames)
        pending = streams.pending
        assert pending is not None
        streams.admit(pending, [("x-added", "1")], None)  # re-framed by the relay
        return _frame_lengths(b"".join(model.writes))

    before = send(1)
    assert {kind for kind, _, _ in before} == {f.HEADERS, f.CONTINUATION}
    assert max(length for _, _, length in before) <= f.DEFAULT_MAX_FRAME, before
    model.writes.clear()
    streams.client_data(f.settings_ack())  # the relay's own: it stops here
    assert model.writes == []
    streams.client_data(f.settings_ack())  # the model's
    assert _frame_lengths(b"".join(model.writes)) == [(f.SETTINGS, f.ACK, 0)]
    after = send(3)
    assert [kind for kind, _, _ in after] == [f.HEADERS] and after[0][2] > f.DEFAULT_MAX_FRAME
