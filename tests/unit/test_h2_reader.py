"""The frame buffer and header-block assembly (sidecar/h2/reader.py)."""

import pytest

from sidecar.h2 import frames as f
from sidecar.h2.limits import MAX_BLOCK
from sidecar.h2.reader import Counter, Frame, FrameBuffer, FrameReader


def _scan(buffer: FrameBuffer) -> list[bytes]:
    """Whole frames out of the buffer, as the relay's scan loops take them."""
    window = buffer.window()
    if window is None:
        return []
    buf, pos = window
    out, need = [], f.HEADER_LEN
    while len(buf) - pos >= f.HEADER_LEN:
        end = pos + f.HEADER_LEN + int.from_bytes(buf[pos : pos + 3], "big")
        if end > len(buf):
            need = end - pos
            break
        out.append(buf[pos:end])
        pos = end
    buffer.advance(pos, need)
    return out


def test_frames_split_anywhere_come_out_whole_and_in_order():
    stream = b"".join(f.frame(f.DATA, 0, 1, bytes([i]) * i) for i in range(40))
    for step in (1, 7, 100, len(stream)):
        buffer, got = FrameBuffer(), []
        for i in range(0, len(stream), step):
            buffer.feed(stream[i : i + step])
            got += _scan(buffer)
        assert b"".join(got) == stream
        assert buffer.buffered == 0


def test_a_large_frame_waits_unjoined_until_it_is_complete():
    big = f.frame(f.DATA, 0, 1, b"x" * 1_000_000)
    buffer = FrameBuffer()
    buffer.feed(big[:20])
    assert _scan(buffer) == []
    chunks = [big[i : i + 1000] for i in range(20, len(big), 1000)]
    for chunk in chunks[:-1]:
        buffer.feed(chunk)
        assert buffer.window() is None  # no join, no scan: nothing to copy yet
    buffer.feed(chunks[-1])
    assert _scan(buffer) == [big]


def test_the_preface_is_taken_once_complete():
    buffer = FrameBuffer()
    buffer.feed(f.PREFACE[:10])
    assert buffer.take(len(f.PREFACE)) is None
    buffer.feed(f.PREFACE[10:] + f.settings_ack())
    assert buffer.take(len(f.PREFACE)) == f.PREFACE
    assert _scan(buffer) == [f.settings_ack()]


def _blocks(
    raw: bytes, *, chunk: int = 0, max_block: int = MAX_BLOCK, max_continuations: int = 16
) -> list[Frame]:
    """The header blocks a reader hands up from `raw`, fed whole or `chunk` bytes per read."""
    got: list[Frame] = []
    reader = FrameReader(
        up=frozenset(range(256)), counters={}, forward=lambda span: None, handle=got.append,
        credit=lambda n: None, max_frame=16384, max_block=max_block, max_continuations=max_continuations,
    )  # fmt: skip
    for i in range(0, len(raw), chunk or len(raw)):
        reader.read(raw[i : i + (chunk or len(raw))])
    return got


def test_a_header_block_is_assembled_from_its_continuations():
    raw = (
        f.frame(f.HEADERS, f.END_STREAM | f.PADDED, 3, b"\x02abc\x00\x00")
        + f.frame(f.CONTINUATION, 0, 3, b"def")
        + f.frame(f.CONTINUATION, f.END_HEADERS, 3, b"g")
    )
    for chunk in (0, 1, 5, 9, 10):  # whole, byte by byte, across frame headers and payloads
        [block] = _blocks(raw, chunk=chunk)
        assert (block.kind, block.sid, block.block, block.raw) == (f.HEADERS, 3, b"abcdefg", raw), chunk
        assert block.flags & f.END_STREAM and block.flags & f.END_HEADERS
    assert _blocks(raw[:-1]) == []  # the last CONTINUATION is not all here


def test_a_block_in_parts_is_taken_once_per_fragment_not_rescanned():
    # 1,000 reads of one CONTINUATION each: each read's work is its own frame, so the reader
    # holds nothing but the fragments (no buffer of the block's frames waiting to be rescanned).
    reader = FrameReader(
        up=frozenset(range(256)), counters={}, forward=lambda span: None, handle=lambda fr: None,
        credit=lambda n: None, max_frame=16384, max_continuations=2000,
    )  # fmt: skip
    reader.read(f.frame(f.HEADERS, 0, 3, b"abc"))
    for _ in range(1000):
        reader.read(f.frame(f.CONTINUATION, 0, 3, b"x"))
        assert reader.buffered == 0


