from sidecar.core.clock import FakeClock
from sidecar.core.deadline import Deadline
from sidecar.core.status import Code, http_status
from sidecar.transport.metadata import forwardable


def test_hop_by_hop_and_pseudo_headers_are_dropped_custom_metadata_kept():
    md: list[tuple[str, str | bytes]] = [
        (":authority", "x"),
        ("te", "trailers"),
        ("grpc-timeout", "1S"),
        ("user-agent", "grpc-python"),
        ("x-tenant", "a"),
        ("trace-bin", b"\x00\x01"),
        ("grpc-trace-bin", b"\x01"),
        ("content-type", "application/grpc"),
    ]
    assert forwardable(md) == [
        ("x-tenant", "a"),
        ("trace-bin", b"\x00\x01"),
        ("grpc-trace-bin", b"\x01"),
    ]


def test_http_mapping_of_grpc_codes_as_the_oip_binding_requires():
    expected = {
        Code.OK: 200,
        Code.INVALID_ARGUMENT: 400,
        Code.NOT_FOUND: 404,
        Code.UNAUTHENTICATED: 401,
        Code.PERMISSION_DENIED: 403,
        Code.RESOURCE_EXHAUSTED: 429,
        Code.UNIMPLEMENTED: 501,
        Code.UNAVAILABLE: 503,
        Code.DEADLINE_EXCEEDED: 504,
        Code.INTERNAL: 500,
        Code.UNKNOWN: 500,
        Code.DATA_LOSS: 500,
    }
    assert {c: http_status(c) for c in expected} == expected


def test_deadline_counts_down_on_the_injected_clock():
    clock = FakeClock(100.0)
    d = Deadline.after(2.0, clock)
    clock.advance(0.5)
    assert d.remaining() == 1.5 and not d.expired
    clock.advance(2.0)
    assert d.remaining() == 0.0 and d.expired
    later = Deadline.after(10.0, clock)
    assert d.sooner(later) is d and later.sooner(d) is d and later.sooner(None) is later
