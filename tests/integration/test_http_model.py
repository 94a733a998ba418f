"""A model that speaks OIP REST behind the sidecar (--model-protocol http).

The REST model here is real: the digits model behind a first sidecar, whose
REST ingress is an OIP REST server. A second sidecar fronts it over HTTP and
must give gRPC and REST callers the same answers as the gRPC model directly.
(The PHP example is the other REST model the suite runs.)
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import grpc
import grpc.aio
import numpy as np
import pytest

from inference import grpc_service_pb2 as pb
from inference import grpc_service_pb2_grpc as pb_grpc
from tests.support.digits import contents_request, images, raw_request
from tests.support.metrics import ingress_calls
from tests.support.procs import HOST, Proc, http_get, running, start_model, start_sidecar

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rest_model() -> Iterator[Proc]:
    with running(start_model()) as model, running(start_sidecar(model.ports["grpc"])) as front:
        front.ports["model_grpc"] = model.ports["grpc"]
        yield front


@pytest.fixture(scope="module")
def sidecar(rest_model: Proc) -> Iterator[Proc]:
    with running(start_sidecar(rest_model.ports["http"], "--model-protocol", "http",
                               "--model", "digits")) as proc:
        yield proc


async def test_grpc_calls_are_transcoded_to_rest(sidecar, rest_model):
    async with grpc.aio.insecure_channel(f"{HOST}:{sidecar.ports['grpc']}") as ch, \
            grpc.aio.insecure_channel(f"{HOST}:{rest_model.ports['model_grpc']}") as direct:
        stub, ref = pb_grpc.GRPCInferenceServiceStub(ch), pb_grpc.GRPCInferenceServiceStub(direct)
        assert (await stub.ServerLive(pb.ServerLiveRequest())).live
        assert (await stub.ServerReady(pb.ServerReadyRequest())).ready
        assert (await stub.ModelReady(pb.ModelReadyRequest(name="digits"))).ready
        assert not (await stub.ModelReady(pb.ModelReadyRequest(name="nope"))).ready
        assert (await stub.ServerMetadata(pb.ServerMetadataRequest())).name == "digits-python"
        meta = await stub.ModelMetadata(pb.ModelMetadataRequest(name="digits"))
        assert meta == await ref.ModelMetadata(pb.ModelMetadataRequest(name="digits"))
        x, _ = images()
        for req in (raw_request(x[:64], id="r"), contents_request(x[64:71])):
            got, want = await stub.ModelInfer(req), await ref.ModelInfer(req)
            labels = [np.frombuffer(r.raw_output_contents[0], "<i8") if r.raw_output_contents
                      else np.array(r.outputs[0].contents.int64_contents) for r in (got, want)]
            assert labels[0].tolist() == labels[1].tolist()
            assert got.id == want.id


async def test_model_errors_keep_their_status_and_message(sidecar):
    bad = pb.ModelInferRequest(model_name="digits", inputs=[pb.ModelInferRequest.InferInputTensor(
        name="INPUT0", datatype="FP32", shape=[1, 3],
        contents=pb.InferTensorContents(fp32_contents=[1, 2, 3]))])
    async with grpc.aio.insecure_channel(f"{HOST}:{sidecar.ports['grpc']}") as ch:
        stub = pb_grpc.GRPCInferenceServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.ModelInfer(bad)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "[1, 3]" in e.value.details()
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.ModelInfer(pb.ModelInferRequest(model_name="nope"))
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        for method in ("/inference.GRPCInferenceService/RepositoryIndex", "/x.Y/Z"):
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await ch.unary_unary(method)(b"")
            assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_model_stream_infer_over_rest_answers_in_order(sidecar):
    async def requests() -> AsyncIterator[pb.ModelInferRequest]:
        x, _ = images()
        for i in range(5):
            yield raw_request(x[i:i + 1], id=f"s{i}")
        yield pb.ModelInferRequest(model_name="nope", id="bad")

    async with grpc.aio.insecure_channel(f"{HOST}:{sidecar.ports['grpc']}") as ch:
        answers = [a async for a in pb_grpc.GRPCInferenceServiceStub(ch).ModelStreamInfer(requests())]
    assert [a.infer_response.id for a in answers[:5]] == [f"s{i}" for i in range(5)]
    assert answers[5].error_message and "nope" in answers[5].error_message


async def test_rest_ingress_works_and_readiness_follows_the_rest_model(sidecar):
    x, y = images()
    body = {"inputs": [{"name": "INPUT0", "shape": [5, 64], "datatype": "FP32",
                        "data": x[:5].astype(float).ravel().tolist()}]}
    async with aiohttp.ClientSession() as s, s.post(
            f"http://{HOST}:{sidecar.ports['http']}/v2/models/digits/infer", json=body) as r:
        assert r.status == 200
        out = await r.json()
    assert next(o for o in out["outputs"] if o["name"] == "LABEL")["data"] == y[:5].tolist()
    assert http_get(sidecar.ports["http"], "/readyz")[0] == 200


def test_the_rest_model_is_told_the_time_left(sidecar, rest_model):
    # The REST model here is a sidecar's REST ingress, which reads grpc-timeout: told the time
    # left, it ends the call itself at the deadline instead of letting its model sleep on.
    before = ingress_calls(rest_model, "DEADLINE_EXCEEDED")
    slow = raw_request(images()[0][:1], parameters={"sleep_ms": pb.InferParameter(int64_param=5000)})
    with grpc.insecure_channel(f"{HOST}:{sidecar.ports['grpc']}") as ch:
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as e:
            pb_grpc.GRPCInferenceServiceStub(ch).ModelInfer(slow, timeout=0.3)
        took = time.monotonic() - started
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert took < 1.0
    deadline = time.monotonic() + 3
    while ingress_calls(rest_model, "DEADLINE_EXCEEDED") == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ingress_calls(rest_model, "DEADLINE_EXCEEDED") == before + 1
