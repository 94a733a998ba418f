"""OIP v2 gRPC server for the digits model, with the test hooks the sidecar's tests drive.

Knows the model only through DigitsModel.predict and nothing about the sidecar: it
is what a model author would write, plus a few hooks (metadata echo, latency, fault
injection, hang, per-request sleep, an event log) that let tests observe what
reached the model. It also serves the "echo" model (echo_model.py: BYTES in, BYTES out), so
BYTES tensors can be checked end to end. See README.md beside this file.

    python examples/python/digits_server.py --host 127.0.0.1 --port 0
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeAlias

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined, unused-ignore]
from numpy.typing import NDArray

import echo_model
from digits_model import CLASSES, FEATURES, DigitsModel
from inference import grpc_service_pb2 as pb
from inference import grpc_service_pb2_grpc as pb_grpc

MODEL = "digits"
VERSION = "1"
SERVER_NAME = "digits-python"
SERVER_VERSION = "0.1.0"
INPUT = "INPUT0"
LABEL = "LABEL"
PROBABILITIES = "PROBABILITIES"
OUTPUTS = (LABEL, PROBABILITIES)
INPUT_SHAPE = (-1, FEATURES)
OUTPUT_SHAPES = {LABEL: (-1,), PROBABILITIES: (-1, CLASSES)}
OUTPUT_DATATYPES = {LABEL: "INT64", PROBABILITIES: "FP32"}
SERVICE = "inference.GRPCInferenceService"
ECHO_PREFIX = "x-echo-"
DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "digits" / "weights.json"

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
MetadataPairs = list[tuple[str, str | bytes]]


class InferError(Exception):
    """A request this server refuses, with the status and a message naming what is wrong."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- the model's identity ------------------------------------------------------------------


def check_model(name: str, version: str) -> None:
    """Raise NOT_FOUND unless name/version address this model; an empty version means latest."""
    if name != MODEL:
        raise InferError(
            grpc.StatusCode.NOT_FOUND,
            f'model "{name}" is not served here; this server serves "{MODEL}"',
        )
    if version not in ("", VERSION):
        raise InferError(
            grpc.StatusCode.NOT_FOUND,
            f'model "{MODEL}" has no version "{version}"; its only version is "{VERSION}"',
        )


