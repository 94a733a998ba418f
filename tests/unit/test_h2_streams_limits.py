"""Issue 12's bounds on one relayed connection (sidecar/h2/streams.py), on a fake clock: the relay's own
SETTINGS, budgets for resets and control frames, the concurrent-stream and header-list limits, and the
flow control of the streams the relay answers itself."""

from __future__ import annotations

import asyncio
import struct

import hpack
import pytest

from sidecar.core.clock import FakeClock
from sidecar.h2 import frames as f
from sidecar.h2.hpack_decoder import Headers
from sidecar.h2.limits import LimitHits, Limits
from sidecar.h2.outbox import Outbox
from sidecar.h2.reader import RESET_LOOKAHEAD
from sidecar.h2.stream_events import Stream
from sidecar.h2.streams import Streams
from tests.unit.test_h2_streams import REQUEST, _Transport

LOCAL_PATH = "/local/Answer"
DEFAULT = Limits()


class _Events:
    """Relays every stream at once, but those on LOCAL_PATH, which it answers itself when they end."""

    def __init__(self) -> None:
        self.streams: Streams[Stream]
        self.local: set[int] = set()
        self.resets: list[int] = []
        self.hold = False  # leave each new stream awaiting its verdict, in `unjudged`
        self.unjudged: list[Stream] = []

    def opened(self, st: Stream, headers: Headers, end_stream: bool) -> bool:
        if self.hold:
            self.unjudged.append(st)
            return True
        if not any(k == ":method" for k, _ in headers):
            raise f.StreamError(f.PROTOCOL_ERROR, "no :method")
        if (":path", LOCAL_PATH) in headers:
            self.local.add(st.sid)
            return False
        self.streams.admit(st, [], None)
        return True

    def trailers(self, st: Stream, headers: Headers) -> None:
        pass

    def reset(self, st: Stream, code: int, by_client: bool) -> None:
        self.resets.append(st.sid)

    def message(self, st: Stream, from_client: bool, message: bytes) -> None:
        pass

    def held(self, st: Stream) -> bool:
        return False

    def data(self, sid: int, payload: bytes) -> None:
        pass

    def ended(self, sid: int, reset: bool) -> bool:
        if not reset and sid in self.local:
            self.streams.answer(sid, f.frame(f.DATA, f.END_STREAM, sid, b"12345"), 5)
        return False


class _Relay:
    def __init__(self, limits: Limits = DEFAULT, *, model: bool = True) -> None:
        self.clock = FakeClock()
        self.hits = LimitHits()
        self.errors: list[f.ConnectionError_] = []
        self.events = _Events()
        out = Outbox(asyncio.get_running_loop())
        self.client, self.model = _Transport(), _Transport()
        out.attach_client(self.client)  # type: ignore[arg-type]
        out.attach_model(self.model)  # type: ignore[arg-type]
        self.streams: Streams[Stream] = Streams(
            out, self.events, Stream, limits, self.errors.append, self.errors.append,
            hits=self.hits, clock=self.clock,
        )  # fmt: skip
        self.events.streams = self.streams
        self.streams.model = model
        self.streams.resume()
        self.encoder = hpack.Encoder()
        self.send(f.PREFACE)

    def send(self, data: bytes) -> None:
        self.streams.client_data(data)

    def request(self, sid: int, path: str = "/pkg.Svc/M", flags: int = f.END_HEADERS) -> bytes:
        fields = [(k, path if k == ":path" else v) for k, v in REQUEST]
        return f.frame(f.HEADERS, flags, sid, self.encoder.encode(fields))

    def to_client(self) -> list[tuple[int, int, int, bytes]]:
        return _frames(b"".join(self.client.writes))

    def to_model(self) -> list[tuple[int, int, int, bytes]]:
        raw = b"".join(self.model.writes)
        return _frames(raw[len(f.PREFACE) :] if raw.startswith(f.PREFACE) else raw)

    def goaway(self) -> tuple[int, str] | None:
        for kind, _, _, payload in self.to_client():
            if kind == f.GOAWAY:
                return f.error_code(payload), payload[8:].decode()
        return None


def _frames(raw: bytes) -> list[tuple[int, int, int, bytes]]:
    out, pos = [], 0
    while pos < len(raw):
        length, kind, flags, sid = f.parse_header(raw[pos : pos + f.HEADER_LEN])
        out.append((kind, flags, sid, raw[pos + f.HEADER_LEN : pos + f.HEADER_LEN + length]))
        pos += f.HEADER_LEN + length
    return out


