"""What the relay reads from and writes into gRPC header blocks (sidecar/h2/grpc_headers.py)."""

import hpack
import pytest

from sidecar.core.call import Metadata, Outcome
from sidecar.core.status import Code
from sidecar.h2 import grpc_headers as gh
from sidecar.h2.limits import EXACT_MESSAGES


def test_path_deadline_and_metadata_are_read_from_request_headers():
    headers = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/inference.GRPCInferenceService/ModelInfer"),
        ("content-type", "application/grpc"),
        ("grpc-timeout", "1500m"),
        ("x-tenant", "acme"),
        ("x-blob-bin", "AP8"),
        ("x-raw-bin", "\x00\x01\xff"),
    ]
    path, deadline, metadata = gh.request(headers)
    assert path == "/inference.GRPCInferenceService/ModelInfer"
    assert deadline is not None and 1.4 < deadline.remaining() <= 1.5
    assert metadata == [
        ("x-tenant", "acme"),
        ("x-blob-bin", b"\x00\xff"),
        ("x-raw-bin", b"\x01\xff"),
    ]


def test_a_malformed_timeout_means_no_deadline():
    assert gh.deadline("soon") is None
    assert gh.deadline("1234567890S") is None
    assert gh.deadline("\u00b2S") is None  # a digit to str.isdigit, not to int()
    request = [(":method", "POST"), (":scheme", "http"), (":path", "/a"), ("grpc-timeout", "5x")]
    assert gh.request(request) == ("/a", None, [])


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ([("", "x")], "character"),
        ([("X-Up", "1")], "character"),
        ([("x-a", "a\nb")], "character"),
        ([("x-a", " lead")], "character"),
        ([(":path", "/again")], "repeated"),
        ([(":status", "200")], "unknown"),
        ([("connection", "close")], "connection-specific"),
        ([("te", "gzip")], "connection-specific"),
    ],
)
def test_malformed_requests_are_refused_before_the_model(fields, why):
    request = [(":method", "POST"), (":scheme", "http"), (":path", "/a/b"), ("x-ok-bin", "\x00\n\r")]
    assert gh.request(request)[0] == "/a/b"  # true-binary -bin values may hold any byte
    with pytest.raises(gh.Malformed, match=why):
        gh.request(request + fields)
    with pytest.raises(gh.Malformed, match="misplaced"):
        gh.request([("x-a", "1"), *request])
    for path in ("", "a/b", "/\x80", "/a b\x7f"):
        with pytest.raises(gh.Malformed, match="path"):
            gh.request([(":method", "POST"), (":scheme", "http"), (":path", path)])
    with pytest.raises(gh.Malformed, match="missing"):
        gh.request([(":method", "POST"), (":path", "/a/b")])


def test_status_message_and_trailers_are_read_from_trailers():
    got = gh.outcome([("grpc-status", "3"), ("grpc-message", "bad%20shape"), ("x-why", "shape")])
    assert got == Outcome(Code.INVALID_ARGUMENT, "bad shape", [("x-why", "shape")])
    assert gh.outcome([(":status", "200")]) is None
    assert gh.outcome([("grpc-status", "0")]) == Outcome(Code.OK)
    assert gh.outcome([("grpc-status", "banana")]) == Outcome(Code.UNKNOWN)


def _decode(decoder: hpack.Decoder, block: bytes) -> list[tuple[str, str]]:
    """With the `hpack` package's decoder: what we encode must decode with someone else's."""
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in decoder.decode(block, raw=True)]


def test_a_trailers_only_reply_decodes_and_leaves_the_decoder_table_empty():
    decoder = hpack.Decoder()
    block = gh.trailers_only(Outcome(Code.UNAVAILABLE, "/m: model not ready — 100%"))
    assert _decode(decoder, block) == [
        (":status", "200"),
        ("content-type", "application/grpc"),
        ("grpc-status", "14"),
        ("grpc-message", "/m: model not ready %E2%80%94 100%25"),
    ]
    assert len(decoder.header_table.dynamic_entries) == 0


def test_appended_literals_do_not_disturb_a_peer_table():
    encoder, decoder = hpack.Encoder(), hpack.Decoder()
    block = encoder.encode([(":path", "/a"), ("x-a", "1")]) + gh.literal_fields([("traceparent", "00-ab")])
    assert _decode(decoder, block)[-1] == ("traceparent", "00-ab")
    # The peers' tables still agree: the next block, indexed against them, decodes.
    assert _decode(decoder, encoder.encode([("x-a", "1")])) == [("x-a", "1")]


def test_a_size_update_encodes_per_rfc_7541():
    assert gh.table_size_update(0) == b"\x20"
    decoder = hpack.Decoder()
    decoder.decode(gh.table_size_update(0) + gh.table_size_update(4096))
    assert decoder.header_table.maxsize == 4096


def test_replaced_metadata_keeps_pseudo_and_transport_headers():
    headers = [(":path", "/a"), ("content-type", "application/grpc"), ("traceparent", "old"), ("x-a", "1")]
    metadata: Metadata = [("x-a", "1"), ("traceparent", "new"), ("x-b-bin", b"\x00\xff")]
    assert gh.with_metadata(headers, metadata) == [
        (":path", "/a"),
        ("content-type", "application/grpc"),
        ("x-a", "1"),
        ("traceparent", "new"),
        ("x-b-bin", "AP8"),
    ]


def test_message_bytes_leave_out_each_prefix_wherever_frames_split_it():
    stream = b"".join(b"\x00" + len(m).to_bytes(4, "big") + m for m in (b"", b"abc", b"x" * 300))
    for step in (1, 2, 4, 7, len(stream)):
        counter = gh.MessageBytes()
        for i in range(0, len(stream), step):
            counter.add(stream, i, min(i + step, len(stream)))
        assert (counter.total, counter.messages, counter.counted) == (303, 3, 303)
    assert gh.MessageBytes().counted is None  # no message at all, as grpcio reports it


def test_trailers_after_response_headers_carry_no_status_pseudo_header():
    block = gh.trailers_only(Outcome(Code.UNAVAILABLE, "model gone"), after_headers=True)
    assert _decode(hpack.Decoder(), block) == [("grpc-status", "14"), ("grpc-message", "model gone")]


def test_a_flood_of_empty_messages_is_counted_by_its_bytes_past_the_bound():
    flood = b"\x00\x00\x00\x00\x00" * (EXACT_MESSAGES + 100)
    counter = gh.MessageBytes()
    counter.add(flood, 0, len(flood) // 2)
    counter.add(flood, len(flood) // 2, len(flood))
    assert counter.messages == EXACT_MESSAGES
    assert counter.total == len(flood) - EXACT_MESSAGES * 5


def test_fields_found_well_formed_are_remembered_per_connection_and_bounded():
    request = [(":method", "POST"), (":scheme", "http"), (":path", "/a/b"), ("x-a", "1")]
    known: set[tuple[str, str]] = set()
    gh.request(request, known)
    assert known == set(request)
    bounded: set[tuple[str, str]] = set()
    gh.request(request, bounded, max_known=2)
    assert len(bounded) <= 2
    with pytest.raises(gh.Malformed):
        gh.request([*request, ("x-b", "a\nb")], known)
    assert ("x-b", "a\nb") not in known
    # Another connection's memo is its own: nothing is remembered between them.
    assert gh.request(request) == ("/a/b", None, [("x-a", "1")])