def _shape(dims: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"


def _invalid(message: str) -> InferError:
    return InferError(grpc.StatusCode.INVALID_ARGUMENT, message)


# --- tensors in and out ---------------------------------------------------------------------


def decode_input(request: pb.ModelInferRequest) -> tuple[NDArray[np.float32], bool]:
    """The pixels [n, 64] of INPUT0, and whether they came as raw_input_contents."""
    for tensor in request.inputs:
        if tensor.name != INPUT:
            raise _invalid(f'model "{MODEL}" has no input "{tensor.name}"; its input is "{INPUT}"')
    if not request.inputs:
        raise _invalid(f'request has no inputs; model "{MODEL}" expects input "{INPUT}"')
    if len(request.inputs) > 1:
        raise _invalid(f'input "{INPUT}" appears {len(request.inputs)} times')
    tensor = request.inputs[0]
    if tensor.datatype != "FP32":
        raise _invalid(
            f'input "{INPUT}" has datatype "{tensor.datatype}", model "{MODEL}" expects "FP32"'
        )
    dims = list(tensor.shape)
    if len(dims) != 2 or dims[1] != FEATURES or dims[0] < 1:
        raise _invalid(
            f'input "{INPUT}" has shape {_shape(dims)}, model "{MODEL}" expects '
            f"{_shape(INPUT_SHAPE)} with at least one row"
        )
    rows = dims[0]
    count = rows * FEATURES
    raw = bool(request.raw_input_contents)
    if raw:
        if len(request.raw_input_contents) != len(request.inputs):
            raise _invalid(
                f"request has {len(request.raw_input_contents)} raw_input_contents "
                f"for {len(request.inputs)} input(s)"
            )
        if tensor.HasField("contents"):
            raise _invalid(f'input "{INPUT}" has both contents and raw_input_contents')
        data = request.raw_input_contents[0]
        if len(data) != count * 4:
            raise _invalid(
                f'raw_input_contents[0] of input "{INPUT}" has {len(data)} bytes, '
                f"shape {_shape(dims)} of FP32 needs {count * 4}"
            )
        pixels = np.frombuffer(data, dtype="<f4").astype(np.float32).reshape(rows, FEATURES)
    else:
        others = [f.name for f, _ in tensor.contents.ListFields() if f.name != "fp32_contents"]
        if others:
            raise _invalid(
                f'input "{INPUT}" is FP32 but carries contents.{others[0]}; '
                "FP32 values go in contents.fp32_contents or raw_input_contents"
            )
        values = tensor.contents.fp32_contents
        if len(values) != count:
            raise _invalid(
                f'input "{INPUT}" has shape {_shape(dims)} ({count} elements) '
                f"but {len(values)} values in contents.fp32_contents"
            )
        pixels = np.asarray(values, dtype=np.float32).reshape(rows, FEATURES)
    if not np.all(np.isfinite(pixels)):
        raise _invalid(f'input "{INPUT}" holds NaN or infinite values; pixels are 0..16')
    return pixels, raw


def requested_outputs(request: pb.ModelInferRequest) -> list[str]:
    """Output names in the order asked for; none asked for means every output."""
    names = [output.name for output in request.outputs]
    for name in names:
        if name not in OUTPUTS:
            raise _invalid(
                f'model "{MODEL}" has no output "{name}"; its outputs are "{LABEL}", '
                f'"{PROBABILITIES}"'
            )
        if names.count(name) > 1:
            raise _invalid(f'output "{name}" is requested {names.count(name)} times')
    return names or list(OUTPUTS)


def encode_response(
    request: pb.ModelInferRequest,
    names: list[str],
    labels: NDArray[np.int64],
    probabilities: NDArray[np.float32],
    raw: bool,
) -> pb.ModelInferResponse:
    """The response in the request's own form: raw in, raw out; contents in, contents out."""
    response = pb.ModelInferResponse(model_name=MODEL, model_version=VERSION, id=request.id)
    rows = len(labels)
    for name in names:
        shape = [rows] if name == LABEL else [rows, CLASSES]
        output = response.outputs.add(name=name, datatype=OUTPUT_DATATYPES[name], shape=shape)
        if name == LABEL:
            if raw:
                response.raw_output_contents.append(labels.astype("<i8").tobytes())
            else:
                output.contents.int64_contents.extend(labels.tolist())
        elif raw:
            response.raw_output_contents.append(probabilities.astype("<f4").tobytes())
        else:
            output.contents.fp32_contents.extend(probabilities.reshape(-1).tolist())
    return response


# --- statistics -----------------------------------------------------------------------------


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Statistics:
    """Triton-style cumulative counters for the one model; durations in nanoseconds."""

    def __init__(self, wall_ms: Callable[[], int] = _wall_ms) -> None:
        self._wall_ms = wall_ms
        self._stats = pb.ModelStatistics(name=MODEL, version=VERSION)

    def success(self, batch: int, total_ns: int, compute_ns: int) -> None:
        stats = self._stats
        stats.last_inference = self._wall_ms()
        stats.inference_count += batch
        stats.execution_count += 1
        stats.inference_stats.success.count += 1
        stats.inference_stats.success.ns += total_ns
        stats.inference_stats.compute_infer.count += 1
        stats.inference_stats.compute_infer.ns += compute_ns

    def failure(self, total_ns: int) -> None:
        self._stats.last_inference = self._wall_ms()
        self._stats.inference_stats.fail.count += 1
        self._stats.inference_stats.fail.ns += total_ns

    def snapshot(self) -> pb.ModelStatistics:
        copy = pb.ModelStatistics()
        copy.CopyFrom(self._stats)
        return copy


# --- test hooks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Faults:
    """What ModelInfer suffers before the model runs: hang, latency, sleep_ms, injected errors."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    hang: bool = False
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    async def before_infer(self, request: pb.ModelInferRequest) -> None:
        delay_ms = self.latency_ms + _sleep_ms(request)
        if self.hang:
            await asyncio.Event().wait()  # until the call is cancelled
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000.0)
        if self.error_rate > 0 and self.rng.random() < self.error_rate:
            raise InferError(grpc.StatusCode.UNAVAILABLE, "injected fault")


class Immediate:
    """ModelInfer runs the model at once, concurrently with other calls (the default)."""

    async def run(self, infer: Callable[[], pb.ModelInferResponse]) -> pb.ModelInferResponse:
        return infer()


class FixedCost:
    """ModelInfer runs the model one call at a time, each taking at least `floor_ms`, as a GPU that
    launches one kernel per call does: N rows in one call cost about what one row costs, so it
    shows what batching gives a model that does not batch itself (--fixed-cost-ms)."""

    def __init__(self, floor_ms: float, clock: Callable[[], float] = time.perf_counter) -> None:
        self._floor = floor_ms / 1000.0
        self._clock = clock
        self._lock = asyncio.Lock()

    async def run(self, infer: Callable[[], pb.ModelInferResponse]) -> pb.ModelInferResponse:
        async with self._lock:
            started = self._clock()
            response = infer()
            # Slept, not spun: a busy model would take a core from the sidecar it is measured with.
            # The loop's timers fire up to about a millisecond late; the floor is a minimum.
            left = self._floor - (self._clock() - started)
            if left > 0:
                await asyncio.sleep(left)
            return response


def _sleep_ms(request: pb.ModelInferRequest) -> int:
    if "sleep_ms" not in request.parameters:
        return 0
    parameter = request.parameters["sleep_ms"]
    kind = parameter.WhichOneof("parameter_choice")
    if kind != "int64_param":
        raise _invalid(f'parameter "sleep_ms" must be a non-negative int64_param, got {kind}')
    if parameter.int64_param < 0:
        raise _invalid(f'parameter "sleep_ms" is {parameter.int64_param}, must be >= 0')
    return parameter.int64_param


class EventLog:
    """One JSON line per ModelInfer outcome, flushed at once so a test can read it mid-run."""

    def __init__(self, file: IO[str] | None) -> None:
        self._file = file

    @classmethod
    def open(cls, path: Path | None) -> EventLog:
        """An event log appending to path; None gives one that writes nothing."""
        return cls(None if path is None else path.open("a", encoding="utf-8"))

    def write(self, event: str, request_id: str, metadata: MetadataPairs, **extra: str) -> None:
        if self._file is None or self._file.closed:
            return
        line = {
            "event": event,
            "id": request_id,
            "metadata": _metadata_json(metadata),
            **trace_context(metadata),
            **extra,
        }
        self._file.write(json.dumps(line) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _metadata_json(metadata: MetadataPairs) -> dict[str, str]:
    # Binary (-bin) values go as base64; a repeated key's values are joined as HTTP does.
    out: dict[str, str] = {}
    for key, value in metadata:
        text = base64.b64encode(value).decode("ascii") if isinstance(value, bytes) else value
        out[key] = f"{out[key]},{text}" if key in out else text
    return out


_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")


def trace_context(metadata: MetadataPairs) -> dict[str, str]:
    """The caller's W3C trace context (trace_id, parent_span_id), as a model continuing the trace reads it.

    A model that traces itself would hand `traceparent` to its tracer (OpenTelemetry's propagator) and
    start its span as the caller's child; this one only logs the ids.
    """
    for key, value in metadata:
        if key == "traceparent" and isinstance(value, str):
            match = _TRACEPARENT.fullmatch(value.strip())
            if match and int(match.group(1), 16) and int(match.group(2), 16):
                return {"trace_id": match.group(1), "parent_span_id": match.group(2)}
    return {}


def _request_metadata(context: Context) -> MetadataPairs:
    return [(key, value) for key, value in context.invocation_metadata() or ()]


async def _echo(context: Context, metadata: MetadataPairs) -> None:
    """Send x-echo-* back unchanged in the headers and as <key>-trailer in the trailers."""
    echoed = [(key, value) for key, value in metadata if key.startswith(ECHO_PREFIX)]
    if not echoed:
        return
    await context.send_initial_metadata(echoed)
    context.set_trailing_metadata([(_trailer_key(key), value) for key, value in echoed])


def _trailer_key(key: str) -> str:
    # A binary value needs a key ending in -bin, so the suffix goes before it.
    return key.removesuffix("-bin") + "-trailer-bin" if key.endswith("-bin") else key + "-trailer"


# --- the service ----------------------------------------------------------------------------


# The generated base class is untyped; how mypy sees it depends on how the stubs are found.
class DigitsServicer(pb_grpc.GRPCInferenceServiceServicer):  # type: ignore[misc, unused-ignore]
    """OIP v2 for model "digits" version "1"; RepositoryIndex is left UNIMPLEMENTED on purpose."""

    def __init__(
        self,
        model: DigitsModel,
        faults: Faults,
        events: EventLog,
        statistics: Statistics,
        executor: Immediate | FixedCost | None = None,
    ) -> None:
        self._model = model
        self._executor = executor or Immediate()
        self._faults = faults
        self._events = events
        self._statistics = statistics
        self._in_flight: set[asyncio.Task[Any]] = set()
        self.draining = False

    async def ServerLive(
        self, request: pb.ServerLiveRequest, context: Context
    ) -> pb.ServerLiveResponse:
        await _echo(context, _request_metadata(context))
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(
        self, request: pb.ServerReadyRequest, context: Context
    ) -> pb.ServerReadyResponse:
        await _echo(context, _request_metadata(context))
        return pb.ServerReadyResponse(ready=not self.draining)

    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: Context
    ) -> pb.ModelReadyResponse:
        await _echo(context, _request_metadata(context))
        if request.name == echo_model.MODEL:
            await _abort_unless_echo(context, request.version)
            return pb.ModelReadyResponse(ready=not self.draining)
        await _abort_unless_model(context, request.name, request.version)
        return pb.ModelReadyResponse(ready=not self.draining)

    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: Context
    ) -> pb.ServerMetadataResponse:
        await _echo(context, _request_metadata(context))
        return pb.ServerMetadataResponse(name=SERVER_NAME, version=SERVER_VERSION, extensions=[])

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: Context
    ) -> pb.ModelMetadataResponse:
        await _echo(context, _request_metadata(context))
        if request.name == echo_model.MODEL:
            await _abort_unless_echo(context, request.version)
            return echo_model.metadata()
        await _abort_unless_model(context, request.name, request.version)
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=MODEL,
            versions=[VERSION],
            platform="numpy",
            inputs=[tensor(name=INPUT, datatype="FP32", shape=INPUT_SHAPE)],
            outputs=[
                tensor(name=name, datatype=OUTPUT_DATATYPES[name], shape=OUTPUT_SHAPES[name])
                for name in OUTPUTS
            ],
        )

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: Context
    ) -> pb.ModelInferResponse:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        metadata = _request_metadata(context)
        await _echo(context, metadata)
        if request.model_name == echo_model.MODEL:
            try:
                return _echo_infer(request)
            except echo_model.EchoError as error:
                await context.abort(error.code, error.message)
        try:
            check_model(request.model_name, request.model_version)
        except InferError as error:
            self._events.write("error", request.id, metadata, code=error.code.name)
            await context.abort(error.code, error.message)
        started = time.perf_counter_ns()
        try:
            await self._faults.before_infer(request)
            response = await self._executor.run(lambda: self._infer(request, started))
        except InferError as error:
            self._statistics.failure(time.perf_counter_ns() - started)
            self._events.write("error", request.id, metadata, code=error.code.name)
            await context.abort(error.code, error.message)
        except asyncio.CancelledError:
            # The caller cancelled or its deadline passed: say so, so tests can see the model
            # noticed, and let the cancellation continue.
            self._statistics.failure(time.perf_counter_ns() - started)
            self._events.write("cancelled", request.id, metadata)
            raise
        self._events.write("done", request.id, metadata)
        return response

    async def ModelStreamInfer(
        self, request_iterator: AsyncIterator[pb.ModelInferRequest], context: Context
    ) -> AsyncIterator[pb.ModelStreamInferResponse]:
        await _echo(context, _request_metadata(context))
        async for request in request_iterator:
            started = time.perf_counter_ns()
            if request.model_name == echo_model.MODEL:
                try:
                    yield pb.ModelStreamInferResponse(infer_response=_echo_infer(request))
                except echo_model.EchoError as error:
                    yield pb.ModelStreamInferResponse(error_message=error.message)
                continue
            try:
                check_model(request.model_name, request.model_version)
            except InferError as error:
                yield pb.ModelStreamInferResponse(error_message=error.message)
                continue
            try:
                response = self._infer(request, started)
            except InferError as error:
                self._statistics.failure(time.perf_counter_ns() - started)
                yield pb.ModelStreamInferResponse(error_message=error.message)
                continue
            yield pb.ModelStreamInferResponse(infer_response=response)

    async def ModelStatistics(
        self, request: pb.ModelStatisticsRequest, context: Context
    ) -> pb.ModelStatisticsResponse:
        await _echo(context, _request_metadata(context))
        # An empty name asks for every model: here, the one.
        if request.name or request.version:
            await _abort_unless_model(context, request.name or MODEL, request.version)
        return pb.ModelStatisticsResponse(model_stats=[self._statistics.snapshot()])

    async def cancel_in_flight(self) -> None:
        """Cancel the ModelInfer calls still running and wait until each has logged its end."""
        # grpc's stop() may return before the handlers it abandons have run their cleanup;
        # waiting here keeps their "cancelled" lines from racing the event log's close.
        for task in self._in_flight:
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)

    def _infer(self, request: pb.ModelInferRequest, started: int) -> pb.ModelInferResponse:
        """Validate, run the model, encode; counts a success. Raises InferError."""
        pixels, raw = decode_input(request)
        names = requested_outputs(request)
        compute_started = time.perf_counter_ns()
        labels, probabilities = self._model.predict(pixels)
        compute_ns = time.perf_counter_ns() - compute_started
        response = encode_response(request, names, labels, probabilities, raw)
        self._statistics.success(len(labels), time.perf_counter_ns() - started, compute_ns)
        return response


def _echo_infer(request: pb.ModelInferRequest) -> pb.ModelInferResponse:
    echo_model.check_version(request.model_version)
    return echo_model.infer(request)


async def _abort_unless_echo(context: Context, version: str) -> None:
    try:
        echo_model.check_version(version)
    except echo_model.EchoError as error:
        await context.abort(error.code, error.message)


async def _abort_unless_model(context: Context, name: str, version: str) -> None:
    try:
        check_model(name, version)
    except InferError as error:
        await context.abort(error.code, error.message)


# --- process --------------------------------------------------------------------------------


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def serve(model: DigitsModel, args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT, then drain: NOT_SERVING, stop accepting, finish, exit 0."""
    events = EventLog.open(args.event_log)
    faults = Faults(args.latency_ms, args.error_rate, args.hang, random.Random(args.seed))
    executor = FixedCost(args.fixed_cost_ms) if args.fixed_cost_ms > 0 else Immediate()
    servicer = DigitsServicer(model, faults, events, Statistics(), executor)
    health = health_aio.HealthServicer()
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    await health.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)

    # so_reuseport off: a port already taken must fail here, not be silently shared.
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    add_inference = pb_grpc.add_GRPCInferenceServiceServicer_to_server
    add_inference(servicer, server)  # type: ignore[no-untyped-call, unused-ignore]
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    address = _address(args.host, args.port)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as error:
        print(f"digits model: cannot listen on {address}: {error}", file=sys.stderr)
        events.close()
        return 1
    await server.start()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"digits model listening on {_address(args.host, port)}", flush=True)
    await stop.wait()

    servicer.draining = True
    await health.enter_graceful_shutdown()
    await server.stop(grace=args.grace)
    await servicer.cancel_in_flight()
    events.close()
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="OIP v2 gRPC server for the digits model.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8001, help="port; 0 picks a free one")
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS, help="weights.json")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every ModelInfer")
    parser.add_argument(
        "--fixed-cost-ms",
        type=float,
        default=0.0,
        help="ModelInfer runs one call at a time, each taking at least this long (a GPU's per-call cost)",
    )
    parser.add_argument(
        "--error-rate", type=float, default=0.0, help="fraction of ModelInfer failed UNAVAILABLE"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the --error-rate draws")
    parser.add_argument("--hang", action="store_true", help="ModelInfer never answers")
    parser.add_argument("--event-log", type=Path, help="append one JSON line per ModelInfer")
    parser.add_argument(
        "--grace", type=float, default=5.0, help="seconds in-flight calls get on shutdown"
    )
    args = parser.parse_args(argv)
    if not 0.0 <= args.error_rate <= 1.0:
        parser.error(f"--error-rate is {args.error_rate}, must be within 0..1")
    if args.latency_ms < 0:
        parser.error(f"--latency-ms is {args.latency_ms}, must be >= 0")
    if args.fixed_cost_ms < 0:
        parser.error(f"--fixed-cost-ms is {args.fixed_cost_ms}, must be >= 0")
    if args.grace < 0:
        parser.error(f"--grace is {args.grace}, must be >= 0")
    return args


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        model = DigitsModel.load(args.weights)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 1
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(serve(model, args))


if __name__ == "__main__":
    sys.exit(main())
