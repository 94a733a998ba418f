"""Integration tests of examples/python/digits_server.py: a real process, a real port, grpc.aio."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import random
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sklearn.datasets import load_digits

from inference import grpc_service_pb2 as pb
from inference import grpc_service_pb2_grpc as pb_grpc

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SERVER = REPO / "examples" / "python" / "digits_server.py"
LISTENING = "digits model listening on "
INFER_SERVICE = "inference.GRPCInferenceService"
Code = grpc.StatusCode


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    address: str
    events_path: Path
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def events(self, request_id: str) -> list[dict[str, Any]]:
        lines = self.events_path.read_text().splitlines()
        return [e for e in map(json.loads, lines) if e["id"] == request_id]

    async def wait_for_event(self, request_id: str, timeout: float = 5.0) -> list[dict[str, Any]]:
        # The model writes its line when it notices the cancellation, a moment after the
        # client gave up; poll the flushed file briefly rather than guess a sleep.
        for _ in range(int(timeout / 0.02)):
            if seen := self.events(request_id):
                return seen
            await asyncio.sleep(0.02)
        return self.events(request_id)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode


def start_server(workdir: Path, *flags: str, timeout: float = 30.0) -> Server:
    """Start the server from an unrelated cwd (the default weights must still be found)."""
    events = workdir / "events.jsonl"
    stderr = workdir / "stderr.txt"
    with stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, str(SERVER), "--port", "0", "--event-log", str(events), *flags],
            stdout=subprocess.PIPE,
            stderr=err,
            cwd=workdir,
        )
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    output = b""
    while b"\n" not in output:
        remaining = deadline - time.monotonic()
        ready, _, _ = select.select([process.stdout], [], [], max(0.0, remaining))
        chunk = os.read(process.stdout.fileno(), 4096) if ready else b""
        if not chunk:
            process.kill()
            process.wait()
            process.stdout.close()
            raise AssertionError(
                f"digits server printed {output!r} and no listening line:\n{stderr.read_text()}"
            )
        output += chunk
    line = output.decode().splitlines()[0]
    assert line.startswith(LISTENING), line
    return Server(process, line.removeprefix(LISTENING), events, stderr)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    started = start_server(tmp_path_factory.mktemp("digits"))
    yield started
    assert started.stop() == 0, started.stderr()


@pytest.fixture
async def channel(server: Server) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(server.address) as opened:
        yield opened


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> Any:
    return pb_grpc.GRPCInferenceServiceStub(channel)


# --- requests ---------------------------------------------------------------------------------


@functools.cache
def _digits() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    digits = load_digits()
    return digits.data.astype(np.float32), digits.target.astype(np.int64)


def images(n: int, start: int = 0) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    x, y = _digits()
    return x[start : start + n], y[start : start + n]


def raw_request(x: np.ndarray[Any, Any], request_id: str = "") -> pb.ModelInferRequest:
    return pb.ModelInferRequest(
        model_name="digits",
        id=request_id,
        inputs=[pb.ModelInferRequest.InferInputTensor(name="INPUT0", datatype="FP32", shape=list(x.shape))],
        raw_input_contents=[x.astype("<f4").tobytes()],
    )


def contents_request(x: np.ndarray[Any, Any], request_id: str = "") -> pb.ModelInferRequest:
    return pb.ModelInferRequest(
        model_name="digits",
        id=request_id,
        inputs=[
            pb.ModelInferRequest.InferInputTensor(
                name="INPUT0",
                datatype="FP32",
                shape=list(x.shape),
                contents=pb.InferTensorContents(fp32_contents=x.ravel().tolist()),
            )
        ],
    )


def sleepy(request: pb.ModelInferRequest, sleep_ms: int) -> pb.ModelInferRequest:
    request.parameters["sleep_ms"].int64_param = sleep_ms
    return request


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


# --- the OIP calls ----------------------------------------------------------------------------


async def test_server_live_ready_and_metadata(stub: Any) -> None:
    assert (await stub.ServerLive(pb.ServerLiveRequest())).live
    assert (await stub.ServerReady(pb.ServerReadyRequest())).ready
    metadata = await stub.ServerMetadata(pb.ServerMetadataRequest())
    assert metadata.name == "digits-python"
    assert metadata.version
    assert list(metadata.extensions) == []


@pytest.mark.parametrize("version", ["", "1"])
async def test_model_ready_for_the_latest_and_the_named_version(stub: Any, version: str) -> None:
    assert (await stub.ModelReady(pb.ModelReadyRequest(name="digits", version=version))).ready


async def test_model_ready_and_metadata_name_an_unknown_model_or_version(stub: Any) -> None:
    for call in (stub.ModelReady, stub.ModelMetadata):
        error = await rpc_error(call(pb.ModelReadyRequest(name="letters")))
        assert error.code() == Code.NOT_FOUND
        assert '"letters"' in (error.details() or "")
        error = await rpc_error(call(pb.ModelMetadataRequest(name="digits", version="2")))
        assert error.code() == Code.NOT_FOUND
        assert 'version "2"' in (error.details() or "")


async def test_model_metadata(stub: Any) -> None:
    metadata = await stub.ModelMetadata(pb.ModelMetadataRequest(name="digits"))
    assert metadata.name == "digits"
    assert list(metadata.versions) == ["1"]
    assert metadata.platform == "numpy"
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs] == [("INPUT0", "FP32", [-1, 64])]
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.outputs] == [
        ("LABEL", "INT64", [-1]),
        ("PROBABILITIES", "FP32", [-1, 10]),
    ]


async def test_infer_with_contents_and_raw_contents_agree(stub: Any) -> None:
    x, y = images(50)
    by_contents = await stub.ModelInfer(contents_request(x, "as-contents"))
    by_raw = await stub.ModelInfer(raw_request(x, "as-raw"))

    assert (by_contents.id, by_raw.id) == ("as-contents", "as-raw")
    assert by_contents.model_name == by_raw.model_name == "digits"
    assert by_contents.model_version == by_raw.model_version == "1"
    # Each answer takes the form of its request.
    assert not by_contents.raw_output_contents
    assert len(by_raw.raw_output_contents) == 2
    assert not any(t.HasField("contents") for t in by_raw.outputs)

    contents, raw = decoded(by_contents), decoded(by_raw)
    assert [(t.name, t.datatype, list(t.shape)) for t in by_raw.outputs] == [
        ("LABEL", "INT64", [50]),
        ("PROBABILITIES", "FP32", [50, 10]),
    ]
    assert np.array_equal(contents["LABEL"], raw["LABEL"])
    assert np.array_equal(contents["PROBABILITIES"], raw["PROBABILITIES"])
    assert np.mean(raw["LABEL"] == y) > 0.95
    assert np.allclose(raw["PROBABILITIES"].sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("form", [raw_request, contents_request])
async def test_infer_answers_only_the_requested_outputs(
    stub: Any, form: Callable[[np.ndarray[Any, Any]], pb.ModelInferRequest]
) -> None:
    x, _ = images(3)
    request = form(x)
    request.outputs.add(name="PROBABILITIES")
    response = await stub.ModelInfer(request)
    assert [t.name for t in response.outputs] == ["PROBABILITIES"]
    assert decoded(response)["PROBABILITIES"].shape == (3, 10)
    assert len(response.raw_output_contents) == (1 if form is raw_request else 0)


def _good() -> pb.ModelInferRequest:
    return raw_request(images(1)[0])


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


INVALID = [
    (
        "unknown model",
        _case(lambda r: setattr(r, "model_name", "letters")),
        Code.NOT_FOUND,
        'model "letters" is not served here',
    ),
    (
        "unknown version",
        _case(lambda r: setattr(r, "model_version", "7")),
        Code.NOT_FOUND,
        'model "digits" has no version "7"',
    ),
    (
        "wrong input name",
        _case(lambda r: setattr(r.inputs[0], "name", "IMAGE")),
        Code.INVALID_ARGUMENT,
        'model "digits" has no input "IMAGE"',
    ),
    (
        "wrong datatype",
        _case(lambda r: setattr(r.inputs[0], "datatype", "INT32")),
        Code.INVALID_ARGUMENT,
        'input "INPUT0" has datatype "INT32", model "digits" expects "FP32"',
    ),
    (
        "wrong shape",
        _case(_set_shape([1, 3])),
        Code.INVALID_ARGUMENT,
        'input "INPUT0" has shape [1, 3], model "digits" expects [-1, 64]',
    ),
    (
        "no rows",
        _case(_set_shape([0, 64])),
        Code.INVALID_ARGUMENT,
        'input "INPUT0" has shape [0, 64], model "digits" expects [-1, 64] with at least one row',
    ),
    (
        "element count",
        _case(_as_contents([0.0] * 64, [2, 64])),
        Code.INVALID_ARGUMENT,
        "shape [2, 64] (128 elements) but 64 values in contents.fp32_contents",
    ),
    (
        "raw byte size",
        _case(lambda r: r.raw_input_contents.__setitem__(0, b"\x00" * 100)),
        Code.INVALID_ARGUMENT,
        'raw_input_contents[0] of input "INPUT0" has 100 bytes, shape [1, 64] of FP32 needs 256',
    ),
    (
        "raw count",
        _case(lambda r: r.raw_input_contents.append(b"")),
        Code.INVALID_ARGUMENT,
        "request has 2 raw_input_contents for 1 input(s)",
    ),
    (
        "missing input",
        pb.ModelInferRequest(model_name="digits"),
        Code.INVALID_ARGUMENT,
        'request has no inputs; model "digits" expects input "INPUT0"',
    ),
    (
        "repeated input",
        _case(lambda r: r.inputs.append(r.inputs[0])),
        Code.INVALID_ARGUMENT,
        'input "INPUT0" appears 2 times',
    ),
    (
        "wrong contents field",
        _case(_int_contents),
        Code.INVALID_ARGUMENT,
        'input "INPUT0" is FP32 but carries contents.int_contents',
    ),
    (
        "contents and raw",
        _case(lambda r: r.inputs[0].contents.fp32_contents.extend([0.0] * 64)),
        Code.INVALID_ARGUMENT,
        'input "INPUT0" has both contents and raw_input_contents',
    ),
    (
        "not finite",
        _case(_as_contents([float("nan")] * 64, [1, 64])),
        Code.INVALID_ARGUMENT,
        'input "INPUT0" holds NaN or infinite values',
    ),
    (
        "unknown output",
        _case(lambda r: r.outputs.add(name="SCORES")),
        Code.INVALID_ARGUMENT,
        'model "digits" has no output "SCORES"; its outputs are "LABEL", "PROBABILITIES"',
    ),
    (
        "repeated output",
        _case(_label_twice),
        Code.INVALID_ARGUMENT,
        'output "LABEL" is requested 2 times',
    ),
    (
        "sleep_ms of the wrong type",
        _case(lambda r: setattr(r.parameters["sleep_ms"], "string_param", "10")),
        Code.INVALID_ARGUMENT,
        'parameter "sleep_ms" must be a non-negative int64_param, got string_param',
    ),
]


@pytest.mark.parametrize(
    ("request_", "code", "message"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
async def test_infer_names_what_is_wrong(
    stub: Any, request_: pb.ModelInferRequest, code: grpc.StatusCode, message: str
) -> None:
    error = await rpc_error(stub.ModelInfer(request_))
    assert error.code() == code
    assert message in (error.details() or "")


async def test_repository_index_is_unimplemented(stub: Any) -> None:
    error = await rpc_error(stub.RepositoryIndex(pb.RepositoryIndexRequest()))
    assert error.code() == Code.UNIMPLEMENTED


async def test_stream_infer_answers_in_order_and_carries_errors_in_band(stub: Any) -> None:
    x, _ = images(7)
    bad_shape = raw_request(x[3:4], "bad-shape")
    _set_shape([1, 3])(bad_shape)
    unknown = raw_request(x[4:5], "unknown-model")
    unknown.model_name = "letters"
    requests = [raw_request(x[i : i + 1], f"r{i}") for i in range(3)]
    requests += [bad_shape, unknown, contents_request(x[6:7], "r5")]

    async def send() -> AsyncIterator[pb.ModelInferRequest]:
        for request in requests:
            yield request

    answers = [answer async for answer in stub.ModelStreamInfer(send())]
    assert [a.infer_response.id for a in answers] == ["r0", "r1", "r2", "", "", "r5"]
    assert [bool(a.error_message) for a in answers] == [False] * 3 + [True] * 2 + [False]
    assert "has shape [1, 3]" in answers[3].error_message
    assert '"letters"' in answers[4].error_message
    single = [decoded(a.infer_response)["LABEL"][0] for a in (answers[0], answers[5])]
    assert single == [0, 6]


async def test_statistics_count_real_inferences(stub: Any) -> None:
    async def snapshot() -> Any:
        response = await stub.ModelStatistics(pb.ModelStatisticsRequest(name="digits"))
        assert [(s.name, s.version) for s in response.model_stats] == [("digits", "1")]
        return response.model_stats[0]

    before = await snapshot()
    await stub.ModelInfer(raw_request(images(3)[0]))
    await rpc_error(stub.ModelInfer(_case(_set_shape([1, 3]))))
    after = await snapshot()

    assert after.inference_count - before.inference_count == 3
    assert after.execution_count - before.execution_count == 1
    stats, old = after.inference_stats, before.inference_stats
    assert stats.success.count - old.success.count == 1
    assert stats.success.ns > old.success.ns
    assert stats.fail.count - old.fail.count == 1
    assert after.last_inference >= before.last_inference > 0
    everything = await stub.ModelStatistics(pb.ModelStatisticsRequest())
    assert [s.name for s in everything.model_stats] == ["digits"]
    error = await rpc_error(stub.ModelStatistics(pb.ModelStatisticsRequest(name="letters")))
    assert error.code() == Code.NOT_FOUND


async def test_health_serves_both_names(channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", INFER_SERVICE):
        answer = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


# --- test hooks -------------------------------------------------------------------------------

SENT = [("x-echo-tenant", "acme"), ("x-echo-blob-bin", b"\x00\xff"), ("x-not-echoed", "no")]


async def test_echo_metadata_comes_back_in_headers_and_trailers(stub: Any) -> None:
    call = stub.ModelInfer(raw_request(images(1)[0]), metadata=SENT)
    await call
    initial = list(await call.initial_metadata())
    trailing = list(await call.trailing_metadata())
    assert ("x-echo-tenant", "acme") in initial
    assert ("x-echo-blob-bin", b"\x00\xff") in initial
    assert ("x-echo-tenant-trailer", "acme") in trailing
    assert ("x-echo-blob-trailer-bin", b"\x00\xff") in trailing
    assert not any(key.startswith("x-not") for key, _ in [*initial, *trailing])


async def test_echo_metadata_comes_back_on_errors_too(stub: Any) -> None:
    error = await rpc_error(stub.ModelInfer(_case(_set_shape([1, 3])), metadata=SENT))
    assert error.code() == Code.INVALID_ARGUMENT
    assert ("x-echo-tenant", "acme") in list(error.initial_metadata() or ())
    assert ("x-echo-tenant-trailer", "acme") in list(error.trailing_metadata() or ())


async def test_event_log_records_done_with_the_request_metadata(stub: Any, server: Server) -> None:
    await stub.ModelInfer(raw_request(images(1)[0], "logged"), metadata=SENT)
    [event] = await server.wait_for_event("logged")
    assert event["event"] == "done"
    assert event["metadata"]["x-echo-tenant"] == "acme"
    assert event["metadata"]["x-not-echoed"] == "no"
    assert event["metadata"]["x-echo-blob-bin"] == "AP8="  # base64 of 00 ff

    await rpc_error(stub.ModelInfer(pb.ModelInferRequest(model_name="digits", id="refused")))
    [event] = await server.wait_for_event("refused")
    assert (event["event"], event["code"]) == ("error", "INVALID_ARGUMENT")


async def test_sleep_past_the_deadline_is_seen_cancelled_by_the_model(stub: Any, server: Server) -> None:
    started = time.monotonic()
    error = await rpc_error(stub.ModelInfer(sleepy(raw_request(images(1)[0], "too-slow"), 5000), timeout=0.3))
    assert error.code() == Code.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 2.0
    events = await server.wait_for_event("too-slow")
    assert [e["event"] for e in events] == ["cancelled"]


async def test_sleep_within_the_deadline_answers(stub: Any) -> None:
    started = time.monotonic()
    response = await stub.ModelInfer(sleepy(raw_request(images(1)[0], "nap"), 200), timeout=5)
    assert response.id == "nap"
    assert time.monotonic() - started >= 0.2


async def test_latency_flag_delays_every_infer(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--latency-ms", "250")
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            await stub.ServerLive(pb.ServerLiveRequest())
            for _ in range(2):
                started = time.monotonic()
                await stub.ModelInfer(raw_request(images(1)[0]))
                assert time.monotonic() - started >= 0.25
    finally:
        assert server.stop() == 0, server.stderr()


async def test_fixed_cost_serves_one_call_at_a_time_each_at_least_the_floor(tmp_path: Path) -> None:
    # Lower bounds only: a slow machine can make these calls slower, never faster.
    server = start_server(tmp_path, "--fixed-cost-ms", "40")
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            await stub.ServerLive(pb.ServerLiveRequest())
            started = time.monotonic()
            answers = await asyncio.gather(*(stub.ModelInfer(raw_request(images(1, i)[0])) for i in range(5)))
            assert time.monotonic() - started >= 5 * 0.04  # in turn, not side by side
            # A call of 64 rows is one execution, answered with every row.
            big = await stub.ModelInfer(raw_request(images(64)[0]))
            assert list(big.outputs[0].shape) == [64] and len(answers) == 5
            stats = await stub.ModelStatistics(pb.ModelStatisticsRequest(name="digits"))
            assert stats.model_stats[0].execution_count == 6 and stats.model_stats[0].inference_count == 69
    finally:
        assert server.stop() == 0, server.stderr()


async def test_error_rate_fails_a_seeded_fraction(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--error-rate", "0.5", "--seed", "7")
    draws = random.Random(7)
    expected = [draws.random() < 0.5 for _ in range(20)]
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            failed = []
            for i in range(20):
                try:
                    await stub.ModelInfer(raw_request(images(1)[0], f"draw-{i}"))
                    failed.append(False)
                except grpc.aio.AioRpcError as error:
                    assert (error.code(), error.details()) == (Code.UNAVAILABLE, "injected fault")
                    failed.append(True)
    finally:
        assert server.stop() == 0, server.stderr()
    assert failed == expected
    assert any(failed) and not all(failed)


# grpc.aio 1.85 sometimes prints this when the server stops just as a stream it served is being
# closed (its own bookkeeping task for the stream, cancelled by the stop; seen once in a CI run,
# 1 run in 25 of the Watch test under the suite's load): the server still exits 0. Any other
# traceback fails the test.
_GRPC_STOP_NOISE = re.compile(
    r"Traceback \(most recent call last\):\n"
    r'  File "src/python/grpcio/grpc/_cython/_cygrpc/aio/server\.pyx\.pxi", line \d+, '
    r"in grpc\._cython\.cygrpc\._schedule_rpc_coro\n"
    r"asyncio\.exceptions\.CancelledError\n"
)


async def test_hang_until_cancelled_and_sigterm_cancels_what_is_in_flight(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--hang", "--grace", "0.5")
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            error = await rpc_error(stub.ModelInfer(raw_request(images(1)[0], "hung"), timeout=0.3))
            assert error.code() == Code.DEADLINE_EXCEEDED
            assert [e["event"] for e in await server.wait_for_event("hung")] == ["cancelled"]

            # Called as unary-stream, ModelInfer's headers arrive as soon as the handler sends
            # them (a unary-unary call only sees them at the end), and the echo is sent from
            # inside the handler: once it arrives, the call has reached the model.
            in_flight = channel.unary_stream(
                f"/{INFER_SERVICE}/ModelInfer",
                request_serializer=pb.ModelInferRequest.SerializeToString,
                response_deserializer=pb.ModelInferResponse.FromString,
            )(raw_request(images(1)[0], "last"), metadata=SENT[:1])
            assert ("x-echo-tenant", "acme") in list(await in_flight.initial_metadata() or ())
            server.process.send_signal(signal.SIGTERM)
            error = await rpc_error(in_flight.read())
            assert error.code() in (Code.CANCELLED, Code.UNAVAILABLE)
        assert await asyncio.to_thread(server.process.wait, 5) == 0
        assert [e["event"] for e in server.events("last")] == ["cancelled"]
    finally:
        server.stop()
    assert "Traceback" not in _GRPC_STOP_NOISE.sub("", server.stderr())


async def test_sigterm_reports_not_serving_then_exits_zero(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service=INFER_SERVICE)
            )
            first = await watch.read()
            assert first.status == health_pb2.HealthCheckResponse.SERVING
            server.process.send_signal(signal.SIGTERM)
            second = await watch.read()
            assert second.status == health_pb2.HealthCheckResponse.NOT_SERVING
            watch.cancel()
        started = time.monotonic()
        assert await asyncio.to_thread(server.process.wait, 10) == 0
        assert time.monotonic() - started < 5.0
    finally:
        server.stop()
    assert "Traceback" not in _GRPC_STOP_NOISE.sub("", server.stderr())