def _resets(frames: list[tuple[int, int, int, bytes]]) -> dict[int, int]:
    return {sid: f.error_code(p) for kind, _, sid, p in frames if kind == f.RST_STREAM}


# ---- the relay's own SETTINGS ----


@pytest.mark.parametrize("model", [True, False], ids=["relayed", "no-model"])
async def test_the_relays_own_settings_come_first_and_their_ack_stops_at_the_relay(model: bool):
    relay = _Relay(Limits(max_concurrent_streams=7, max_header_list_size=9000), model=model)
    kind, flags, _, payload = relay.to_client()[0]
    assert (kind, flags) == (f.SETTINGS, 0)
    assert f.settings(payload) == {f.MAX_CONCURRENT_STREAMS: 7, f.MAX_HEADER_LIST_SIZE: 9000}
    relay.send(f.settings_ack())
    assert not [fr for fr in relay.to_model() if fr[0] == f.SETTINGS and fr[1] & f.ACK]


async def test_the_models_settings_reach_the_client_with_the_relays_limits_in_place_of_its_own():
    relay = _Relay(Limits(max_concurrent_streams=7, max_header_list_size=9000))
    window = {f.INITIAL_WINDOW_SIZE: 1 << 20}
    model_settings = {f.MAX_CONCURRENT_STREAMS: 1000, f.MAX_HEADER_LIST_SIZE: 4000, **window}
    relay.streams.model_data(f.settings_frame(model_settings))
    settings = [f.settings(p) for kind, flags, _, p in relay.to_client() if kind == f.SETTINGS and not flags]
    assert settings[1] == {f.MAX_CONCURRENT_STREAMS: 7, f.MAX_HEADER_LIST_SIZE: 4000, **window}
    # The client acknowledges the relay's, then the model's: only the second goes on to the model.
    relay.send(f.settings_ack() + f.settings_ack())
    assert len([fr for fr in relay.to_model() if fr[0] == f.SETTINGS and fr[1] & f.ACK]) == 1


# ---- streams ----


async def test_streams_past_the_concurrent_limit_are_refused_and_counted():
    relay = _Relay(Limits(max_concurrent_streams=2))
    relay.send(relay.request(1) + relay.request(3) + relay.request(5))
    assert _resets(relay.to_client()) == {5: f.REFUSED_STREAM}
    assert relay.hits.snapshot() == {"concurrent_streams": 1}
    assert [sid for kind, _, sid, _ in relay.to_model() if kind == f.HEADERS] == [1, 3]
    relay.send(f.rst_stream(1, f.CANCEL))  # one ends: there is room again
    relay.send(relay.request(7))
    assert [sid for kind, _, sid, _ in relay.to_model() if kind == f.HEADERS] == [1, 3, 7]
    assert not relay.errors


async def test_streams_answered_here_count_against_the_concurrent_limit():
    relay = _Relay(Limits(max_concurrent_streams=1))
    relay.send(relay.request(1, LOCAL_PATH, f.END_HEADERS) + relay.request(3))
    assert _resets(relay.to_client()) == {3: f.REFUSED_STREAM}


# ---- resets ----


async def test_a_stream_opened_and_reset_in_one_write_never_reaches_the_model():
    relay = _Relay()
    relay.send(relay.request(1) + f.rst_stream(1, f.CANCEL) + relay.request(3))
    assert [sid for kind, _, sid, _ in relay.to_model() if kind in (f.HEADERS, f.RST_STREAM)] == [3]
    assert relay.events.resets == []


def _to_model_of(relay: _Relay, *kinds: int) -> list[tuple[int, int]]:
    return [(kind, sid) for kind, _, sid, _ in relay.to_model() if kind in kinds]


async def test_a_reset_some_frames_behind_its_headers_in_one_write_keeps_the_stream_from_the_model():
    relay = _Relay()
    data = f.frame(f.DATA, 0, 1, b"\x00\x00\x00\x00\x01x")
    relay.send(relay.request(1) + data + f.window_update(0, 10) + _PING + f.rst_stream(1, f.CANCEL))
    assert _to_model_of(relay, f.HEADERS, f.DATA, f.RST_STREAM) == []
    assert relay.events.resets == [] and not relay.errors


