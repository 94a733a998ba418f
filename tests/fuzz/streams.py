"""Hypothesis strategies for what a gRPC client or model writes on an HTTP/2 connection, valid or not.

Frames are packed here (RFC 9113 section 4.1), not with the relay's own frames module, so the
fuzz test leans on nothing it tests; header blocks come from the `hpack` package's encoder, one
per connection and direction, so its dynamic-table references stay meaningful until a case
mutates them. Knows nothing about sockets or the relay.
"""

from __future__ import annotations

import base64
import random
import struct
from collections.abc import Sequence
from typing import Final

import hpack
from hypothesis import strategies as st

from inference import grpc_service_pb2 as pb

PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# Frame types (RFC 9113 section 6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE = range(9)
CONTINUATION: Final = 0x9
END_STREAM: Final = 0x1
ACK: Final = 0x1
END_HEADERS: Final = 0x4
PADDED: Final = 0x8
PRIORITY_FLAG: Final = 0x20
MAX_FRAME: Final = 16384  # SETTINGS_MAX_FRAME_SIZE's initial value
OIP: Final = "/inference.GRPCInferenceService"
HEALTH_CHECK: Final = "/grpc.health.v1.Health/Check"
SERVER_LIVE: Final = f"{OIP}/ServerLive"

Fields = list[tuple[bytes, bytes]]

_U32_EDGES: Final = (0, 1, 4096, 16383, 16384, 65535, 2**24 - 1, 2**24, 2**31 - 1, 2**31, 2**32 - 1)
_SID_EDGES: Final = (0, 1, 2, 3, 4, 2**31 - 1, 2**31 + 1)


def frame(kind: int, flags: int, sid: int, payload: bytes = b"", *, length: int | None = None) -> bytes:
    n = len(payload) if length is None else length
    return struct.pack(">BHBBL", n >> 16 & 0xFF, n & 0xFFFF, kind, flags, sid) + payload


