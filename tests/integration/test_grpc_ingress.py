"""gRPC passthrough through a real sidecar to the real digits model (and a raw streaming backend)."""

from __future__ import annotations

import asyncio
import json
import pathlib
import tempfile
import time
from collections.abc import AsyncIterator, Iterator

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inference import grpc_service_pb2 as pb
from inference import grpc_service_pb2_grpc as pb_grpc
from tests.support.digits import OIP, contents_request, images, raw_request
from tests.support.procs import HOST, Proc, running, start_model, start_sidecar

pytestmark = pytest.mark.integration

UNARY_CALLS = [
    ("ServerLive", pb.ServerLiveRequest()),
    ("ServerReady", pb.ServerReadyRequest()),
    ("ModelReady", pb.ModelReadyRequest(name="digits")),
    ("ModelReady", pb.ModelReadyRequest(name="digits", version="1")),
    ("ServerMetadata", pb.ServerMetadataRequest()),
    ("ModelMetadata", pb.ModelMetadataRequest(name="digits")),
    ("ModelInfer", raw_request(images()[0][:1], id="one")),
    ("ModelInfer", raw_request(images()[0][:64])),
    ("ModelInfer", contents_request(images()[0][:7])),
    (
        "ModelInfer",
        raw_request(
            images()[0][:3],
            outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="PROBABILITIES")],
        ),
    ),
]


@pytest.mark.parametrize(
    ("method", "request_msg"), UNARY_CALLS, ids=[f"{m}-{i}" for i, (m, _) in enumerate(UNARY_CALLS)]
)
async def test_every_oip_call_equals_the_direct_call_byte_for_byte(
    direct_channel, sidecar_channel, method, request_msg
):
    payload = request_msg.SerializeToString()
    direct = await direct_channel.unary_unary(f"{OIP}/{method}")(payload)
    via = await sidecar_channel.unary_unary(f"{OIP}/{method}")(payload)
    assert via == direct


async def test_model_statistics_passes_through(stub):
    stats = await stub.ModelStatistics(pb.ModelStatisticsRequest(name="digits"))
    assert [s.name for s in stats.model_stats] == ["digits"]


async def test_predictions_through_the_sidecar_are_right(stub):
    x, y = images()
    resp = await stub.ModelInfer(raw_request(x))
    names = [o.name for o in resp.outputs]
    import numpy as np

    labels = np.frombuffer(resp.raw_output_contents[names.index("LABEL")], dtype="<i8")
    assert float(np.mean(labels == y)) > 0.95


async def test_a_contract_method_the_model_lacks_answers_unimplemented(sidecar_channel):
    for _ in range(50):
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await sidecar_channel.unary_unary(f"{OIP}/RepositoryIndex")(b"")
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.parametrize("method", ["/no.Such/Method", f"{OIP}/NoSuchMethod"])
async def test_unknown_methods_answer_unimplemented(sidecar_channel, method):
    # Methods outside the contract are relayed as streaming calls. grpcio's client
    # sometimes reports a server's immediate status as INTERNAL "Internal error from
    # Core" when it races the request's half-close; a direct grpcio client calling the
    # model the same way sees it too (see docs/known-issues.md). Anything else is a bug.
    codes = []
    for _ in range(50):
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await sidecar_channel.unary_unary(method)(b"")
        codes.append((e.value.code(), e.value.details()))
    assert (grpc.StatusCode.UNIMPLEMENTED, "Method not found!") in codes
    assert set(codes) <= {
        (grpc.StatusCode.UNIMPLEMENTED, "Method not found!"),
        (grpc.StatusCode.INTERNAL, "Internal error from Core"),
    }


@pytest.mark.parametrize(
    "bad",
    [
        pb.ModelInferRequest(
            model_name="digits",
            inputs=[
                pb.ModelInferRequest.InferInputTensor(
                    name="INPUT0",
                    datatype="FP32",
                    shape=[1, 3],
                    contents=pb.InferTensorContents(fp32_contents=[1, 2, 3]),
                )
            ],
        ),
        pb.ModelInferRequest(
            model_name="digits",
            inputs=[
                pb.ModelInferRequest.InferInputTensor(
                    name="WRONG",
                    datatype="FP32",
                    shape=[1, 64],
                    contents=pb.InferTensorContents(fp32_contents=[0] * 64),
                )
            ],
        ),
        pb.ModelInferRequest(model_name="nope"),
    ],
    ids=["shape", "name", "model"],
)
async def test_model_status_and_message_arrive_unchanged(direct_channel, sidecar_channel, bad):
    payload = bad.SerializeToString()
    errors = []
    for ch in (direct_channel, sidecar_channel):
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await ch.unary_unary(f"{OIP}/ModelInfer")(payload)
        errors.append((e.value.code(), e.value.details()))
    assert errors[0] == errors[1]
    assert errors[0][0] in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)
    assert errors[0][1]


