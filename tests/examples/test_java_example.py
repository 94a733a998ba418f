"""Integration tests of examples/java (grpc-java): a real JVM on a free port, directly and via the sidecar.

The jar is built by scripts/build-java-example.sh; these tests refuse a missing or stale one rather
than build it themselves (a cold Maven build does not fit a test's timeout).
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inference import grpc_service_pb2 as pb
from inference import grpc_service_pb2_grpc as pb_grpc
from tests.support import REPO
from tests.support.digits import contents_request, images, raw_request
from tests.support.procs import HOST, Proc, free_port, running, start_listening, start_sidecar

# isort: split
import digits_model  # examples/python is on sys.path once tests.support.procs is imported

pytestmark = pytest.mark.integration

PROJECT = REPO / "examples" / "java"
JAR = PROJECT / "target" / "digits-java.jar"
# What scripts/build-java-example.sh rebuilds the jar for.
SOURCES = [
    PROJECT / "pom.xml",
    PROJECT / "src",
    REPO / "proto" / "inference" / "grpc_service.proto",
    REPO / "sdk-stubs" / "versions.env",
]
WEIGHTS = REPO / "examples" / "digits" / "weights.json"
LISTENING = "digits model listening on "
# A cold JVM loading grpc-netty takes about a second, several on a busy two-core machine.
STARTUP_TIMEOUT = 90.0
INFER = "/inference.GRPCInferenceService/ModelInfer"
SERVICE = "inference.GRPCInferenceService"
Code = grpc.StatusCode


def _jar_problem() -> str | None:
    if not JAR.exists():
        return f"{JAR} is missing: run scripts/build-java-example.sh"
    built = JAR.stat().st_mtime
    for source in SOURCES:
        for path in [source, *source.rglob("*")] if source.is_dir() else [source]:
            if path.is_file() and path.stat().st_mtime > built:
                return f"{JAR} is older than {path}: run scripts/build-java-example.sh"
    return None


def start_java(port: int) -> Proc:
    """The jar as a process on HOST:port (0 lets it pick), once it printed its listening line."""
    if problem := _jar_problem():
        pytest.fail(problem)
    args = ["java", "-jar", str(JAR), "--host", HOST, "--port", str(port), "--weights", str(WEIGHTS)]
    return start_listening(args, name="digits-java", startup_timeout=STARTUP_TIMEOUT)


@pytest.fixture(scope="module")
def server() -> Iterator[Proc]:
    proc = start_java(free_port())
    yield proc
    assert proc.stop() == 0, proc.log()


@pytest.fixture(scope="module")
def sidecar(server: Proc) -> Iterator[Proc]:
    with running(start_sidecar(server.ports["grpc"])) as proc:
        yield proc


@pytest.fixture
async def channel(server: Proc) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"{HOST}:{server.ports['grpc']}") as opened:
        yield opened


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> Any:
    return pb_grpc.GRPCInferenceServiceStub(channel)


def decoded(response: pb.ModelInferResponse) -> dict[str, np.ndarray[Any, Any]]:
    """Each output by name, as numpy, whichever form the response took."""
    out: dict[str, np.ndarray[Any, Any]] = {}
    for i, tensor in enumerate(response.outputs):
        dtype = {"INT64": "<i8", "FP32": "<f4"}[tensor.datatype]
        if response.raw_output_contents:
            values = np.frombuffer(response.raw_output_contents[i], dtype=dtype)
        elif tensor.datatype == "INT64":
            values = np.asarray(tensor.contents.int64_contents, dtype=dtype)
        else:
            values = np.asarray(tensor.contents.fp32_contents, dtype=dtype)
        out[tensor.name] = values.reshape(list(tensor.shape))
    return out


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


# --- the model's answers --------------------------------------------------------------------


@pytest.mark.parametrize("form", [raw_request, contents_request])
async def test_every_digit_matches_the_python_model(
    stub: Any, form: Callable[[np.ndarray[Any, Any]], pb.ModelInferRequest]
) -> None:
    x, y = images()
    labels, probabilities = digits_model.DigitsModel.load(WEIGHTS).predict(x)

    answer = decoded(await stub.ModelInfer(form(x)))

    assert answer["LABEL"].shape == (1797,)
    assert answer["PROBABILITIES"].shape == (1797, 10)
    assert np.array_equal(answer["LABEL"], labels)
    assert np.abs(answer["PROBABILITIES"] - probabilities).max() <= 1e-5
    recorded = json.loads(WEIGHTS.read_text())["training"]["accuracy"]
    assert np.mean(answer["LABEL"] == y) == pytest.approx(recorded, abs=1e-12)


async def test_each_answer_takes_its_request_form_and_echoes_the_id(stub: Any) -> None:
    x, _ = images()
    request = raw_request(x[:5])
    request.id = "as-raw"
    by_raw = await stub.ModelInfer(request)
    request = contents_request(x[:5])
    request.id = "as-contents"
    by_contents = await stub.ModelInfer(request)

    assert (by_raw.id, by_contents.id) == ("as-raw", "as-contents")
    assert by_raw.model_name == by_contents.model_name == "digits"
    assert by_raw.model_version == by_contents.model_version == "1"
    assert len(by_raw.raw_output_contents) == 2
    assert not any(t.HasField("contents") for t in by_raw.outputs)
    assert not by_contents.raw_output_contents
    assert [(t.name, t.datatype, list(t.shape)) for t in by_raw.outputs] == [
        ("LABEL", "INT64", [5]),
        ("PROBABILITIES", "FP32", [5, 10]),
    ]
    raw, contents = decoded(by_raw), decoded(by_contents)
    assert np.array_equal(raw["LABEL"], contents["LABEL"])
    assert np.array_equal(raw["PROBABILITIES"], contents["PROBABILITIES"])


@pytest.mark.parametrize("form", [raw_request, contents_request])
async def test_only_the_requested_outputs_come_back(
    stub: Any, form: Callable[[np.ndarray[Any, Any]], pb.ModelInferRequest]
) -> None:
    request = form(images()[0][:3])
    request.outputs.add(name="PROBABILITIES")
    response = await stub.ModelInfer(request)
    assert [t.name for t in response.outputs] == ["PROBABILITIES"]
    assert decoded(response)["PROBABILITIES"].shape == (3, 10)
    assert len(response.raw_output_contents) == (1 if form is raw_request else 0)


# --- every other call -----------------------------------------------------------------------


async def test_server_live_ready_and_metadata(stub: Any) -> None:
    assert (await stub.ServerLive(pb.ServerLiveRequest())).live
    assert (await stub.ServerReady(pb.ServerReadyRequest())).ready
    metadata = await stub.ServerMetadata(pb.ServerMetadataRequest())
    assert (metadata.name, metadata.version, list(metadata.extensions)) == ("digits-java", "0.1.0", [])


@pytest.mark.parametrize("version", ["", "1"])
async def test_model_ready_and_metadata(stub: Any, version: str) -> None:
    assert (await stub.ModelReady(pb.ModelReadyRequest(name="digits", version=version))).ready
    metadata = await stub.ModelMetadata(pb.ModelMetadataRequest(name="digits", version=version))
    assert (metadata.name, list(metadata.versions)) == ("digits", ["1"])
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs] == [("INPUT0", "FP32", [-1, 64])]
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.outputs] == [
        ("LABEL", "INT64", [-1]),
        ("PROBABILITIES", "FP32", [-1, 10]),
    ]


async def test_model_ready_and_metadata_refuse_an_unknown_model_or_version(stub: Any) -> None:
    calls = ((stub.ModelReady, pb.ModelReadyRequest), (stub.ModelMetadata, pb.ModelMetadataRequest))
    for call, message in calls:
        error = await rpc_error(call(message(name="letters")))
        assert error.code() == Code.NOT_FOUND
        assert error.details() == 'model "letters" is not served here; this server serves "digits"'
        error = await rpc_error(call(message(name="digits", version="2")))
        assert error.code() == Code.NOT_FOUND
        assert error.details() == 'model "digits" has no version "2"; its only version is "1"'


async def test_statistics_count_real_inferences(stub: Any) -> None:
    async def snapshot() -> Any:
        response = await stub.ModelStatistics(pb.ModelStatisticsRequest(name="digits"))
        assert [(s.name, s.version) for s in response.model_stats] == [("digits", "1")]
        return response.model_stats[0]

    before = await snapshot()
    await stub.ModelInfer(raw_request(images()[0][:3]))
    await rpc_error(stub.ModelInfer(pb.ModelInferRequest(model_name="digits")))
    after = await snapshot()

    assert after.inference_count - before.inference_count == 3
    assert after.execution_count - before.execution_count == 1
    assert after.inference_stats.success.count - before.inference_stats.success.count == 1
    assert after.inference_stats.fail.count - before.inference_stats.fail.count == 1
    assert after.last_inference >= before.last_inference > 0
    everything = await stub.ModelStatistics(pb.ModelStatisticsRequest())
    assert [s.name for s in everything.model_stats] == ["digits"]
    error = await rpc_error(stub.ModelStatistics(pb.ModelStatisticsRequest(name="letters")))
    assert error.code() == Code.NOT_FOUND


async def test_stream_infer_answers_in_order_and_carries_errors_in_band(stub: Any) -> None:
    x, _ = images()
    good = [raw_request(x[i : i + 1], id=f"r{i}") for i in range(2)]
    unknown = raw_request(x[2:3], id="unknown")
    unknown.model_name = "letters"
    wrong_shape = raw_request(x[3:4], id="bad")
    wrong_shape.inputs[0].shape[1] = 3

    async def send() -> AsyncIterator[pb.ModelInferRequest]:
        for request in [*good, unknown, wrong_shape, contents_request(x[4:5])]:
            yield request

    answers = [answer async for answer in stub.ModelStreamInfer(send())]
    assert [a.infer_response.id for a in answers] == ["r0", "r1", "", "", ""]
    assert [bool(a.error_message) for a in answers] == [False, False, True, True, False]
    assert '"letters"' in answers[2].error_message
    assert "has shape [1, 3]" in answers[3].error_message
    assert [decoded(answers[i].infer_response)["LABEL"][0] for i in (0, 1, 4)] == [0, 1, 4]


async def test_repository_index_is_unimplemented(stub: Any) -> None:
    error = await rpc_error(stub.RepositoryIndex(pb.RepositoryIndexRequest()))
    assert error.code() == Code.UNIMPLEMENTED


async def test_health_serves_both_names(channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", SERVICE):
        answer = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


# --- requests it refuses --------------------------------------------------------------------


def _good() -> pb.ModelInferRequest:
    return raw_request(images()[0][:1])


def _case(mutate: Callable[[pb.ModelInferRequest], object]) -> pb.ModelInferRequest:
    request = _good()
    mutate(request)
    return request


def _set_shape(shape: list[int]) -> Callable[[pb.ModelInferRequest], None]:
    def mutate(request: pb.ModelInferRequest) -> None:
        del request.inputs[0].shape[:]
        request.inputs[0].shape.extend(shape)

    return mutate


def _as_contents(values: list[float], shape: list[int]) -> Callable[[pb.ModelInferRequest], None]:
    def mutate(request: pb.ModelInferRequest) -> None:
        del request.raw_input_contents[:]
        _set_shape(shape)(request)
        request.inputs[0].contents.fp32_contents.extend(values)

    return mutate


def _int_contents(request: pb.ModelInferRequest) -> None:
    del request.raw_input_contents[:]
    request.inputs[0].contents.int_contents.extend([1] * 64)


def _label_twice(request: pb.ModelInferRequest) -> None:
    request.outputs.add(name="LABEL")
    request.outputs.add(name="LABEL")


# The Python reference server's wording, which the Java server copies.
INVALID = [
    ("unknown model", _case(lambda r: setattr(r, "model_name", "letters")), Code.NOT_FOUND,
     'model "letters" is not served here; this server serves "digits"'),
    ("unknown version", _case(lambda r: setattr(r, "model_version", "7")), Code.NOT_FOUND,
     'model "digits" has no version "7"; its only version is "1"'),
    ("wrong input name", _case(lambda r: setattr(r.inputs[0], "name", "IMAGE")), Code.INVALID_ARGUMENT,
     'model "digits" has no input "IMAGE"; its input is "INPUT0"'),
    ("wrong datatype", _case(lambda r: setattr(r.inputs[0], "datatype", "INT32")), Code.INVALID_ARGUMENT,
     'input "INPUT0" has datatype "INT32", model "digits" expects "FP32"'),
    ("wrong shape", _case(_set_shape([1, 3])), Code.INVALID_ARGUMENT,
     'input "INPUT0" has shape [1, 3], model "digits" expects [-1, 64] with at least one row'),
    ("no rows", _case(_set_shape([0, 64])), Code.INVALID_ARGUMENT,
     'input "INPUT0" has shape [0, 64], model "digits" expects [-1, 64] with at least one row'),
    ("element count", _case(_as_contents([0.0] * 64, [2, 64])), Code.INVALID_ARGUMENT,
     'input "INPUT0" has shape [2, 64] (128 elements) but 64 values in contents.fp32_contents'),
    ("raw byte size", _case(lambda r: r.raw_input_contents.__setitem__(0, b"\x00" * 100)),
     Code.INVALID_ARGUMENT,
     'raw_input_contents[0] of input "INPUT0" has 100 bytes, shape [1, 64] of FP32 needs 256'),
    ("huge shape", _case(_set_shape([2**62, 64])), Code.INVALID_ARGUMENT,
     f"has 256 bytes, shape [{2**62}, 64] of FP32 needs {2**62 * 256}"),
    ("raw count", _case(lambda r: r.raw_input_contents.append(b"")), Code.INVALID_ARGUMENT,
     "request has 2 raw_input_contents for 1 input(s)"),
    ("missing input", pb.ModelInferRequest(model_name="digits"), Code.INVALID_ARGUMENT,
     'request has no inputs; model "digits" expects input "INPUT0"'),
    ("repeated input", _case(lambda r: r.inputs.append(r.inputs[0])), Code.INVALID_ARGUMENT,
     'input "INPUT0" appears 2 times'),
    ("wrong contents field", _case(_int_contents), Code.INVALID_ARGUMENT,
     'input "INPUT0" is FP32 but carries contents.int_contents; '
     "FP32 values go in contents.fp32_contents or raw_input_contents"),
    ("contents and raw", _case(lambda r: r.inputs[0].contents.fp32_contents.extend([0.0] * 64)),
     Code.INVALID_ARGUMENT, 'input "INPUT0" has both contents and raw_input_contents'),
    ("not finite", _case(_as_contents([float("nan")] * 64, [1, 64])), Code.INVALID_ARGUMENT,
     'input "INPUT0" holds NaN or infinite values; pixels are 0..16'),
    ("unknown output", _case(lambda r: r.outputs.add(name="SCORES")), Code.INVALID_ARGUMENT,
     'model "digits" has no output "SCORES"; its outputs are "LABEL", "PROBABILITIES"'),
    ("repeated output", _case(_label_twice), Code.INVALID_ARGUMENT, 'output "LABEL" is requested 2 times'),
]


@pytest.mark.parametrize(
    ("request_", "code", "message"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
async def test_infer_names_what_is_wrong(
    stub: Any, request_: pb.ModelInferRequest, code: grpc.StatusCode, message: str
) -> None:
    error = await rpc_error(stub.ModelInfer(request_))
    assert error.code() == code
    assert message in (error.details() or "")


# --- through the sidecar, and the end -------------------------------------------------------


async def test_infer_through_the_sidecar_equals_the_direct_call_byte_for_byte(
    server: Proc, sidecar: Proc
) -> None:
    x, _ = images()
    for request in (raw_request(x[:100], id="raw"), contents_request(x[100:200])):
        payload = request.SerializeToString()
        async with grpc.aio.insecure_channel(f"{HOST}:{server.ports['grpc']}") as direct_channel:
            direct = await direct_channel.unary_unary(INFER)(payload)
        async with grpc.aio.insecure_channel(f"{HOST}:{sidecar.ports['grpc']}") as sidecar_channel:
            via_sidecar = await sidecar_channel.unary_unary(INFER)(payload)
        assert isinstance(direct, bytes)
        assert via_sidecar == direct
        assert len(pb.ModelInferResponse.FromString(direct).outputs) == 2


async def test_sigterm_reports_not_serving_then_exits_zero() -> None:
    proc = start_java(0)  # the JVM binds port 0 itself and prints the port it got
    try:
        async with grpc.aio.insecure_channel(f"{HOST}:{proc.ports['grpc']}") as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=SERVICE))
            assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
            proc.signal(signal.SIGTERM)
            assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
            watch.cancel()
        assert await asyncio.to_thread(proc.wait, 10) == 0, proc.log()
    finally:
        proc.stop()
    assert "Exception" not in proc.log()
