"""HTTP/2 frame headers and the frames the relay builds (sidecar/h2/frames.py)."""

import pytest

from sidecar.h2 import frames as f


def test_a_built_frame_parses_back():
    raw = f.frame(f.HEADERS, f.END_HEADERS | f.END_STREAM, 7, b"abc")
    assert f.parse_header(raw[:9]) == (3, f.HEADERS, f.END_HEADERS | f.END_STREAM, 7)
    assert raw[9:] == b"abc"


def test_the_reserved_stream_id_bit_is_ignored():
    raw = bytearray(f.frame(f.DATA, 0, 5))
    raw[5] |= 0x80
    assert f.parse_header(bytes(raw))[3] == 5


def test_a_long_header_block_is_split_into_continuations():
    block = bytes(range(256)) * 100
    out = f.header_block_frames(3, block, True, 16384)
    frames, pos = [], 0
    while pos < len(out):
        length, kind, flags, sid = f.parse_header(out[pos : pos + 9])
        frames.append((kind, flags, sid, out[pos + 9 : pos + 9 + length]))
        pos += 9 + length
    assert [k for k, *_ in frames] == [f.HEADERS, f.CONTINUATION]
    assert frames[0][1] == f.END_STREAM and frames[1][1] == f.END_HEADERS
    assert b"".join(p for *_, p in frames) == block


def test_padding_and_priority_are_stripped_from_a_headers_fragment():
    payload = bytes([2]) + b"\x00\x00\x00\x01\x10" + b"block" + b"\x00\x00"
    assert f.headers_fragment(f.PADDED | f.PRIORITY_FLAG, payload) == b"block"


@pytest.mark.parametrize(
    ("length", "kind", "flags", "sid", "code"),
    [
        (16385, f.DATA, 0, 1, f.FRAME_SIZE_ERROR),
        (7, f.PING, 0, 0, f.FRAME_SIZE_ERROR),
        (3, f.WINDOW_UPDATE, 0, 0, f.FRAME_SIZE_ERROR),
        (5, f.SETTINGS, 0, 0, f.FRAME_SIZE_ERROR),
        (6, f.SETTINGS, f.ACK, 0, f.FRAME_SIZE_ERROR),
        (0, f.SETTINGS, 0, 1, f.PROTOCOL_ERROR),
        (4, f.DATA, 0, 0, f.PROTOCOL_ERROR),
        (8, f.PING, 0, 3, f.PROTOCOL_ERROR),
        (4, f.GOAWAY, 0, 0, f.FRAME_SIZE_ERROR),
    ],
)
def test_frames_the_spec_forbids_are_connection_errors(length, kind, flags, sid, code):
    with pytest.raises(f.ConnectionError_) as e:
        f.check(length, kind, flags, sid, 16384)
    assert e.value.code == code


def test_settings_and_control_frames_round_trip():
    assert f.settings(b"\x00\x01\x00\x00\x10\x00\x00\x05\x00\x00\x40\x00") == {1: 4096, 5: 16384}
    assert f.window_increment(f.window_update(0, 1234)[9:]) == 1234
    assert f.error_code(f.rst_stream(1, f.CANCEL)[9:]) == f.CANCEL
    assert f.error_code(f.goaway(9, f.PROTOCOL_ERROR, b"why")[9:]) == f.PROTOCOL_ERROR


def test_a_max_frame_size_setting_outside_its_range_is_a_connection_error():
    assert f.max_frame_size({f.MAX_FRAME_SIZE: 16384}, "") == 16384
    assert f.max_frame_size({f.HEADER_TABLE_SIZE: 0}, "") is None
    for size in (16383, 2**24):
        with pytest.raises(f.ConnectionError_, match=f"model SETTINGS_MAX_FRAME_SIZE {size}") as e:
            f.max_frame_size({f.MAX_FRAME_SIZE: size}, "model ")
        assert e.value.code == f.PROTOCOL_ERROR
