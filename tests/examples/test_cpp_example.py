"""Integration tests of examples/cpp (gRPC C++): a real process on a free port, directly and via the sidecar.

The server is built by scripts/build-cpp-example.sh (a no-op while the binary is up to date); its
answers are checked against the Python reference model on every image of the data set, and its
refusals against the Python reference server's wording.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inference import grpc_service_pb2 as pb
from inference import grpc_service_pb2_grpc as pb_grpc
from tests.examples.test_digits_server import INVALID as PYTHON_INVALID
from tests.examples.test_digits_server import decoded
from tests.support import REPO
from tests.support.digits import contents_request, images, raw_request
from tests.support.procs import HOST, Proc, running, start_listening, start_sidecar

# isort: split
import digits_model  # examples/python is on sys.path once tests.support.procs is imported

# A cold build of the server (the module's first fixture) takes a minute or more on a busy
# two-core machine, beyond the suite's 120 s default; every call below carries its own deadline.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

BUILD = REPO / "scripts" / "build-cpp-example.sh"
BINARY = REPO / "examples" / "cpp" / "build" / "digits_server"
WEIGHTS = REPO / "examples" / "digits" / "weights.json"
LISTENING = "digits model listening on "
SERVICE = "inference.GRPCInferenceService"
INFER = f"/{SERVICE}/ModelInfer"
BATCH = 256
DEADLINE = 10.0
Code = grpc.StatusCode


@pytest.fixture(scope="module")
def binary() -> Path:
    done = subprocess.run(["bash", str(BUILD)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"scripts/build-cpp-example.sh failed:\n{done.stdout}{done.stderr}"
    return BINARY


def start_cpp(binary: Path, *flags: str, timeout: float = 30.0) -> Proc:
    """The server as a process on HOST, port 0 unless flags say otherwise, once it is listening."""
    args = [str(binary), "--host", HOST, "--port", "0", "--weights", str(WEIGHTS), *flags]
    return start_listening(args, name="digits-cpp", startup_timeout=timeout)


@pytest.fixture(scope="module")
def server(binary: Path) -> Iterator[Proc]:
    proc = start_cpp(binary)
    yield proc
    assert proc.stop() == 0, proc.log()


@pytest.fixture
async def channel(server: Proc) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"{HOST}:{server.ports['grpc']}") as opened:
        yield opened


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> Any:
    return pb_grpc.GRPCInferenceServiceStub(channel)


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


# --- the model's answers --------------------------------------------------------------------


async def test_every_digit_matches_the_python_model(stub: Any) -> None:
    x, y = images()
    labels, probabilities = digits_model.DigitsModel.load(WEIGHTS).predict(x)
    answers = [
        decoded(await stub.ModelInfer(raw_request(x[start : start + BATCH]), timeout=DEADLINE))
        for start in range(0, len(x), BATCH)
    ]
    got_labels = np.concatenate([a["LABEL"] for a in answers])
    got_probabilities = np.concatenate([a["PROBABILITIES"] for a in answers])

    assert got_labels.shape == (1797,) and got_probabilities.shape == (1797, 10)
    assert np.array_equal(got_labels, labels)
    assert np.abs(got_probabilities - probabilities).max() <= 1e-5
    recorded = json.loads(WEIGHTS.read_text())["training"]["accuracy"]
    assert np.mean(got_labels == y) == pytest.approx(recorded, abs=1e-12)


async def test_each_answer_takes_its_request_form_and_echoes_the_id(stub: Any) -> None:
    x, _ = images()
    as_raw = raw_request(x[:50], id="as-raw")
    as_contents = contents_request(x[:50])
    as_contents.id = "as-contents"
    by_raw = await stub.ModelInfer(as_raw, timeout=DEADLINE)
    by_contents = await stub.ModelInfer(as_contents, timeout=DEADLINE)

    assert (by_raw.id, by_contents.id) == ("as-raw", "as-contents")
    assert by_raw.model_name == by_contents.model_name == "digits"
    assert by_raw.model_version == by_contents.model_version == "1"
    assert len(by_raw.raw_output_contents) == 2
    assert not any(t.HasField("contents") for t in by_raw.outputs)
    assert not by_contents.raw_output_contents
    assert [(t.name, t.datatype, list(t.shape)) for t in by_raw.outputs] == [
        ("LABEL", "INT64", [50]),
        ("PROBABILITIES", "FP32", [50, 10]),
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
    response = await stub.ModelInfer(request, timeout=DEADLINE)
    assert [t.name for t in response.outputs] == ["PROBABILITIES"]
    assert decoded(response)["PROBABILITIES"].shape == (3, 10)
    assert len(response.raw_output_contents) == (1 if form is raw_request else 0)


# --- every other call -----------------------------------------------------------------------


async def test_server_live_ready_and_metadata(stub: Any) -> None:
    assert (await stub.ServerLive(pb.ServerLiveRequest(), timeout=DEADLINE)).live
    assert (await stub.ServerReady(pb.ServerReadyRequest(), timeout=DEADLINE)).ready
    metadata = await stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=DEADLINE)
    assert (metadata.name, metadata.version, list(metadata.extensions)) == ("digits-cpp", "0.1.0", [])


@pytest.mark.parametrize("version", ["", "1"])
async def test_model_ready_and_metadata(stub: Any, version: str) -> None:
    ready = await stub.ModelReady(pb.ModelReadyRequest(name="digits", version=version), timeout=DEADLINE)
    assert ready.ready
    metadata = await stub.ModelMetadata(
        pb.ModelMetadataRequest(name="digits", version=version), timeout=DEADLINE
    )
    assert (metadata.name, list(metadata.versions), metadata.platform) == ("digits", ["1"], "cpp")
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs] == [("INPUT0", "FP32", [-1, 64])]
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.outputs] == [
        ("LABEL", "INT64", [-1]),
        ("PROBABILITIES", "FP32", [-1, 10]),
    ]


async def test_model_ready_and_metadata_refuse_an_unknown_model_or_version(stub: Any) -> None:
    calls = ((stub.ModelReady, pb.ModelReadyRequest), (stub.ModelMetadata, pb.ModelMetadataRequest))
    for call, message in calls:
        error = await rpc_error(call(message(name="letters"), timeout=DEADLINE))
        assert error.code() == Code.NOT_FOUND
        assert error.details() == 'model "letters" is not served here; this server serves "digits"'
        error = await rpc_error(call(message(name="digits", version="2"), timeout=DEADLINE))
        assert error.code() == Code.NOT_FOUND
        assert error.details() == 'model "digits" has no version "2"; its only version is "1"'


async def test_statistics_count_real_inferences(stub: Any) -> None:
    async def snapshot() -> Any:
        response = await stub.ModelStatistics(pb.ModelStatisticsRequest(name="digits"), timeout=DEADLINE)
        assert [(s.name, s.version) for s in response.model_stats] == [("digits", "1")]
        return response.model_stats[0]

    before = await snapshot()
    await stub.ModelInfer(raw_request(images()[0][:3]), timeout=DEADLINE)
    await rpc_error(stub.ModelInfer(pb.ModelInferRequest(model_name="digits"), timeout=DEADLINE))
    after = await snapshot()

    assert after.inference_count - before.inference_count == 3
    assert after.execution_count - before.execution_count == 1
    stats, old = after.inference_stats, before.inference_stats
    assert stats.success.count - old.success.count == 1
    assert stats.success.ns > old.success.ns
    assert stats.compute_infer.count - old.compute_infer.count == 1
    assert stats.fail.count - old.fail.count == 1
    assert after.last_inference >= before.last_inference > 0
    everything = await stub.ModelStatistics(pb.ModelStatisticsRequest(), timeout=DEADLINE)
    assert [s.name for s in everything.model_stats] == ["digits"]
    error = await rpc_error(stub.ModelStatistics(pb.ModelStatisticsRequest(name="letters"), timeout=DEADLINE))
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

    answers = [answer async for answer in stub.ModelStreamInfer(send(), timeout=DEADLINE)]
    assert [a.infer_response.id for a in answers] == ["r0", "r1", "", "", ""]
    assert [bool(a.error_message) for a in answers] == [False, False, True, True, False]
    assert '"letters"' in answers[2].error_message
    assert "has shape [1, 3]" in answers[3].error_message
    assert [decoded(answers[i].infer_response)["LABEL"][0] for i in (0, 1, 4)] == [0, 1, 4]


async def test_repository_index_is_unimplemented(stub: Any) -> None:
    error = await rpc_error(stub.RepositoryIndex(pb.RepositoryIndexRequest(), timeout=DEADLINE))
    assert error.code() == Code.UNIMPLEMENTED


async def test_health_serves_both_names(channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", SERVICE):
        answer = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=DEADLINE)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_sleep_past_the_deadline_ends_in_deadline_exceeded(stub: Any) -> None:
    request = raw_request(images()[0][:1])
    request.parameters["sleep_ms"].int64_param = 5000
    started = time.monotonic()
    error = await rpc_error(stub.ModelInfer(request, timeout=0.3))
    assert error.code() == Code.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 2.0


# --- requests it refuses --------------------------------------------------------------------


def _huge_shape() -> pb.ModelInferRequest:
    # A row count whose byte size overflows 64 bits must still be named exactly.
    request = raw_request(images()[0][:1])
    request.inputs[0].shape[0] = 2**62
    return request


# The Python reference server's cases and wording, which the C++ server copies.
INVALID = [
    *PYTHON_INVALID,
    (
        "huge shape",
        _huge_shape(),
        Code.INVALID_ARGUMENT,
        f'raw_input_contents[0] of input "INPUT0" has 256 bytes, shape [{2**62}, 64] of FP32 '
        f"needs {2**62 * 256}",
    ),
]


@pytest.mark.parametrize(
    ("request_", "code", "message"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
async def test_infer_names_what_is_wrong(
    stub: Any, request_: pb.ModelInferRequest, code: grpc.StatusCode, message: str
) -> None:
    error = await rpc_error(stub.ModelInfer(request_, timeout=DEADLINE))
    assert error.code() == code
    assert message in (error.details() or "")


# --- through the sidecar --------------------------------------------------------------------


async def test_infer_through_the_sidecar_equals_the_direct_call_byte_for_byte(server: Proc) -> None:
    x, _ = images()
    with running(start_sidecar(server.ports["grpc"])) as sidecar:
        for request in (raw_request(x[:100], id="raw"), contents_request(x[100:200])):
            payload = request.SerializeToString()
            async with grpc.aio.insecure_channel(f"{HOST}:{server.ports['grpc']}") as direct_channel:
                direct = await direct_channel.unary_unary(INFER)(payload, timeout=DEADLINE)
            async with grpc.aio.insecure_channel(f"{HOST}:{sidecar.ports['grpc']}") as sidecar_channel:
                via_sidecar = await sidecar_channel.unary_unary(INFER)(payload, timeout=DEADLINE)
            assert isinstance(direct, bytes)
            assert via_sidecar == direct
            assert len(pb.ModelInferResponse.FromString(direct).outputs) == 2

        body = {
            "id": "rest",
            "inputs": [
                {"name": "INPUT0", "datatype": "FP32", "shape": [5, 64], "data": x[:5].ravel().tolist()}
            ],
        }
        status, answer = await asyncio.to_thread(_post_json, sidecar.ports["http"], body)
    assert status == 200, answer
    labels, probabilities = digits_model.DigitsModel.load(WEIGHTS).predict(x[:5])
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert (answer["model_name"], answer["model_version"], answer["id"]) == ("digits", "1", "rest")
    assert outputs["LABEL"]["data"] == labels.tolist()
    assert outputs["PROBABILITIES"]["shape"] == [5, 10]
    assert np.abs(np.asarray(outputs["PROBABILITIES"]["data"]) - probabilities.ravel()).max() <= 1e-5


def _post_json(port: int, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://{HOST}:{port}/v2/models/digits/infer",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=DEADLINE) as response:
        return response.status, json.loads(response.read())


# --- the process ----------------------------------------------------------------------------


async def test_sigterm_reports_not_serving_then_exits_zero(binary: Path) -> None:
    proc = start_cpp(binary)
    try:
        async with grpc.aio.insecure_channel(f"{HOST}:{proc.ports['grpc']}") as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=SERVICE))
            assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
            proc.signal(signal.SIGTERM)
            assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
            watch.cancel()
        started = time.monotonic()
        assert await asyncio.to_thread(proc.wait, 10) == 0, proc.log()
        assert time.monotonic() - started < 5.0
    finally:
        proc.stop()


def test_bad_weights_or_flags_stop_the_start_with_a_message(binary: Path, tmp_path: Path) -> None:
    broken = tmp_path / "weights.json"
    broken.write_text('{"format": "ai-sidecar-digits/1", "input_scale": 16.0}')
    done = subprocess.run([str(binary), "--weights", str(broken)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stderr.strip() == f"digits weights {broken}: missing 'weights'"
    done = subprocess.run([str(binary), "--port", "http"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "argument --port: invalid value 'http'" in done.stderr