def hpack_int(value: int, prefix_bits: int, first: int) -> bytes:
    """An HPACK integer (RFC 7541 section 5.1)."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def rare(draw: st.DrawFn, in_ten: int = 1) -> bool:
    """True `in_ten` times out of ten; shrinks to False, so minimal cases keep only what matters."""
    return bool(draw(st.integers(0, 9)) >= 10 - in_ten)


def blob(max_size: int, small: int = 48) -> st.SearchStrategy[bytes]:
    """Bytes up to `max_size`; past `small` grown from a seed (Hypothesis caps what an example draws)."""
    if max_size <= small:
        return st.binary(max_size=max_size)
    sizes, seeds = st.integers(small + 1, max_size), st.integers(0, 2**32)
    grown = st.builds(lambda n, seed: random.Random(seed).randbytes(n), sizes, seeds)
    return st.one_of(st.binary(max_size=small), grown)


u32 = st.one_of(st.sampled_from(_U32_EDGES), st.integers(0, 2**32 - 1))
latin1 = st.binary(max_size=24)
_hex = st.text("0123456789abcdef", min_size=1, max_size=34)
_sloppy_hex = st.text("0123456789abcdefABCDEF-xz ", max_size=40)
_id = st.one_of(_hex, _sloppy_hex).map(str.encode)


def _traceparent(version: str, trace: bytes, span: bytes, flags: bytes) -> bytes:
    return version.encode() + b"-" + trace + b"-" + span + b"-" + flags


def _bin_value(raw: bytes, form: int) -> bytes:
    return (base64.b64encode(raw), base64.b64encode(raw).rstrip(b"="), b"\x00" + raw, raw)[form]


_VALUES: Final[dict[bytes, st.SearchStrategy[bytes]]] = {
    b"grpc-timeout": st.one_of(
        st.builds(lambda n, u: f"{n}{u}".encode(), st.integers(0, 10**10), st.sampled_from("HMSmun")),
        # Any latin-1 "digits" and unit: the relay reads header values as latin-1.
        st.builds(
            lambda n, u: (n + u).encode("latin-1"),
            st.text(st.characters(codec="latin-1"), max_size=9),
            st.sampled_from("HMSmunx"),
        ),
        latin1,
    ),
    b"traceparent": st.builds(_traceparent, st.sampled_from(["00", "01", "ff", "0"]), _id, _id, _id),
    b"b3": st.builds(lambda parts: b"-".join(parts), st.lists(_id, max_size=5)),
    b"x-b3-traceid": _id,
    b"x-b3-spanid": _id,
    b"x-b3-sampled": st.sampled_from([b"0", b"1", b"true", b"d", b""]),
    b"grpc-trace-bin": st.builds(_bin_value, blob(40), st.integers(0, 3)),
    b"x-data-bin": st.builds(_bin_value, blob(40), st.integers(0, 3)),
    b"grpc-status": st.one_of(st.integers(-1, 20).map(lambda n: str(n).encode()), latin1),
    b"grpc-message": st.one_of(latin1, st.sampled_from([b"%", b"%zz", b"%C3%28", b"%00"])),
}
_NAMES: Final = (
    *_VALUES,
    *(b"x-tenant", b"x-client-id", b"tracestate", b"x-b3-parentspanid", b"x-b3-flags", b"authorization"),
    *(b"te", b"connection", b"content-length", b"host", b"user-agent", b"grpc-encoding"),
    *(b"grpc-accept-encoding", b"X-Upper", b":path", b":status", b""),
)


@st.composite
def metadata_field(draw: st.DrawFn) -> tuple[bytes, bytes]:
    name = draw(st.one_of(st.sampled_from(_NAMES), latin1))
    return name, draw(_VALUES.get(name, latin1))


def infer_request(rows: int, seed: int) -> bytes:
    tensor = pb.ModelInferRequest.InferInputTensor(name="INPUT0", datatype="FP32", shape=[rows, 64])
    rng = random.Random(seed)
    raw = struct.pack(f"<{rows * 64}f", *(rng.randint(0, 16) for _ in range(rows * 64)))  # digit pixels
    request = pb.ModelInferRequest(model_name="digits", inputs=[tensor], raw_input_contents=[raw])
    return request.SerializeToString()


_PATHS: Final = (
    *(f"{OIP}/ServerLive", f"{OIP}/ServerReady", f"{OIP}/ModelInfer", f"{OIP}/ModelMetadata", HEALTH_CHECK),
    *("/grpc.health.v1.Health/Watch", "/no.Such/Method", "", "/", "*"),
)
_BODIES: Final = st.one_of(
    st.just(b""),
    st.builds(infer_request, st.integers(1, 4), st.integers(0, 2**32)),
    # grpc.health.v1.HealthCheckRequest: field 1, the service name.
    st.sampled_from([b"", b"inference.GRPCInferenceService", b"x"]).map(lambda n: b"\n%c%s" % (len(n), n)),
    blob(2000),
)


@st.composite
def grpc_message(draw: st.DrawFn) -> bytes:
    """One length-prefixed gRPC message; its flag and length sometimes lie."""
    body = draw(_BODIES)
    flag = draw(st.integers(0, 255)) if rare(draw) else 0
    length = draw(u32) if rare(draw) else len(body)
    return struct.pack(">BL", flag, length) + body


@st.composite
def request_fields(draw: st.DrawFn, *, utf8_path: bool) -> Fields:
    other = st.text(max_size=24).map(str.encode) if utf8_path else latin1
    path = draw(st.one_of(st.sampled_from(_PATHS).map(str.encode), other))
    method = draw(st.sampled_from([b"POST", b"GET", b""])) if rare(draw) else b"POST"
    fields = [(b":method", method), (b":scheme", b"http"), (b":path", path), (b":authority", b"127.0.0.1")]
    if rare(draw):
        fields = list(draw(st.permutations(fields)))
    fields += [(b"te", b"trailers"), (b"content-type", b"application/grpc")]
    fields += draw(st.lists(metadata_field(), max_size=6))
    if rare(draw):
        # Past one frame: the block needs CONTINUATIONs (or is too large for the relay).
        fields.append((b"x-large", draw(blob(70_000, small=0))))
    if utf8_path:  # every :path, the second one too
        fields = [(k, v.decode("latin-1").encode() if k == b":path" else v) for k, v in fields]
    return fields


@st.composite
def response_fields(draw: st.DrawFn, *, trailers: bool) -> Fields:
    fields: Fields = [] if trailers else [(b":status", b"200"), (b"content-type", b"application/grpc")]
    if trailers:
        fields.append((b"grpc-status", draw(_VALUES[b"grpc-status"])))
        if draw(st.booleans()):
            fields.append((b"grpc-message", draw(_VALUES[b"grpc-message"])))
    return fields + draw(st.lists(metadata_field(), max_size=4))


@st.composite
def header_block(draw: st.DrawFn, encoder: hpack.Encoder, fields: Fields) -> bytes:
    """`fields` encoded in the connection's encoder; sometimes garbled, resized or from a stranger."""
    large = sum(len(k) + len(v) for k, v in fields) > 4096
    choice = draw(st.integers(0, 19))
    if choice == 19:
        return draw(blob(300))
    if choice == 18:
        return hpack.Encoder().encode(fields, huffman=False)  # another encoder's table: out of step
    block: bytes = encoder.encode(fields, huffman=not large and draw(st.booleans()))
    if choice == 17:
        # A dynamic table size update, often beyond what the peer allowed (RFC 7541 section 6.3).
        block = hpack_int(draw(u32), 5, 0x20) + block
    elif choice == 16 and block:
        at = draw(st.integers(0, len(block) - 1))
        block = block[:at] + bytes([block[at] ^ draw(st.integers(1, 255))]) + block[at + 1 :]
    return block


