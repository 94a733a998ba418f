"""Header blocks the egress proxy writes, and the service a call names."""

import pytest

from sidecar.egress.h2proxy import blocks
from sidecar.egress.h2proxy.downstream import service_of
from sidecar.h2.hpack_decoder import Decoder
from sidecar.transport.metadata import HOP_BY_HOP

REQUEST = [(":method", "POST"), (":scheme", "http"), (":path", "/a.B/C"), (":authority", "ocr:15001"),
           ("content-type", "application/grpc"), ("te", "trailers"), ("grpc-timeout", "5S"),
           ("grpc-encoding", "gzip"), ("user-agent", "grpc-go/1.85"), ("x-sidecar-target", "ocr"),
           ("connection", "x"), ("x-mine", "1")]  # fmt: skip


def test_blocks_decode_to_what_was_encoded_and_leave_the_table_alone():
    decoder = Decoder()
    headers = [*REQUEST, ("x-bin-bin", "AAE"), ("x-long", "v" * 300)]
    assert decoder.decode(blocks.encode(headers)) == headers
    assert decoder.table == (4096, ())  # nothing indexed: any connection decodes any block
    assert blocks.encode([(":method", "POST")]) == b"\x83"  # a static entry


def test_the_upstream_request_keeps_transport_fields_and_replaces_the_hops_own():
    out = blocks.upstream_request(
        REQUEST, "ocr", [("x-mine", "1"), ("trace-bin", b"\x00\x01")], HOP_BY_HOP, "250m"
    )
    assert out == [(":method", "POST"), (":scheme", "http"), (":path", "/a.B/C"), (":authority", "ocr"),
                   ("content-type", "application/grpc"), ("grpc-encoding", "gzip"),
                   ("user-agent", "grpc-go/1.85"), ("te", "trailers"), ("grpc-timeout", "250m"),
                   ("x-mine", "1"), ("trace-bin", "AAE")]  # fmt: skip


def test_an_upstream_request_gets_an_authority_when_the_client_sent_none():
    out = blocks.upstream_request(REQUEST[:3], "ocr", [], HOP_BY_HOP, None)
    assert out[0] == (":authority", "ocr") and ("grpc-timeout", "250m") not in out


@pytest.mark.parametrize(("authority", "service"), [
    ("ocr", "ocr"), ("ocr:15001", "ocr"), ("OCR-Service:1", "ocr-service"), ("ocr.", "ocr"),
    ("127.0.0.1:15001", ""), ("localhost:15001", ""), ("[::1]:15001", ""), ("", ""), ("10.0.0.1", ""),
])  # fmt: skip
def test_the_service_is_the_authoritys_host_and_an_address_names_none(authority, service):
    assert service_of(authority) == service
