"""The frame buffer and header-block assembly (sidecar/h2/reader.py)."""

import pytest

from sidecar.h2 import frames as f
from sidecar.h2.limits import MAX_BLOCK
from sidecar.h2.reader import FrameBuffer, header_block


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


def test_a_header_block_is_assembled_from_its_continuations():
    raw = (
        f.frame(f.HEADERS, f.END_STREAM | f.PADDED, 3, b"\x02abc\x00\x00")
        + f.frame(f.CONTINUATION, 0, 3, b"def")
        + f.frame(f.CONTINUATION, f.END_HEADERS, 3, b"g")
    )
    first_end = f.HEADER_LEN + 6
    block = header_block(raw, 0, first_end, 16384)
    assert block is not None
    assert (block.kind, block.sid, block.block, block.raw) == (f.HEADERS, 3, b"abcdefg", raw)
    assert block.flags & f.END_STREAM and block.flags & f.END_HEADERS
    assert header_block(raw[:-1], 0, first_end, 16384) is None  # the last CONTINUATION is not all here


@pytest.mark.parametrize(
    ("after", "code"),
    [
        (f.frame(f.DATA, 0, 3, b"x"), f.PROTOCOL_ERROR),
        (f.frame(f.CONTINUATION, f.END_HEADERS, 5, b"x"), f.PROTOCOL_ERROR),
        (f.frame(f.CONTINUATION, 0, 3, b"x" * 20000), f.FRAME_SIZE_ERROR),
    ],
    ids=["data", "other-stream", "oversized"],
)
def test_an_interrupted_or_oversized_block_is_a_connection_error(after, code):
    raw = f.frame(f.HEADERS, 0, 3, b"abc") + after
    with pytest.raises(f.ConnectionError_) as e:
        header_block(raw, 0, f.HEADER_LEN + 3, 16384)
    assert e.value.code == code


def test_a_block_larger_than_the_limit_is_refused():
    chunk = f.frame(f.CONTINUATION, 0, 3, b"x" * 16384)
    raw = f.frame(f.HEADERS, 0, 3, b"abc") + chunk * (MAX_BLOCK // 16384 + 1)
    with pytest.raises(f.ConnectionError_, match="too large"):
        header_block(raw, 0, f.HEADER_LEN + 3, 16384)