@st.composite
def header_frames(draw: st.DrawFn, sid: int, block: bytes, end_stream: bool) -> bytes:
    """A HEADERS frame and the CONTINUATIONs the block needs, in drawn piece sizes; padded or prioritised."""
    size = draw(st.integers(1, MAX_FRAME)) if rare(draw, 3) else MAX_FRAME
    pieces = [block[i : i + size] for i in range(0, len(block), size)] or [b""]
    flags = END_STREAM if end_stream else 0
    first = pieces[0]
    if rare(draw):
        flags |= PRIORITY_FLAG
        first = struct.pack(">LB", draw(st.sampled_from(_SID_EDGES)), draw(st.integers(0, 255))) + first
    if rare(draw):
        flags |= PADDED
        pad = draw(st.integers(0, 255))
        first = bytes([pad]) + first + bytes(min(pad, draw(st.integers(0, 300))))
    out = [frame(HEADERS, flags | (END_HEADERS if len(pieces) == 1 else 0), sid, first)]
    for i, piece in enumerate(pieces[1:], 2):
        out.append(frame(CONTINUATION, END_HEADERS if i == len(pieces) else 0, sid, piece))
    return b"".join(out)


@st.composite
def data_frame(draw: st.DrawFn, sid: int, end_stream: bool) -> bytes:
    payload = b"".join(draw(st.lists(grpc_message(), max_size=2)))
    flags = END_STREAM if end_stream else 0
    if rare(draw):
        flags |= PADDED
        pad = draw(st.integers(0, 255))
        payload = bytes([pad]) + payload + bytes(min(pad, draw(st.integers(0, 300))))
    return frame(DATA, flags, sid, payload)


@st.composite
def settings_payload(draw: st.DrawFn) -> bytes:
    ids = st.one_of(st.integers(1, 6), st.integers(0, 0xFFFF))
    pairs = draw(st.lists(st.tuples(ids, u32), max_size=4))
    return b"".join(struct.pack(">HL", k, v) for k, v in pairs)


def _lie(draw: st.DrawFn, data: bytes) -> bytes:
    """Rarely, the frame header's length field says something else than the payload that follows."""
    if len(data) < 9 or not rare(draw):
        return data
    n = draw(st.one_of(st.integers(0, 64), st.integers(0, 2**24 - 1)))
    return struct.pack(">BH", n >> 16, n & 0xFFFF) + data[3:]


