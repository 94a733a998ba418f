"""The gRPC interop test cases as a grpc.aio client, as grpc/grpc's doc/interop-test-descriptions.md
describes them (special_status_message as grpc-go's client runs it: the doc has no entry for it).

Each case runs against a channel to a server of grpc.testing.TestService and raises AssertionError
when what it received is not what the description says. Knows nothing about processes, ports or
the sidecar.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import grpc.aio

from tests.interop.protos import Protos

Code = grpc.StatusCode
Case = Callable[[Protos, grpc.aio.Channel], Awaitable[None]]

# Every call but timeout_on_sleeping_server's carries this deadline, so a stuck call fails the case.
DEADLINE = 10.0
SLEEPING_DEADLINE = 0.25
LARGE_REQUEST, LARGE_RESPONSE = 271828, 314159
REQUEST_SIZES = (27182, 8, 1828, 45904)
RESPONSE_SIZES = (31415, 9, 2653, 58979)
ECHO_INITIAL = ("x-grpc-test-echo-initial", "test_initial_metadata_value")
ECHO_TRAILING = ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab")
STATUS_MESSAGE = "test status message"
SPECIAL_STATUS_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"


class StatusMismatch(AssertionError):
    """A call ended with another status than the case expects; `got` is the one it ended with."""

    def __init__(self, what: str, got: grpc.StatusCode, details: str | None, want: grpc.StatusCode) -> None:
        super().__init__(f"{what}: got {got.name} {details!r}, want {want.name}")
        self.got = got


def _payload(pb: Protos, size: int) -> Any:
    return pb.messages.Payload(body=bytes(size))


def _stub(pb: Protos, channel: grpc.aio.Channel) -> Any:
    return pb.services.TestServiceStub(channel)


async def _expect_status(what: str, call: Any, want: grpc.StatusCode, details: str | None = None) -> None:
    got = await call.code()
    got_details = await call.details()
    if got != want:
        raise StatusMismatch(what, got, got_details, want)
    if details is not None:
        assert got_details == details, f"{what}: details {got_details!r}, want {details!r}"


async def _expect_ok(what: str, call: Any) -> None:
    await _expect_status(what, call, Code.OK)


def _assert_zeros(what: str, body: bytes, size: int) -> None:
    assert body == bytes(size), f"{what}: payload of {len(body)} bytes, want {size} zero bytes"


async def empty_unary(pb: Protos, channel: grpc.aio.Channel) -> None:
    call = _stub(pb, channel).EmptyCall(pb.empty.Empty(), timeout=DEADLINE)
    reply = await call
    assert isinstance(reply, pb.empty.Empty) and reply.ByteSize() == 0, f"EmptyCall replied {reply!r}"
    await _expect_ok("EmptyCall", call)


async def large_unary(pb: Protos, channel: grpc.aio.Channel) -> None:
    request = pb.messages.SimpleRequest(response_size=LARGE_RESPONSE, payload=_payload(pb, LARGE_REQUEST))
    reply = await _stub(pb, channel).UnaryCall(request, timeout=DEADLINE)
    _assert_zeros("UnaryCall", reply.payload.body, LARGE_RESPONSE)


async def client_streaming(pb: Protos, channel: grpc.aio.Channel) -> None:
    call = _stub(pb, channel).StreamingInputCall(timeout=DEADLINE)
    for size in REQUEST_SIZES:
        await call.write(pb.messages.StreamingInputCallRequest(payload=_payload(pb, size)))
    await call.done_writing()
    reply = await call
    assert reply.aggregated_payload_size == sum(REQUEST_SIZES) == 74922, reply


async def server_streaming(pb: Protos, channel: grpc.aio.Channel) -> None:
    request = pb.messages.StreamingOutputCallRequest(
        response_parameters=[pb.messages.ResponseParameters(size=size) for size in RESPONSE_SIZES]
    )
    call = _stub(pb, channel).StreamingOutputCall(request, timeout=DEADLINE)
    sizes = [len(reply.payload.body) async for reply in call]
    assert sizes == list(RESPONSE_SIZES), f"StreamingOutputCall replied sizes {sizes}"
    await _expect_ok("StreamingOutputCall", call)


async def ping_pong(pb: Protos, channel: grpc.aio.Channel) -> None:
    call = _stub(pb, channel).FullDuplexCall(timeout=DEADLINE)
    for request_size, response_size in zip(REQUEST_SIZES, RESPONSE_SIZES, strict=True):
        await call.write(
            pb.messages.StreamingOutputCallRequest(
                response_parameters=[pb.messages.ResponseParameters(size=response_size)],
                payload=_payload(pb, request_size),
            )
        )
        reply = await call.read()
        assert reply is not grpc.aio.EOF, f"FullDuplexCall ended before the reply of {response_size} bytes"
        _assert_zeros("FullDuplexCall", reply.payload.body, response_size)
    await call.done_writing()
    assert await call.read() is grpc.aio.EOF, "FullDuplexCall replied more than four times"
    await _expect_ok("FullDuplexCall", call)


async def empty_stream(pb: Protos, channel: grpc.aio.Channel) -> None:
    call = _stub(pb, channel).FullDuplexCall(timeout=DEADLINE)
    await call.done_writing()
    assert await call.read() is grpc.aio.EOF, "FullDuplexCall replied to no request"
    await _expect_ok("FullDuplexCall", call)


async def timeout_on_sleeping_server(pb: Protos, channel: grpc.aio.Channel) -> None:
    # As grpcio's own asyncio interop client runs it: not a 1 ms deadline, but one the request can
    # be written within, on a call the server sleeps through (interval_us, twice the deadline).
    # With 1 ms, grpcio's write races its own deadline and the call can end INTERNAL "Internal
    # error from Core" instead, with no proxy in between (7 in 75 runs here).
    request = pb.messages.StreamingOutputCallRequest(
        payload=_payload(pb, 27182),
        response_parameters=[pb.messages.ResponseParameters(interval_us=int(2 * SLEEPING_DEADLINE * 1e6))],
    )
    call = _stub(pb, channel).FullDuplexCall(timeout=SLEEPING_DEADLINE)
    await call.write(request)
    await call.done_writing()
    await _expect_status("FullDuplexCall past its deadline", call, Code.DEADLINE_EXCEEDED)


async def cancel_after_begin(pb: Protos, channel: grpc.aio.Channel) -> None:
    call = _stub(pb, channel).StreamingInputCall(timeout=DEADLINE)
    await call.wait_for_connection()  # the request's metadata has been sent, no message yet
    call.cancel()
    await _expect_status("StreamingInputCall cancelled after begin", call, Code.CANCELLED)


async def cancel_after_first_response(pb: Protos, channel: grpc.aio.Channel) -> None:
    call = _stub(pb, channel).FullDuplexCall(timeout=DEADLINE)
    await call.write(
        pb.messages.StreamingOutputCallRequest(
            response_parameters=[pb.messages.ResponseParameters(size=31415)], payload=_payload(pb, 27182)
        )
    )
    reply = await call.read()
    assert reply is not grpc.aio.EOF, "FullDuplexCall ended before its first reply"
    _assert_zeros("FullDuplexCall", reply.payload.body, 31415)
    call.cancel()
    await _expect_status("FullDuplexCall cancelled after its first reply", call, Code.CANCELLED)


async def _echo_status(pb: Protos, channel: grpc.aio.Channel, message: str, *, duplex: bool) -> None:
    status = pb.messages.EchoStatus(code=Code.UNKNOWN.value[0], message=message)
    unary = _stub(pb, channel).UnaryCall(pb.messages.SimpleRequest(response_status=status), timeout=DEADLINE)
    with contextlib.suppress(grpc.aio.AioRpcError):
        await unary
    await _expect_status("UnaryCall echoing a status", unary, Code.UNKNOWN, message)
    if not duplex:
        return
    stream = _stub(pb, channel).FullDuplexCall(timeout=DEADLINE)
    await stream.write(pb.messages.StreamingOutputCallRequest(response_status=status))
    await stream.done_writing()
    await _expect_status("FullDuplexCall echoing a status", stream, Code.UNKNOWN, message)


async def status_code_and_message(pb: Protos, channel: grpc.aio.Channel) -> None:
    await _echo_status(pb, channel, STATUS_MESSAGE, duplex=True)


async def special_status_message(pb: Protos, channel: grpc.aio.Channel) -> None:
    await _echo_status(pb, channel, SPECIAL_STATUS_MESSAGE, duplex=False)


async def _expect_echoed_metadata(what: str, call: Any) -> None:
    initial = (await call.initial_metadata()).get_all(ECHO_INITIAL[0])
    trailing = (await call.trailing_metadata()).get_all(ECHO_TRAILING[0])
    assert initial == [ECHO_INITIAL[1]], f"{what}: initial metadata {ECHO_INITIAL[0]} = {initial}"
    assert trailing == [ECHO_TRAILING[1]], f"{what}: trailing metadata {ECHO_TRAILING[0]} = {trailing}"


async def custom_metadata(pb: Protos, channel: grpc.aio.Channel) -> None:
    metadata = (ECHO_INITIAL, ECHO_TRAILING)
    request = pb.messages.SimpleRequest(response_size=LARGE_RESPONSE, payload=_payload(pb, LARGE_REQUEST))
    unary = _stub(pb, channel).UnaryCall(request, metadata=metadata, timeout=DEADLINE)
    _assert_zeros("UnaryCall", (await unary).payload.body, LARGE_RESPONSE)
    await _expect_echoed_metadata("UnaryCall", unary)

    stream = _stub(pb, channel).FullDuplexCall(metadata=metadata, timeout=DEADLINE)
    await stream.write(
        pb.messages.StreamingOutputCallRequest(
            response_parameters=[pb.messages.ResponseParameters(size=LARGE_RESPONSE)],
            payload=_payload(pb, LARGE_REQUEST),
        )
    )
    await stream.done_writing()
    replies = [reply async for reply in stream]
    assert [len(r.payload.body) for r in replies] == [LARGE_RESPONSE], "FullDuplexCall replies"
    await _expect_ok("FullDuplexCall", stream)
    await _expect_echoed_metadata("FullDuplexCall", stream)


async def unimplemented_method(pb: Protos, channel: grpc.aio.Channel) -> None:
    call = _stub(pb, channel).UnimplementedCall(pb.empty.Empty(), timeout=DEADLINE)
    with contextlib.suppress(grpc.aio.AioRpcError):
        await call
    await _expect_status("TestService/UnimplementedCall", call, Code.UNIMPLEMENTED)


async def unimplemented_service(pb: Protos, channel: grpc.aio.Channel) -> None:
    call = pb.services.UnimplementedServiceStub(channel).UnimplementedCall(pb.empty.Empty(), timeout=DEADLINE)
    with contextlib.suppress(grpc.aio.AioRpcError):
        await call
    await _expect_status("UnimplementedService/UnimplementedCall", call, Code.UNIMPLEMENTED)


# The acceptance list of the interop issue, in grpc-go's client's --test_case names.
CASES: dict[str, Case] = {
    case.__name__: case
    for case in (
        empty_unary,
        large_unary,
        client_streaming,
        server_streaming,
        ping_pong,
        empty_stream,
        timeout_on_sleeping_server,
        cancel_after_begin,
        cancel_after_first_response,
        status_code_and_message,
        special_status_message,
        custom_metadata,
        unimplemented_method,
        unimplemented_service,
    )
}