async def test_a_stream_reset_while_its_verdict_waits_never_reaches_the_model_and_its_call_ends():
    relay = _Relay()
    relay.events.hold = True
    relay.send(relay.request(1))
    held = relay.events.unjudged
    assert held and _to_model_of(relay, f.HEADERS) == []
    relay.send(f.rst_stream(1, f.CANCEL))  # a later read, while the verdict is still out
    relay.events.hold = False
    relay.streams.admit(held[0], [], None)
    assert _to_model_of(relay, f.HEADERS, f.RST_STREAM) == []
    assert relay.events.resets == [1]  # its call heard the client's reset
    assert relay.streams.idle.is_set() and not relay.errors
    relay.send(relay.request(3))  # the connection goes on
    assert _to_model_of(relay, f.HEADERS) == [(f.HEADERS, 3)]


async def test_a_reset_past_the_lookahead_reaches_the_model_after_its_stream():
    relay = _Relay()
    data = f.frame(f.DATA, 0, 1, b"x")
    relay.send(relay.request(1) + data * RESET_LOOKAHEAD + f.rst_stream(1, f.CANCEL))
    assert _to_model_of(relay, f.HEADERS, f.RST_STREAM) == [(f.HEADERS, 1), (f.RST_STREAM, 1)]
    assert relay.events.resets == [1]


async def test_resets_past_the_budget_in_a_window_are_answered_enhance_your_calm():
    relay = _Relay(Limits(reset_budget=3, reset_window=1.0))
    sid = 1
    for _ in range(3):  # three per window, window after window: within the budget
        for _ in range(3):
            relay.send(relay.request(sid))
            relay.send(f.rst_stream(sid, f.CANCEL))
            sid += 2
        relay.clock.advance(1.0)
    assert relay.goaway() is None
    for _ in range(4):
        relay.send(relay.request(sid) + f.rst_stream(sid, f.CANCEL))
        sid += 2
    assert relay.goaway() == (f.ENHANCE_YOUR_CALM, "more than 3 RST_STREAM frames in 1s")
    assert relay.hits.snapshot() == {"rapid_reset": 1} and len(relay.errors) == 1


# ---- control frames ----

_PING = f.frame(f.PING, 0, 0, b"12345678")


@pytest.mark.parametrize(
    ("frame", "limits", "kind", "what"),
    [
        (_PING, Limits(ping_budget=5), "ping_flood", "PING frames"),
        (f.frame(f.SETTINGS, 0, 0), Limits(settings_budget=5), "settings_flood", "SETTINGS frames"),
        (f.frame(f.DATA, 0, 1), Limits(empty_frame_budget=5), "empty_frames", "empty DATA frames"),
        (f.frame(f.DATA, 0, 3), Limits(empty_frame_budget=5), "empty_frames", "empty DATA frames"),
    ],
    ids=["ping", "settings", "empty-data-relayed", "empty-data-local"],
)
async def test_control_and_empty_frames_past_their_budget_are_answered_enhance_your_calm(
    frame: bytes, limits: Limits, kind: str, what: str
):
    relay = _Relay(limits)
    relay.send(relay.request(1) + relay.request(3, LOCAL_PATH))
    for _ in range(5):
        relay.send(frame)
    relay.clock.advance(1.0)
    for _ in range(5):
        relay.send(frame)
    assert relay.goaway() is None and not relay.errors
    relay.send(frame)
    assert relay.goaway() == (f.ENHANCE_YOUR_CALM, f"more than 5 {what} in 1s")
    assert relay.hits.snapshot() == {kind: 1}


async def test_empty_data_on_a_relayed_stream_still_reaches_the_model_and_an_ending_one_is_free():
    relay = _Relay(Limits(empty_frame_budget=1))
    relay.send(relay.request(1) + f.frame(f.DATA, 0, 1) + f.frame(f.DATA, f.END_STREAM, 1) * 3)
    assert [(kind, flags) for kind, flags, sid, _ in relay.to_model() if sid == 1][1:] == [
        (f.DATA, 0), *[(f.DATA, f.END_STREAM)] * 3
    ]
    assert relay.goaway() is None


async def test_malformed_streams_past_their_budget_are_answered_enhance_your_calm():
    relay = _Relay(Limits(malformed_stream_budget=3))
    relay.send(b"".join(f.frame(f.HEADERS, f.END_HEADERS, sid) for sid in (1, 3, 5)))
    assert _resets(relay.to_client()) == {1: f.PROTOCOL_ERROR, 3: f.PROTOCOL_ERROR, 5: f.PROTOCOL_ERROR}
    relay.send(f.frame(f.HEADERS, f.END_HEADERS, 7))
    assert relay.goaway() == (f.ENHANCE_YOUR_CALM, "more than 3 malformed requests in 1s")
    assert relay.hits.snapshot() == {"malformed_streams": 1}