@pytest.mark.parametrize(
    ("after", "code"),
    [
        (f.frame(f.DATA, 0, 3, b"x"), f.PROTOCOL_ERROR),
        (f.frame(f.CONTINUATION, f.END_HEADERS, 5, b"x"), f.PROTOCOL_ERROR),
        (f.frame(f.CONTINUATION, 0, 3, b"x" * 20000), f.FRAME_SIZE_ERROR),
    ],
    ids=["data", "other-stream", "oversized"],
)
@pytest.mark.parametrize("chunk", [0, 12], ids=["one-read", "in-parts"])
def test_an_interrupted_or_oversized_block_is_a_connection_error(after, code, chunk):
    raw = f.frame(f.HEADERS, 0, 3, b"abc") + after
    with pytest.raises(f.ConnectionError_) as e:
        _blocks(raw, chunk=chunk)
    assert e.value.code == code


def test_a_block_larger_than_the_limit_is_refused_at_the_frame_header():
    chunk = f.frame(f.CONTINUATION, 0, 3, b"x" * 16384)
    raw = f.frame(f.HEADERS, 0, 3, b"abc") + chunk * (MAX_BLOCK // 16384 + 1)
    # Cut right after the frame header that passes the bound: its payload is not waited for.
    cut = f.HEADER_LEN + 3 + len(chunk) * (MAX_BLOCK // 16384) + f.HEADER_LEN
    with pytest.raises(f.ConnectionError_, match="too large") as e:
        _blocks(raw[:cut], max_continuations=1000)
    assert (e.value.code, e.value.kind) == (f.ENHANCE_YOUR_CALM, "header_block")


def test_a_single_headers_frame_larger_than_the_block_bound_is_refused():
    raw = f.frame(f.HEADERS, f.END_HEADERS, 3, b"x" * 101)
    assert _blocks(raw, max_block=101)
    with pytest.raises(f.ConnectionError_, match="too large") as e:
        _blocks(raw, max_block=100)
    assert (e.value.code, e.value.kind) == (f.ENHANCE_YOUR_CALM, "header_block")


@pytest.mark.parametrize("chunk", [0, 9], ids=["one-read", "frame-per-read"])
def test_more_continuations_than_the_cap_are_refused_empty_ones_too(chunk):
    head = f.frame(f.HEADERS, 0, 3, b"abc")
    ok = head + f.frame(f.CONTINUATION, 0, 3) * 3 + f.frame(f.CONTINUATION, f.END_HEADERS, 3)
    assert len(_blocks(ok, chunk=chunk, max_continuations=4)) == 1
    flood = head + f.frame(f.CONTINUATION, 0, 3) * 5
    with pytest.raises(f.ConnectionError_, match="more than 4 CONTINUATIONs") as e:
        _blocks(flood, chunk=chunk, max_continuations=4)
    assert (e.value.code, e.value.kind) == (f.ENHANCE_YOUR_CALM, "continuations")


def test_a_looked_at_block_in_parts_passes_whole_after_it_is_handled():
    out: list[tuple[str, object]] = []
    reader = FrameReader(
        up=(), look=(f.HEADERS,), counters={}, forward=lambda span: out.append(("span", span)),
        handle=lambda fr: out.append(("up", fr.block)), credit=lambda n: None, max_frame=16384,
    )  # fmt: skip
    ping = f.frame(f.PING, 0, 0, b"12345678")
    head, tail = f.frame(f.HEADERS, 0, 1, b"ab"), f.frame(f.CONTINUATION, f.END_HEADERS, 1, b"cd")
    reader.read(ping + head)
    reader.read(tail + ping)
    assert out == [("span", ping), ("up", b"abcd"), ("span", head + tail), ("span", ping)]


_ALL = frozenset(range(256))


class _Sink:
    """What a FrameReader forwards and hands up, in order."""

    def __init__(self) -> None:
        self.out: list[tuple[str, object]] = []

    def forward(self, span: bytes) -> None:
        self.out.append(("span", span))

    def handle(self, frame: Frame) -> None:
        self.out.append(("up", (frame.kind, frame.sid, frame.block)))

    def credit(self, increment: int) -> None:
        self.out.append(("credit", increment))


class _Count:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def frame(self, buf: bytes, pos: int, end: int) -> None:
        self.frames.append(buf[pos:end])


def _reader(
    sink: _Sink, counters: dict[int, Counter], up: frozenset[int] = _ALL, look: frozenset[int] = frozenset()
) -> FrameReader:
    return FrameReader(
        up=up, look=look, counters=counters, forward=sink.forward, handle=sink.handle, credit=sink.credit,
        max_frame=16384,
    )  # fmt: skip


def test_frames_of_relayed_streams_pass_in_one_span_and_the_rest_go_up_in_order():
    sink, count = _Sink(), _Count()
    reader = _reader(sink, {1: count})
    data = [f.frame(f.DATA, 0, 1, b"a"), f.window_update(1, 5), f.frame(f.DATA, f.END_STREAM, 1, b"b")]
    ping = f.frame(f.PING, 0, 0, b"12345678")
    stray = f.frame(f.DATA, 0, 3, b"c")  # not a relayed stream: goes up
    reader.read(b"".join([*data, ping, stray, data[0]]))
    assert sink.out == [
        ("span", b"".join(data)),
        ("up", (f.PING, 0, b"")),
        ("up", (f.DATA, 3, b"")),
        ("span", data[0]),
    ]
    assert count.frames == [data[0], data[2], data[0]]  # DATA is counted as it passes; WINDOW_UPDATE not


def test_only_the_directions_up_types_go_up_and_the_rest_pass():
    sink = _Sink()
    reader = _reader(sink, {}, up=frozenset({f.HEADERS}))
    other = f.frame(f.DATA, 0, 3, b"c") + f.frame(f.PING, 0, 0, b"12345678")
    headers = f.frame(f.HEADERS, f.END_HEADERS, 5, b"block")
    reader.read(other + headers + other)
    assert sink.out == [("span", other), ("up", (f.HEADERS, 5, b"block")), ("span", other)]


def test_a_frame_looked_at_goes_up_and_passes_on_in_its_span():
    sink = _Sink()
    reader = _reader(sink, {}, up=frozenset(), look=frozenset({f.HEADERS}))
    other = f.frame(f.DATA, 0, 3, b"c")
    headers = f.frame(f.HEADERS, f.END_HEADERS, 5, b"block")
    reader.read(other + headers + other)
    assert sink.out == [("up", (f.HEADERS, 5, b"block")), ("span", other + headers + other)]


def test_connection_credit_goes_up_as_its_increment_and_does_not_pass():
    sink = _Sink()
    reader = _reader(sink, {}, up=frozenset())
    other = f.frame(f.DATA, 0, 3, b"c")
    reader.read(other + f.window_update(0, 70000) + other)
    assert sink.out == [("span", other), ("credit", 70000), ("span", other)]


def test_a_header_block_split_across_reads_goes_up_once_whole():
    sink = _Sink()
    reader = _reader(sink, {})
    raw = f.frame(f.HEADERS, 0, 3, b"abc") + f.frame(f.CONTINUATION, f.END_HEADERS, 3, b"def")
    for i in range(len(raw)):
        reader.read(raw[i : i + 1])
    assert sink.out == [("up", (f.HEADERS, 3, b"abcdef"))]
    assert reader.buffered == 0


def test_a_paused_reader_stops_before_the_next_frame_and_goes_on_where_it_stopped():
    sink = _Sink()
    reader = _reader(sink, {})
    first, second = f.frame(f.HEADERS, f.END_HEADERS, 1, b"x"), f.frame(f.HEADERS, f.END_HEADERS, 3, b"y")

    def handle(frame: Frame) -> None:
        sink.handle(frame)
        reader.paused = True  # as the stream layer does while a new call awaits its verdict

    reader._handle = handle
    reader.read(first + second)
    assert sink.out == [("up", (f.HEADERS, 1, b"x"))]
    reader.paused = False
    reader.read()
    assert sink.out[-1] == ("up", (f.HEADERS, 3, b"y"))


def test_an_oversized_or_malformed_frame_is_a_connection_error_after_what_came_before():
    sink = _Sink()
    reader = _reader(sink, {1: _Count()})
    ok = f.frame(f.DATA, 0, 1, b"a")
    with pytest.raises(f.ConnectionError_) as e:
        reader.read(ok + f.frame(f.DATA, 0, 1, b"x" * 16385))
    assert e.value.code == f.FRAME_SIZE_ERROR and sink.out == [("span", ok)]
    for bad in (f.frame(f.PING, 0, 0, b"short"), f.frame(f.HEADERS, 0, 0, b"on stream 0")):
        reader = _reader(_Sink(), {})
        with pytest.raises(f.ConnectionError_):
            reader.read(bad)
