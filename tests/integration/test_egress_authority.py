"""gRPC egress by :authority alone: clients dial the service's name, with no metadata of ours.

A real sidecar's egress (the stream-level HTTP/2 proxy) finds `echo-svc` in a static registry
file; its instances are the stream backend (tests/support/stream_backend.py: every streaming
kind) behind two real sidecars, so a call crosses egress, the instance's ingress relay and the
backend. Python's grpcio sets the authority with `grpc.default_authority`; grpc-go and
grpc-java clients (tests/interop/authority/) do it with WithAuthority / overrideAuthority.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import grpc
import grpc.aio
import pytest

from tests.support import REPO
from tests.support.procs import HOST, Proc, http_get, running, start_listening, start_sidecar

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

SERVICE = "echo-svc"


@dataclass
class Stack:
    client: Proc  # the sidecar whose egress is called
    instances: list[Proc]

    @property
    def egress(self) -> str:
        return f"{HOST}:{self.client.ports['egress_grpc']}"

    def stats(self) -> dict[str, object]:
        return dict(json.loads(http_get(self.client.ports["admin"], "/egress")[1]).get(SERVICE.upper(), {}))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    argv = [sys.executable, str(REPO / "tests/support/stream_backend.py")]
    with running(
        start_listening(argv, name="streams", ready_prefix="stream backend listening on ")
    ) as backend:
        instances = [start_sidecar(backend.ports["grpc"], app_name=SERVICE) for _ in range(2)]
        try:
            registry = {"apps": {SERVICE: [
                {"host": HOST, "http_port": p.ports["http"], "grpc_port": p.ports["grpc"],
                 "instance_id": f"echo-{i}"} for i, p in enumerate(instances)
            ]}}  # fmt: skip
            tmp = tmp_path_factory.mktemp("authority")
            (tmp / "registry.yaml").write_text(json.dumps(registry))  # JSON is YAML
            policy = {"default": {"balancer": "round_robin"}}
            (tmp / "policy.yaml").write_text(json.dumps(policy))
            with running(start_sidecar(
                backend.ports["grpc"], "--registry-file", str(tmp / "registry.yaml"),
                "--egress-policy-file", str(tmp / "policy.yaml"), "--access-log", "on", app_name="client",
            )) as client:  # fmt: skip
                yield Stack(client, instances)
        finally:
            for proc in instances:
                proc.stop()


def channel(stack: Stack, authority: str = SERVICE) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(stack.egress, options=[("grpc.default_authority", authority)])


async def every_kind(ch: grpc.aio.Channel) -> dict[str, object]:
    unary = await ch.unary_unary("/test.Streams/Unary")(b"hi", timeout=10)
    server = [m async for m in ch.unary_stream("/test.Streams/ServerStream")(b"3", timeout=10)]

    async def parts() -> AsyncIterator[bytes]:
        for p in (b"a", b"b", b"c"):
            yield p

    client = await ch.stream_unary("/test.Streams/ClientStream")(parts(), timeout=10)
    bidi = ch.stream_stream("/test.Streams/Bidi")(timeout=10)
    echoed = []
    for word in (b"x", b"y"):  # one at a time: each answer comes before the next request goes
        await bidi.write(word)
        echoed.append(await bidi.read())
    await bidi.done_writing()
    assert await bidi.read() is grpc.aio.EOF
    return {"unary": unary, "server": server, "client": client, "bidi": echoed}


EXPECTED = {"unary": b"unary:hi", "server": [b"item-0", b"item-1", b"item-2"], "client": b"a|b|c",
            "bidi": [b"echo:x", b"echo:y"]}  # fmt: skip


@pytest.mark.parametrize("authority", [SERVICE, f"{SERVICE}:15001", SERVICE.upper()])
async def test_python_reaches_a_service_by_authority_over_every_streaming_kind(stack, authority):
    before = stack.stats().get("requests", 0)
    async with channel(stack, authority) as ch:
        assert await every_kind(ch) == EXPECTED
    assert stack.stats()["requests"] == before + 4  # each kind went through the router once


async def test_x_sidecar_target_wins_over_the_authority(stack):
    async with grpc.aio.insecure_channel(stack.egress) as ch:  # authority: the egress address
        reply = await ch.unary_unary("/test.Streams/Unary")(
            b"t", metadata=(("x-sidecar-target", SERVICE), ("x-echo-a", "1")), timeout=10
        )
        assert reply == b"unary:t"


async def test_an_unknown_service_is_unavailable_naming_it(stack):
    async with channel(stack, "no-such-svc:15001") as ch:
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await ch.unary_unary("/test.Streams/Unary")(b"x", timeout=10)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert '"no-such-svc"' in e.value.details()


async def test_an_address_names_no_service_and_the_call_says_how_to_name_one(stack):
    async with grpc.aio.insecure_channel(stack.egress) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await ch.unary_unary("/test.Streams/Unary")(b"x", timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "names an address, not a service" in e.value.details()
    assert "x-sidecar-target" in e.value.details()


async def test_a_status_after_a_message_and_trailing_metadata_pass_through(stack):
    async with channel(stack) as ch:
        call = ch.unary_stream("/test.Streams/FailMidstream")(b"", timeout=10)
        got = []
        with pytest.raises(grpc.aio.AioRpcError) as e:
            async for m in call:
                got.append(m)
    assert got == [b"first"]
    assert e.value.code() == grpc.StatusCode.DATA_LOSS and e.value.details() == "lost after one message"
    assert ("x-why", "midstream") in tuple(e.value.trailing_metadata() or ())


async def test_large_streams_cross_both_ways_and_calls_spread_over_instances(stack):
    chunk = bytes(range(256)) * 1024  # 256 KiB
    async with channel(stack) as ch:
        bidi = ch.stream_stream("/test.Streams/Bidi")(timeout=30)

        async def writer() -> None:
            for i in range(16):  # 4 MiB each way, many windows' worth
                await bidi.write(chunk[:-1] + bytes((i,)))
            await bidi.done_writing()

        sending = asyncio.ensure_future(writer())
        got = [m async for m in bidi]
        await sending
    assert len(got) == 16 and all(m == b"echo:" + chunk[:-1] + bytes((i,)) for i, m in enumerate(got))


async def test_the_access_log_names_egress_calls_by_authority(stack):
    lines = [json.loads(line) for line in stack.client.log().splitlines()
             if line.startswith("{") and '"direction":"egress"' in line]  # fmt: skip
    assert any(line["method"] == "/test.Streams/Unary" and line["code"] == "OK" for line in lines)


GO_CLIENT = REPO / "tests/interop/go/build/authority-client"
JAVA_CLIENT = REPO / "tests/support/java/AuthorityClient.java"
JAVA_JAR = REPO / "examples/java/target/digits-java.jar"
KINDS_OK = "unary OK\nserver_streaming OK\nclient_streaming OK\nbidi OK\n"


async def test_go_reaches_a_service_by_authority_over_every_streaming_kind(stack):
    assert GO_CLIENT.exists(), f"{GO_CLIENT} is missing: run scripts/setup-interop.sh"
    before = stack.stats().get("requests", 0)
    done = await asyncio.to_thread(
        subprocess.run, [str(GO_CLIENT), "-addr", stack.egress, "-authority", f"{SERVICE}:15001"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (0, KINDS_OK), done.stderr
    assert stack.stats()["requests"] == before + 4


async def test_java_reaches_a_service_by_authority_over_every_streaming_kind(stack):
    assert JAVA_JAR.exists(), f"{JAVA_JAR} is missing: run scripts/build-java-example.sh"
    before = stack.stats().get("requests", 0)
    host, port = stack.egress.rsplit(":", 1)
    done = await asyncio.to_thread(
        subprocess.run, ["java", "-cp", str(JAVA_JAR), str(JAVA_CLIENT), host, port, SERVICE],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (0, KINDS_OK), done.stderr
    assert stack.stats()["requests"] == before + 4


async def test_an_instance_draining_under_load_costs_no_call(stack):
    """Its relay sends GOAWAY and closes: streams it took finish, the rest go to the other instance.
    (Last in this module: the instance stays down.)"""
    codes: dict[str, int] = {}
    async with channel(stack) as ch:
        unary = ch.unary_unary("/test.Streams/Unary")

        async def one() -> None:
            try:
                await unary(b"d", timeout=10)
                code = "OK"
            except grpc.aio.AioRpcError as e:
                code = e.code().name
            codes[code] = codes.get(code, 0) + 1

        calls = []
        for i in range(600):  # 200 calls/s for 3 s; the drain starts after the first second
            if i == 200:
                draining = asyncio.ensure_future(asyncio.to_thread(stack.instances[0].stop))
            calls.append(asyncio.ensure_future(one()))
            await asyncio.sleep(0.005)
        await asyncio.gather(*calls, draining)
    print("an instance drained under load:", codes, stack.stats().get("retries"))
    assert codes == {"OK": 600}