class Streams:
    """The stream ids a generated connection has opened, so later frames can name them (or not)."""

    def __init__(self, first: int) -> None:
        self.next = first
        self.open: list[int] = []

    def new(self, draw: st.DrawFn) -> int:
        if rare(draw):
            return int(draw(st.sampled_from(_SID_EDGES)))  # even, reused, zero, huge
        sid = self.next
        self.next += 2
        return sid

    def any(self, draw: st.DrawFn) -> int:
        if self.open and not rare(draw, 3):
            return int(draw(st.sampled_from(self.open)))
        return int(draw(st.one_of(st.sampled_from((*_SID_EDGES, self.next)), st.integers(0, 2**32 - 1))))


def _control_frame(draw: st.DrawFn, kind: int, streams: Streams) -> bytes:
    """A frame that opens nothing: sizes and stream ids mostly as the spec says, sometimes not."""
    if kind == SETTINGS:
        if rare(draw, 3):
            return frame(SETTINGS, ACK, 0)
        return frame(SETTINGS, 0, 0 if not rare(draw) else streams.any(draw), draw(settings_payload()))
    if kind == WINDOW_UPDATE:
        sid = 0 if draw(st.booleans()) else streams.any(draw)
        return frame(WINDOW_UPDATE, 0, sid, struct.pack(">L", draw(u32)))
    if kind == PING:
        return frame(PING, draw(st.sampled_from([0, ACK])), 0, draw(st.binary(min_size=8, max_size=8)))
    if kind == RST_STREAM:
        return frame(RST_STREAM, 0, streams.any(draw), struct.pack(">L", draw(st.integers(0, 14))))
    if kind == PRIORITY:
        return frame(PRIORITY, 0, streams.any(draw), struct.pack(">LB", streams.any(draw), 16))
    if kind == GOAWAY:
        payload = struct.pack(">LL", streams.any(draw), draw(st.integers(0, 14))) + draw(blob(40))
        return frame(GOAWAY, 0, 0, payload)
    if kind in (CONTINUATION, PUSH_PROMISE):
        return frame(kind, draw(st.integers(0, 255)), streams.any(draw), draw(blob(64)))
    # Any type, extensions too (RFC 9113 section 5.5: unknown types are ignored).
    payload = draw(blob(MAX_FRAME + 64))
    return frame(draw(st.integers(0, 255)), draw(st.integers(0, 255)), streams.any(draw), payload)


_CONTROL: Final = (
    *(SETTINGS, WINDOW_UPDATE, PING, RST_STREAM, PRIORITY, GOAWAY, CONTINUATION, PUSH_PROMISE, 0xFF),
)


@st.composite
def client_bytes(draw: st.DrawFn, *, utf8_paths: bool = False) -> bytes:
    """A connection as a client might write it: mostly a preface, SETTINGS and calls, with the odd lie.

    `utf8_paths` keeps every :path valid UTF-8, for a grpc.aio model whose server dies of one that is not.
    """
    preface = PREFACE
    if rare(draw):
        preface = draw(st.sampled_from([b"", PREFACE[:10], PREFACE[:-1] + b"X", b"GET / HTTP/1.1\r\n\r\n"]))
    out = [preface]
    if not rare(draw):
        out.append(frame(SETTINGS, 0, 0, draw(settings_payload()) if rare(draw, 3) else b""))
    out.append(draw(client_frames(hpack.Encoder(), Streams(1), 12, utf8_paths=utf8_paths)))
    return b"".join(out)


