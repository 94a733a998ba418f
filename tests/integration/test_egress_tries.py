"""Each egress try, seen by small instances in the test process that record what every try brought.

The client is a real sidecar process; its discovery is a static registry file naming these
instances (real aiohttp and grpc.aio servers on loopback sockets), and calls go through its real
egress listeners. An instance's 503 is held back while another instance may be tried, and the
retry tells that instance the time left, not the caller's timeout; a stream that has forwarded a
response message is never tried again, and its caller hears the instance's status at once. The
tests say nothing of how egress is built, so they hold for the stream-level proxy too.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import grpc
import grpc.aio
import pytest
import pytest_asyncio
from aiohttp import web
from grpc_health.v1 import health, health_pb2_grpc

from sidecar.core.deadline import grpc_timeout
from tests.support.procs import HOST, Proc, http_get, start_sidecar

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

REST = "rest-svc"
STREAMS = "streams-svc"
INSTANCES = 3
# How long the first HTTP try takes before its instance refuses it.
FIRST_TRY_S = 0.3
CALLER_TIMEOUT = "3S"
LOST = "instance lost its model after one message"

# Retries as the defaults make them, minus what would blur a count: breakers and ejection stay out
# of the way (their own tests are elsewhere), backoff is short.
POLICY = {"default": {
    "balancer": "round_robin",
    "retry": {"max_attempts": 3, "base_backoff": "10ms", "max_backoff": "10ms"},
    "service_breaker": {"window_size": 1000, "minimum_calls": 1000},
    "instance_breaker": {"window_size": 1000, "minimum_calls": 1000},
    "outlier": {"consecutive_failures": 1000, "max_ejected_percent": 0},
}}


@dataclass
class Seen:
    instance: int
    grpc_timeout: str | None
    handled: float = 0.0  # seconds the instance took to answer


@dataclass
class RestInstances:
    """HTTP instances with one script between them. On /v2/models/m/infer, the first request any of
    them gets is refused 503 after FIRST_TRY_S (as a sidecar whose model is not ready answers) and
    every later one is 200; /refuse/{size} is always a 503 with a body of `size` bytes."""

    seen: list[Seen] = field(default_factory=list)
    refused: Counter[int] = field(default_factory=Counter)
    ports: list[int] = field(default_factory=list)
    runners: list[web.AppRunner] = field(default_factory=list)

    async def start(self) -> None:
        for i in range(INSTANCES):
            app = web.Application()
            app.router.add_post("/v2/models/m/infer", self._handler(i))
            app.router.add_post("/refuse/{size}", self._refuse)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, HOST, 0).start()
            self.runners.append(runner)
            self.ports.append(int(runner.addresses[0][1]))

    def _handler(self, instance: int) -> Callable[[web.Request], Any]:
        async def infer(request: web.Request) -> web.Response:
            started = time.monotonic()
            body = await request.read()
            seen = Seen(instance, request.headers.get("grpc-timeout"))
            first = not self.seen
            self.seen.append(seen)
            if first:
                await asyncio.sleep(FIRST_TRY_S)  # the instance's own slowness, not a wait in the test
                answer = web.json_response({"error": "model not ready"}, status=503)
            else:
                answer = web.json_response({"instance": instance, "echo": json.loads(body)})
            seen.handled = time.monotonic() - started
            return answer

        return infer

    async def _refuse(self, request: web.Request) -> web.Response:
        size = int(request.match_info["size"])
        self.refused[size] += 1
        return web.Response(status=503, body=b"r" * size, content_type="text/plain",
                            headers={"Retry-After": "1", "x-refused-by": "instance"})

    async def stop(self) -> None:
        for runner in self.runners:
            await runner.cleanup()


# The streaming kinds as a client makes them. On the wire a call of any kind is a stream each way,
# so the instances answer them all with one stream-stream handler.
KINDS = ("client_streaming", "server_streaming", "bidi")


@dataclass
class StreamInstances:
    """gRPC instances that answer each streaming call with one response message, then UNAVAILABLE."""

    calls: Counter[str] = field(default_factory=Counter)
    requests: dict[str, list[bytes]] = field(default_factory=dict)
    ports: list[int] = field(default_factory=list)
    server: grpc.aio.Server | None = None

    async def start(self) -> None:
        self.server = grpc.aio.server()
        handlers = {kind: grpc.stream_stream_rpc_method_handler(self._handler(kind)) for kind in KINDS}
        handlers["remaining"] = grpc.unary_unary_rpc_method_handler(self._remaining)
        generic = grpc.method_handlers_generic_handler("test.Streams", handlers)
        self.server.add_generic_rpc_handlers((generic,))
        # One server, one socket per instance: the sidecar sees three instances.
        self.ports = [self.server.add_insecure_port(f"{HOST}:0") for _ in range(INSTANCES)]
        await self.server.start()

    def _handler(self, kind: str) -> Callable[..., AsyncIterator[bytes]]:
        async def handle(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
            self.calls[kind] += 1
            got = self.requests.setdefault(kind, [])
            if kind == "client_streaming":
                got.extend([r async for r in requests])
                yield b"joined:" + b"|".join(got)
            else:  # server streaming and bidi: answer the first request, the caller still sending
                got.append(await anext(aiter(requests)))
                yield b"first:" + got[0]
            await context.abort(grpc.StatusCode.UNAVAILABLE, LOST)

        return handle

    @staticmethod
    async def _remaining(request: bytes, context: Any) -> bytes:
        """The time the instance was told it has (what grpc-timeout said), in seconds."""
        return str(context.time_remaining()).encode()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(0)


@dataclass
class Stack:
    sidecar: Proc
    rest: RestInstances
    streams: StreamInstances

    def egress(self, service: str) -> dict[str, Any]:
        doc = json.loads(http_get(self.sidecar.ports["admin"], "/egress")[1])
        return dict(doc.get(service.upper(), {}))


# Both gRPC egress planes: the stream-level proxy (the default) and the grpc.aio fallback.
@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["proxy", "grpcio"])
async def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    rest, streams = RestInstances(), StreamInstances()
    own = grpc.aio.server()  # the client's own "model": only its health, so its sidecar is ready
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), own)
    own_port = own.add_insecure_port(f"{HOST}:0")
    await own.start()
    await rest.start()
    await streams.start()
    sidecar: Proc | None = None
    try:
        registry = {"apps": {
            REST: [{"host": HOST, "http_port": p, "instance_id": f"rest-{i}"}
                   for i, p in enumerate(rest.ports)],
            STREAMS: [{"host": HOST, "http_port": 0, "grpc_port": p, "instance_id": f"streams-{i}"}
                      for i, p in enumerate(streams.ports)],
        }}
        tmp = tmp_path_factory.mktemp("egress-tries")
        (tmp / "registry.yaml").write_text(json.dumps(registry))  # JSON is YAML
        (tmp / "policy.yaml").write_text(json.dumps(POLICY))
        # In a thread: the instances run on this loop while the sidecar starts.
        sidecar = await asyncio.to_thread(
            start_sidecar, own_port, "--registry-file", str(tmp / "registry.yaml"),
            "--egress-policy-file", str(tmp / "policy.yaml"), "--egress-dataplane", request.param,
            app_name="client",
        )
        yield Stack(sidecar, rest, streams)
    finally:
        if sidecar is not None:
            await asyncio.to_thread(sidecar.stop)
        await streams.stop()
        await rest.stop()
        await own.stop(0)


async def test_an_http_retry_tells_the_next_instance_the_time_left_not_the_callers(stack: Stack):
    url = f"http://{HOST}:{stack.sidecar.ports['egress_http']}/{REST}/v2/models/m/infer"
    before = stack.egress(REST)
    async with aiohttp.ClientSession() as session, session.post(
        url, json={"x": 1}, headers={"grpc-timeout": CALLER_TIMEOUT}, timeout=aiohttp.ClientTimeout(total=10)
    ) as response:
        status, answer = response.status, await response.json()
    # The refused call was tried again, on another instance, whose answer the caller got.
    assert status == 200, (status, answer, stack.rest.seen)
    first, second = stack.rest.seen
    assert answer == {"instance": second.instance, "echo": {"x": 1}}
    assert second.instance != first.instance
    caller = grpc_timeout(CALLER_TIMEOUT)
    assert caller is not None and first.grpc_timeout is not None and second.grpc_timeout is not None
    told_first, told_second = grpc_timeout(first.grpc_timeout), grpc_timeout(second.grpc_timeout)
    assert told_first is not None and told_second is not None
    print(f"caller {CALLER_TIMEOUT}; the first try was told {first.grpc_timeout} and took "
          f"{first.handled * 1000:.0f} ms; the retry was told {second.grpc_timeout}")
    assert told_first <= caller
    # Below the caller's by at least what the first try took (the backoff comes on top).
    assert caller - told_second >= first.handled >= FIRST_TRY_S
    assert told_second > 0
    after = stack.egress(REST)
    assert {k: after[k] - before.get(k, 0) for k in ("requests", "attempts", "retries")} == {
        "requests": 1, "attempts": 2, "retries": 1}


@pytest.mark.parametrize(("size", "tries"), [
    (100, 3),  # held back, so each retry was free to go elsewhere; the last one reaches the caller
    (1 << 20, 1),  # too long to hold: it streams to the caller as it comes, which ends the call
])
async def test_a_503_no_retry_follows_reaches_the_caller_as_the_instance_sent_it(
    stack: Stack, size: int, tries: int
):
    url = f"http://{HOST}:{stack.sidecar.ports['egress_http']}/{REST}/refuse/{size}"
    async with aiohttp.ClientSession() as session, session.post(
        url, data=b"{}", timeout=aiohttp.ClientTimeout(total=10)
    ) as response:
        status, body, headers = response.status, await response.read(), response.headers
    assert (status, len(body), body[:1]) == (503, size, b"r")
    assert (headers["Retry-After"], headers["x-refused-by"]) == ("1", "instance")
    assert headers["Content-Type"].startswith("text/plain")
    assert stack.rest.refused[size] == tries


async def _call(channel: grpc.aio.Channel, kind: str) -> tuple[list[bytes], grpc.aio.AioRpcError]:
    """One call of `kind` through egress: the messages the caller got before the error it ended with."""
    method = f"/test.Streams/{kind}"
    target = (("x-sidecar-target", STREAMS),)
    got: list[bytes] = []
    try:
        if kind == "client_streaming":
            async def three() -> AsyncIterator[bytes]:
                for part in (b"a", b"b", b"c"):
                    yield part

            got.append(await channel.stream_unary(method)(three(), metadata=target, timeout=10))
        elif kind == "server_streaming":
            async for message in channel.unary_stream(method)(b"one", metadata=target, timeout=10):
                got.append(message)
        else:
            call = channel.stream_stream(method)(metadata=target, timeout=10)
            await call.write(b"hello")  # and the caller never half-closes: it waits for answers
            while True:
                message = await call.read()
                if message is grpc.aio.EOF:
                    break
                got.append(message)
            await call  # the status
    except grpc.aio.AioRpcError as e:
        return got, e
    raise AssertionError(f"{kind}: the call ended OK after {got}, not with the instance's UNAVAILABLE")


@pytest.mark.parametrize("kind", KINDS)
async def test_a_stream_that_forwarded_a_message_is_tried_once_and_ends_with_the_instances_status(
    stack: Stack, kind: str
):
    before = stack.egress(STREAMS)
    async with grpc.aio.insecure_channel(f"{HOST}:{stack.sidecar.ports['egress_grpc']}") as channel:
        started = time.monotonic()
        got, error = await _call(channel, kind)
        elapsed = time.monotonic() - started
    print(f"{kind}: {error.code().name} after {elapsed * 1000:.0f} ms; got {got}")
    assert stack.streams.calls[kind] == 1  # one try, whatever instance it went to
    assert error.code() == grpc.StatusCode.UNAVAILABLE, error
    assert error.details() == LOST
    # At once, not when the caller's 10 s run out.
    assert elapsed < 5
    if kind == "client_streaming":
        assert stack.streams.requests[kind] == [b"a", b"b", b"c"]
        assert got == []  # a unary answer followed by an error status is the error
    else:
        assert got == [b"first:" + stack.streams.requests[kind][0]]
    after = stack.egress(STREAMS)
    assert after["attempts"] - before.get("attempts", 0) == 1
    assert after.get("retries", 0) == before.get("retries", 0)


async def test_a_grpc_call_tells_the_instance_the_time_left(stack: Stack):
    async with grpc.aio.insecure_channel(f"{HOST}:{stack.sidecar.ports['egress_grpc']}") as channel:
        told = await channel.unary_unary("/test.Streams/remaining")(
            b"", metadata=(("x-sidecar-target", STREAMS),), timeout=2.0
        )
    remaining = float(told)  # "None" (no deadline reached the instance) fails here
    # gRPC rounds timeouts up to coarser units on the wire (grpc core does, to compress them): a
    # little over the caller's 2 s may reach the instance.
    assert 1.0 < remaining < 2.1
