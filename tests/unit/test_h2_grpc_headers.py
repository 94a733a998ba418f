"""What the relay reads from gRPC header blocks (sidecar/h2/grpc_headers.py)."""

import pytest

from sidecar.core.call import Metadata, Outcome
from sidecar.core.status import Code
from sidecar.h2 import grpc_headers as gh


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
