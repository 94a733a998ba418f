"""grpc.health.v1 Check answered by the relay (sidecar/ingress/relay/health.py)."""

from grpc_health.v1 import health_pb2

from sidecar.h2 import frames as f
from sidecar.h2.hpack_decoder import Decoder
from sidecar.ingress.relay import health

SERVICES = frozenset({"", "inference.GRPCInferenceService"})


def _message(service: str) -> bytes:
    body: bytes = health_pb2.HealthCheckRequest(service=service).SerializeToString()
    return b"\x00" + len(body).to_bytes(4, "big") + body


def _frames(raw: bytes) -> list[tuple[int, int, bytes]]:
    out, pos = [], 0
    while pos < len(raw):
        length, kind, flags, _ = f.parse_header(raw[pos : pos + 9])
        out.append((kind, flags, raw[pos + 9 : pos + 9 + length]))
        pos += 9 + length
    return out


def test_a_known_service_gets_its_status_in_one_message():
    reply, data = health.answer(1, _message("inference.GRPCInferenceService"), True, SERVICES, 16384)
    (h, _, _), (d, _, message), (t, tflags, trailers) = _frames(reply)
    assert (h, d, t) == (f.HEADERS, f.DATA, f.HEADERS) and tflags & f.END_STREAM
    assert data == len(message)
    resp = health_pb2.HealthCheckResponse.FromString(message[5:])
    assert resp.status == health_pb2.HealthCheckResponse.SERVING
    assert Decoder().decode(trailers) == [("grpc-status", "0")]


def test_not_ready_is_not_serving_and_unknown_services_are_not_found():
    reply, _ = health.answer(1, _message(""), False, SERVICES, 16384)
    message = _frames(reply)[1][2]
    assert health_pb2.HealthCheckResponse.FromString(message[5:]).status == 2
    reply, data = health.answer(3, _message("nope"), True, SERVICES, 16384)
    ((_, _, block),) = _frames(reply)
    assert ("grpc-status", "5") in Decoder().decode(block) and data == 0


def test_a_malformed_request_is_invalid_argument():
    assert health.service_of(b"\x00\x00\x00\x00\x05ab") is None
    assert health.service_of(b"\x00\x00\x00\x00\x00") == ""


def test_watch_opens_with_the_status_now_and_updates_carry_one_message():
    reply, data, watched = health.watch(5, _message("no.such.Service"), True, SERVICES, 16384)
    (h, hflags, _), (d, dflags, message) = _frames(reply)
    assert (h, d) == (f.HEADERS, f.DATA) and not (hflags | dflags) & f.END_STREAM  # the stream stays open
    assert watched == ("no.such.Service", health.SERVICE_UNKNOWN) and data == len(message)
    assert health_pb2.HealthCheckResponse.FromString(message[5:]).status == health.SERVICE_UNKNOWN
    ((kind, _, update),) = _frames(health.update(5, health.NOT_SERVING))
    assert kind == f.DATA and health_pb2.HealthCheckResponse.FromString(update[5:]).status == 2
    reply, data, watched = health.watch(7, b"\x01junk", True, SERVICES, 16384)
    assert watched is None and data == 0
    assert ("grpc-status", "3") in Decoder().decode(_frames(reply)[0][2])
