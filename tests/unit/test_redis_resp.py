"""RESP2 encoding and incremental reply parsing."""

import pytest

from sidecar.ratelimit import resp


def test_commands_are_arrays_of_bulk_strings():
    assert resp.command("GET", "k") == b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"


def test_replies_parse_incrementally():
    data = b"+OK\r\n:42\r\n$3\r\nabc\r\n$-1\r\n*2\r\n:1\r\n:0\r\n-NOSCRIPT no\r\n"
    pos, replies = 0, []
    while (parsed := resp.parse(data, pos)) is not None:
        reply, pos = parsed
        replies.append(reply)
    assert replies[:5] == [b"OK", 42, b"abc", None, [1, 0]]
    assert isinstance(replies[5], resp.ReplyError) and "NOSCRIPT" in str(replies[5])
    for cut in range(1, len(b"*2\r\n:1\r\n:0\r\n")):
        assert resp.parse(b"*2\r\n:1\r\n:0\r\n"[:cut], 0) is None


def test_garbage_is_a_protocol_error():
    with pytest.raises(resp.ProtocolError):
        resp.parse(b"?what\r\n", 0)