@st.composite
def client_frames(
    draw: st.DrawFn, encoder: hpack.Encoder, streams: Streams, most: int, *, utf8_paths: bool = True
) -> bytes:
    """Up to `most` things a client does after its preface: calls, frames on their streams, lies."""
    out = []
    for _ in range(draw(st.integers(0, most))):
        action = draw(st.integers(0, 7))
        if action <= 2:  # a call: its HEADERS, some DATA, usually its end
            sid = streams.new(draw)
            block = draw(header_block(encoder, draw(request_fields(utf8_path=utf8_paths))))
            ends = draw(st.integers(0, 3))  # 0: on HEADERS, 1: on DATA, 2: left open, 3: reset
            piece = draw(header_frames(sid, block, ends == 0))
            if ends:
                for i in range(draw(st.integers(1, 2))):
                    piece += draw(data_frame(sid, ends == 1 and i == 0))
            if ends == 2:
                streams.open.append(sid)
            elif ends == 3:
                piece += frame(RST_STREAM, 0, sid, struct.pack(">L", 8))
            out.append(_lie(draw, piece))
        elif action == 3:  # DATA or trailers on a stream opened before (or on one that is not)
            sid = streams.any(draw)
            if draw(st.booleans()):
                out.append(_lie(draw, draw(data_frame(sid, draw(st.booleans())))))
            else:
                block = draw(header_block(encoder, draw(st.lists(metadata_field(), max_size=3))))
                out.append(draw(header_frames(sid, block, True)))
        elif action == 4 and streams.open:  # flow control: more DATA than any window allows
            sid = draw(st.sampled_from(streams.open))
            count = draw(st.integers(1, 80))
            if draw(st.booleans()):  # one large message
                prefix = struct.pack(">BL", 0, count * MAX_FRAME - 5)
                out.append(frame(DATA, 0, sid, prefix + bytes(MAX_FRAME - 5)))
                out.append(frame(DATA, 0, sid, bytes(MAX_FRAME)) * (count - 1))
            else:  # a flood of empty messages (zeros): counted exactly up to a bound only
                out.append(frame(DATA, 0, sid, bytes(MAX_FRAME)) * count)
        elif action == 5:
            out.append(draw(blob(200)))
        else:
            out.append(_lie(draw, _control_frame(draw, draw(st.sampled_from(_CONTROL)), streams)))
    return b"".join(out)


@st.composite
def model_bytes(draw: st.DrawFn, client_sids: Sequence[int]) -> tuple[bytes, bytes]:
    """What a model writes, (on accept, once the client's calls arrived), answering calls on `client_sids`."""
    encoder = hpack.Encoder()
    streams = Streams(2)
    streams.open = list(client_sids)
    first = frame(SETTINGS, 0, 0, draw(settings_payload()) if rare(draw, 3) else b"")
    if rare(draw):
        first = draw(blob(100))
    out = []
    for _ in range(draw(st.integers(0, 10))):
        action = draw(st.integers(0, 6))
        sid = streams.any(draw)
        if action <= 2:  # a response: headers, messages, trailers (or trailers only)
            piece = b""
            if action != 2:
                block = draw(header_block(encoder, draw(response_fields(trailers=False))))
                piece += draw(header_frames(sid, block, False))
                for _ in range(draw(st.integers(0, 2))):
                    piece += draw(data_frame(sid, False))
            if not rare(draw, 2):
                block = draw(header_block(encoder, draw(response_fields(trailers=True))))
                piece += draw(header_frames(sid, block, True))
            out.append(_lie(draw, piece))
        elif action == 3:
            out.append(draw(blob(200)))
        else:
            out.append(_lie(draw, _control_frame(draw, draw(st.sampled_from(_CONTROL)), streams)))
    return first, b"".join(out)


def call(
    encoder: hpack.Encoder,
    sid: int,
    path: str,
    *extra: tuple[bytes, bytes],
    body: bytes = b"",
    end: bool = True,
) -> bytes:
    """A well-formed unary call: HEADERS, then one message in a DATA frame that ends the stream if `end`."""
    fields = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", path.encode())]
    fields += [(b":authority", b"h"), (b"te", b"trailers"), (b"content-type", b"application/grpc"), *extra]
    message = struct.pack(">BL", 0, len(body)) + body
    return frame(HEADERS, END_HEADERS, sid, encoder.encode(fields)) + frame(DATA, int(end), sid, message)