# ---- header blocks ----


async def test_a_header_list_past_the_advertised_size_is_answered_enhance_your_calm_while_decoding():
    relay = _Relay(Limits(max_header_list_size=1000))
    big = [(k, v) for k, v in REQUEST] + [("x-big", "v" * 900)]
    relay.send(f.frame(f.HEADERS, f.END_HEADERS, 1, relay.encoder.encode(big)))
    code, reason = relay.goaway() or (None, "")
    assert code == f.ENHANCE_YOUR_CALM and "larger than 1000 bytes" in reason
    assert relay.hits.snapshot() == {"header_list_size": 1} and not relay.to_model()[1:]


async def test_a_continuation_flood_is_answered_enhance_your_calm_and_counted():
    relay = _Relay(Limits(max_continuations=4))
    relay.send(relay.request(1, flags=0) + f.frame(f.CONTINUATION, 0, 1) * 5)
    assert relay.goaway() == (f.ENHANCE_YOUR_CALM, "header block of more than 4 CONTINUATIONs")
    assert relay.hits.snapshot() == {"continuations": 1}


# ---- flow control of what the relay answers itself ----


def _data_sids(relay: _Relay) -> list[int]:
    return [sid for kind, _, sid, _ in relay.to_client() if kind == f.DATA]


async def test_an_answer_from_here_waits_for_the_stream_window_then_goes():
    relay = _Relay()
    relay.send(f.settings_frame({f.INITIAL_WINDOW_SIZE: 0}))
    relay.send(relay.request(1, LOCAL_PATH, f.END_HEADERS | f.END_STREAM))
    assert _data_sids(relay) == []  # RFC 9113 6.9.1: no DATA on a stream whose window is 0
    relay.send(f.window_update(1, 4))
    assert _data_sids(relay) == []  # 5 bytes do not fit in 4
    relay.send(f.window_update(1, 1))
    assert _data_sids(relay) == [1]


async def test_a_larger_initial_window_opens_the_streams_waiting_here():
    relay = _Relay()
    relay.send(f.settings_frame({f.INITIAL_WINDOW_SIZE: 0}))
    relay.send(relay.request(1, LOCAL_PATH, f.END_HEADERS | f.END_STREAM))
    relay.send(relay.request(3, LOCAL_PATH, f.END_HEADERS | f.END_STREAM))
    assert _data_sids(relay) == []
    relay.send(f.settings_frame({f.INITIAL_WINDOW_SIZE: 65535}))
    assert _data_sids(relay) == [1, 3]


async def test_an_initial_window_past_the_maximum_is_a_flow_control_error():
    relay = _Relay()
    relay.send(f.frame(f.SETTINGS, 0, 0, struct.pack(">HL", f.INITIAL_WINDOW_SIZE, 2**31)))
    assert relay.goaway() is not None and relay.goaway()[0] == f.FLOW_CONTROL_ERROR  # type: ignore[index]


async def test_a_continuation_outside_a_header_block_is_a_protocol_error_even_after_an_unseen_reset():
    relay = _Relay()
    # h2spec http2/5.1/10: the stream never reached the model, so the relay must answer itself.
    relay.send(relay.request(1) + f.rst_stream(1, f.CANCEL) + f.frame(f.CONTINUATION, f.END_HEADERS, 1))
    code, reason = relay.goaway() or (None, "")
    assert code == f.PROTOCOL_ERROR and "without a header block" in reason


async def test_the_window_of_a_stream_answered_here_is_forgotten_once_it_is_answered():
    relay = _Relay()
    for sid in range(1, 200, 2):
        relay.send(relay.request(sid, LOCAL_PATH, f.END_HEADERS | f.END_STREAM))
    relay.send(f.settings_frame({f.INITIAL_WINDOW_SIZE: 0}))
    relay.send(relay.request(201, LOCAL_PATH, f.END_HEADERS | f.END_STREAM))
    assert len(relay.streams._windows) == 1  # only the one still waiting
    relay.send(f.window_update(201, 5))
    assert len(relay.streams._windows) == 0 and _data_sids(relay)[-1] == 201