async def test_custom_metadata_reaches_the_model_and_trailers_reach_the_client(stub):
    call = stub.ModelInfer(
        raw_request(images()[0][:1]),
        metadata=[("x-echo-tenant", "acme"), ("x-echo-blob-bin", b"\x00\xff")],
    )
    await call
    initial = dict(await call.initial_metadata())
    trailing = dict(await call.trailing_metadata())
    assert initial["x-echo-tenant"] == "acme"
    assert initial["x-echo-blob-bin"] == b"\x00\xff"
    assert trailing["x-echo-tenant-trailer"] == "acme"


async def test_bidi_model_stream_infer_passes_through_in_order(stub):
    x, _ = images()

    async def requests() -> AsyncIterator[pb.ModelInferRequest]:
        for i in range(20):
            yield raw_request(x[i : i + 1], id=f"req-{i}")

    ids = [r.infer_response.id async for r in stub.ModelStreamInfer(requests())]
    assert ids == [f"req-{i}" for i in range(20)]


async def test_grpc_health_on_the_sidecar_port_reflects_the_model(sidecar_channel):
    health = health_pb2_grpc.HealthStub(sidecar_channel)
    resp = await health.Check(health_pb2.HealthCheckRequest(service=""))
    assert resp.status == health_pb2.HealthCheckResponse.SERVING


async def test_deadline_propagates_and_the_model_sees_the_cancellation(dataplane):
    events = pathlib.Path(tempfile.mkstemp(suffix=".jsonl")[1])
    with (
        running(start_model("--event-log", str(events))) as model,
        running(start_sidecar(model.ports["grpc"], "--dataplane", dataplane)) as sidecar,
    ):
        async with grpc.aio.insecure_channel(f"{HOST}:{sidecar.ports['grpc']}") as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            req = raw_request(
                images()[0][:1],
                id="slow",
                parameters={"sleep_ms": pb.InferParameter(int64_param=5000)},
            )
            t0 = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await stub.ModelInfer(req, timeout=1.0)
            elapsed = time.monotonic() - t0
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert 0.9 < elapsed < 1.6
        deadline = time.monotonic() + 3
        seen: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            text = await asyncio.to_thread(events.read_text)
            seen = [json.loads(line) for line in text.splitlines() if line]
            if any(s.get("id") == "slow" for s in seen):
                break
            await asyncio.sleep(0.05)
        assert [s["event"] for s in seen if s.get("id") == "slow"] == ["cancelled"]


@pytest.fixture(scope="module")
def stream_stack(dataplane: str) -> Iterator[Proc]:
    import subprocess
    import sys

    from tests.support import REPO

    backend = subprocess.Popen(
        [sys.executable, str(REPO / "tests/support/stream_backend.py")], stdout=subprocess.PIPE
    )
    assert backend.stdout is not None
    port = int(backend.stdout.readline().decode().rsplit(":", 1)[1])
    try:
        with running(start_sidecar(port, "--dataplane", dataplane)) as sidecar:
            yield sidecar
    finally:
        backend.terminate()
        backend.wait()
        backend.stdout.close()


async def test_every_streaming_kind_passes_through_in_order(stream_stack):
    async with grpc.aio.insecure_channel(f"{HOST}:{stream_stack.ports['grpc']}") as ch:
        assert await ch.unary_unary("/test.Streams/Unary")(b"x") == b"unary:x"
        items = [m async for m in ch.unary_stream("/test.Streams/ServerStream")(b"50")]
        assert items == [f"item-{i}".encode() for i in range(50)]

        async def parts() -> AsyncIterator[bytes]:
            for i in range(5):
                yield f"p{i}".encode()

        assert await ch.stream_unary("/test.Streams/ClientStream")(parts()) == b"p0|p1|p2|p3|p4"
        echoed = [m async for m in ch.stream_stream("/test.Streams/Bidi")(parts())]
        assert echoed == [f"echo:p{i}".encode() for i in range(5)]


async def test_a_status_after_streamed_messages_arrives_with_its_trailers(stream_stack):
    async with grpc.aio.insecure_channel(f"{HOST}:{stream_stack.ports['grpc']}") as ch:
        call = ch.unary_stream("/test.Streams/FailMidstream")(b"")
        got = []
        with pytest.raises(grpc.aio.AioRpcError) as e:
            async for m in call:
                got.append(m)
        assert got == [b"first"]
        assert e.value.code() == grpc.StatusCode.DATA_LOSS
        assert e.value.details() == "lost after one message"
        assert dict(e.value.trailing_metadata())["x-why"] == "midstream"