@st.composite
def client_session(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A client in two flights: calls on streams 1-7 (5 left open), then 9, the end of 5, sometimes more."""
    e = hpack.Encoder()
    first = PREFACE + frame(SETTINGS, 0, 0) + frame(WINDOW_UPDATE, 0, 0, struct.pack(">L", 1 << 20))
    first += call(e, 1, SERVER_LIVE)
    first += call(e, 3, f"{OIP}/ModelInfer", (b"grpc-timeout", b"5S"), body=infer_request(1, 0))
    first += call(e, 5, f"{OIP}/ServerReady", end=False)
    first += call(e, 7, HEALTH_CHECK)
    then = frame(SETTINGS, ACK, 0) + call(e, 9, f"{OIP}/ModelMetadata", (b"x-tenant", b"t"))
    then += frame(DATA, END_STREAM, 5) + frame(PING, 0, 0, bytes(8))
    if rare(draw, 3):
        then += draw(client_frames(e, Streams(11), 4))
    return first, then


# ---- mutations of a recorded session ----


def split_frames(data: bytes) -> list[bytes]:
    """The preface (if it leads) and each frame as written; a torn tail stays one piece."""
    pieces = []
    at = 0
    if data.startswith(PREFACE):
        pieces.append(PREFACE)
        at = len(PREFACE)
    while at < len(data):
        n = int.from_bytes(data[at : at + 3], "big") + 9
        pieces.append(data[at : at + n])
        at += n
    return pieces


@st.composite
def mutated(draw: st.DrawFn, session: bytes) -> bytes:
    """`session` with one to four frame- or byte-level edits."""
    pieces = split_frames(session)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.integers(0, 9))
        i = draw(st.integers(0, len(pieces) - 1)) if pieces else 0
        piece = pieces[i] if pieces else b""
        if op == 0 and pieces:
            del pieces[i]
        elif op == 1 and pieces:
            pieces.insert(i, piece)  # a duplicate, e.g. a replayed HEADERS
        elif op == 2 and len(pieces) > 1:
            j = draw(st.integers(0, len(pieces) - 1))
            pieces[i], pieces[j] = pieces[j], pieces[i]
        elif op == 3 and len(piece) >= 9:  # another stream id
            pieces[i] = piece[:5] + struct.pack(">L", draw(st.sampled_from(_SID_EDGES))) + piece[9:]
        elif op == 4 and len(piece) >= 9:  # other flags or type
            at = draw(st.sampled_from([3, 4]))
            pieces[i] = piece[:at] + bytes([draw(st.integers(0, 255))]) + piece[at + 1 :]
        elif op == 5:
            pieces[i:i] = [_lie(draw, frame(0xFF, 0, 0)) if rare(draw) else draw(blob(64))]
        elif op == 6 and piece:  # bit flips
            b = bytearray(piece)
            for _ in range(draw(st.integers(1, 3))):
                b[draw(st.integers(0, len(b) - 1))] ^= 1 << draw(st.integers(0, 7))
            pieces[i] = bytes(b)
        elif op == 7 and piece:  # the frame cut short, the stream goes on
            pieces[i] = piece[: draw(st.integers(0, len(piece) - 1))]
        elif op == 8:
            pieces[i:] = pieces[i : i + 1]  # the connection ends after this piece
        elif op == 9 and piece:  # a splice: the tail of one frame onto the head of another
            other = pieces[draw(st.integers(0, len(pieces) - 1))]
            pieces[i] = piece[: draw(st.integers(0, len(piece)))] + other[draw(st.integers(0, len(other))) :]
    return b"".join(pieces)


def cuts(data: bytes) -> st.SearchStrategy[list[bytes]]:
    """`data` in the pieces it is written in: one write, or a few, so frames arrive torn."""
    if len(data) < 2:
        return st.just([data])
    points = st.lists(st.integers(1, max(1, len(data) - 1)), max_size=4, unique=True).map(sorted)
    return points.map(lambda p: [data[a:b] for a, b in zip([0, *p], [*p, len(data)], strict=True) if a < b])
