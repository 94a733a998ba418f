"""What the relay reads from gRPC header blocks (sidecar/h2/grpc_headers.py), in both builds."""

from __future__ import annotations

import random
from types import ModuleType
from typing import Any

import pytest

from sidecar.core.call import Metadata, Outcome
from sidecar.core.status import Code
from tests.support import twins

gh = twins.both("grpc_headers")


def test_path_deadline_and_metadata_are_read_from_request_headers(gh: ModuleType):
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


def test_a_malformed_timeout_means_no_deadline(gh: ModuleType):
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
def test_malformed_requests_are_refused_before_the_model(gh: ModuleType, fields, why):
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


def test_status_message_and_trailers_are_read_from_trailers(gh: ModuleType):
    got = gh.outcome([("grpc-status", "3"), ("grpc-message", "bad%20shape"), ("x-why", "shape")])
    assert got == Outcome(Code.INVALID_ARGUMENT, "bad shape", [("x-why", "shape")])
    assert gh.outcome([(":status", "200")]) is None
    assert gh.outcome([("grpc-status", "0")]) == Outcome(Code.OK)
    assert gh.outcome([("grpc-status", "banana")]) == Outcome(Code.UNKNOWN)


def test_replaced_metadata_keeps_pseudo_and_transport_headers(gh: ModuleType):
    headers = [(":path", "/a"), ("content-type", "application/grpc"), ("traceparent", "old"), ("x-a", "1")]
    metadata: Metadata = [("x-a", "1"), ("traceparent", "new"), ("x-b-bin", b"\x00\xff")]
    assert gh.with_metadata(headers, metadata) == [
        (":path", "/a"),
        ("content-type", "application/grpc"),
        ("x-a", "1"),
        ("traceparent", "new"),
        ("x-b-bin", "AP8"),
    ]


def test_fields_found_well_formed_are_remembered_per_connection_and_bounded(gh: ModuleType):
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


_NAMES = (
    ":method",
    ":scheme",
    ":path",
    ":authority",
    ":status",
    "content-type",
    "te",
    "grpc-timeout",
    "x-a",
    "x-b-bin",
    "connection",
    "host",
    "grpc-status",
    "grpc-message",
    "",
    "X-Up",
    "x y",
)
_VALUES = (
    "POST",
    "http",
    "/a/b",
    "/",
    "a/b",
    "/\x80",
    "trailers",
    "gzip",
    "1500m",
    "5x",
    "AP8",
    "\x00\x01",
    "bad%20shape",
    "3",
    "0",
    "banana",
    "",
    " lead",
    "a\nb",
    "\x00",
    "ok",
)


def _call(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except Exception as e:  # the two builds must fail alike, with the same message
        return type(e).__name__, str(e)


def test_the_compiled_twin_reads_random_blocks_as_the_pure_one_does():
    # Seeded random header lists, well-formed or not, through both builds side by side (with one
    # `known` memo each, kept across blocks as a connection keeps it, and a small bound).
    pure, compiled = (twins.load("grpc_headers", kind) for kind in twins.BUILDS)
    rng = random.Random(16)
    memos: tuple[set[tuple[str, str]], set[tuple[str, str]]] = (set(), set())
    for case in range(3000):
        block = [(rng.choice(_NAMES), rng.choice(_VALUES)) for _ in range(rng.randint(0, 8))]
        if rng.random() < 0.6:  # most blocks start as a request does
            block = [(":method", "POST"), (":scheme", "http"), (":path", rng.choice(_VALUES)), *block]
        a, b = (_call(m.request, block, memo, 16) for m, memo in zip((pure, compiled), memos, strict=True))
        if a[0] == b[0] == "ok":  # deadlines differ by the time between the calls
            a, b = (("ok", (r[1][0], r[1][1] is None, r[1][2])) for r in (a, b))
        assert a == b, (case, block)
        assert memos[0] == memos[1], case
        assert _call(pure.outcome, block) == _call(compiled.outcome, block), (case, block)
