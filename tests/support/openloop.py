"""Open-loop load: unary gRPC calls at Poisson arrival times, in a thread of its own, every call recorded.

Open loop: a call is sent when its time comes, whether or not earlier calls have answered, so a
target that stalls is charged for every call it delayed (as bench/loadgen does). Knows nothing about
the sidecar beyond the method it calls; drills and the soak read the records.
"""

from __future__ import annotations

import asyncio
import collections
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType

import grpc
import grpc.aio

from inference import grpc_service_pb2 as pb
from tests.support.procs import HOST

MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"


def digits_request(images: int = 1) -> bytes:
    """A ModelInfer request for the digits model: `images` rows of 64 FP32 zeros."""
    return pb.ModelInferRequest(
        model_name="digits",
        inputs=[pb.ModelInferRequest.InferInputTensor(name="INPUT0", datatype="FP32", shape=[images, 64])],
        raw_input_contents=[bytes(4 * 64 * images)],
    ).SerializeToString()


@dataclass(frozen=True, slots=True)
class Record:
    at: float  # when the call was due (time.monotonic())
    took: float  # seconds from `at` to its end
    code: str  # "OK" or the gRPC status name
    details: str = ""

    @property
    def ok(self) -> bool:
        return self.code == "OK"


@dataclass
class Summary:
    sent: int
    failed: int
    codes: dict[str, int]
    p50_ms: float
    p99_ms: float
    max_ms: float
    first_failures: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.sent} calls, {self.failed} failed {dict(self.codes)}, p50 {self.p50_ms:.1f} ms,"
            f" p99 {self.p99_ms:.1f} ms, max {self.max_ms:.0f} ms"
            + (f"; first failures: {self.first_failures}" if self.first_failures else "")
        )


def summarize(records: Sequence[Record]) -> Summary:
    took = sorted(r.took for r in records) or [0.0]
    failed = [r for r in records if not r.ok]
    return Summary(
        sent=len(records),
        failed=len(failed),
        codes=dict(collections.Counter(r.code for r in records)),
        p50_ms=1000 * took[len(took) // 2],
        p99_ms=1000 * took[min(len(took) - 1, int(len(took) * 0.99))],
        max_ms=1000 * took[-1],
        first_failures=[f"{r.code}: {r.details[:160]}" for r in failed[:3]],
    )


class OpenLoop:
    """Calls `method` on HOST:port at `rate` calls/s (Poisson) from start() until stop()."""

    def __init__(
        self,
        port: int,
        rate: float,
        *,
        metadata: tuple[tuple[str, str], ...] = (),
        payload: bytes | None = None,
        method: str = MODEL_INFER,
        timeout: float = 5.0,
        seed: int = 1,
        max_seconds: float = 3600.0,
        count: int | None = None,
    ) -> None:
        self._address = f"{HOST}:{port}"
        self._rate = rate
        self._metadata = metadata
        self._payload = digits_request() if payload is None else payload
        self._method = method
        self._timeout = timeout
        self._rng = random.Random(seed)
        self._max_seconds = max_seconds  # a bound whatever the caller does
        self._count = count  # calls to send, then stop by itself (None: until stop())
        self.done = threading.Event()  # set once every call sent has ended
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="open-loop", daemon=True)
        self.records: list[Record] = []
        self.error: BaseException | None = None

    def start(self) -> OpenLoop:
        self._thread.start()
        return self

    def stop(self) -> list[Record]:
        """Stop sending, wait for the calls in flight (each bounded by its timeout), return every record."""
        self._stop.set()
        self._thread.join(self._timeout + 10)
        if self.error is not None:
            raise self.error
        return sorted(self.records, key=lambda r: r.at)

    def since(self, t: float) -> list[Record]:
        return [r for r in list(self.records) if r.at >= t]

    def wait_for(self, ok: int, timeout: float = 30.0) -> None:
        """Block until `ok` calls have succeeded (the path works end to end)."""
        deadline = time.monotonic() + timeout
        while sum(1 for r in list(self.records) if r.ok) < ok:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise AssertionError(f"fewer than {ok} calls succeeded: {summarize(self.records)}")
            time.sleep(0.05)

    def __enter__(self) -> OpenLoop:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(self._timeout + 10)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as e:  # reported by stop()
            self.error = e
        finally:
            self.done.set()

    async def _main(self) -> None:
        async with grpc.aio.insecure_channel(self._address) as channel:
            call = channel.unary_unary(self._method)
            tasks: set[asyncio.Task[None]] = set()

            async def one(at: float) -> None:
                try:
                    await call(self._payload, metadata=self._metadata, timeout=self._timeout)
                    code, details = "OK", ""
                except grpc.aio.AioRpcError as e:
                    code, details = e.code().name, e.details() or ""
                self.records.append(Record(at, time.monotonic() - at, code, details))

            start = at = time.monotonic()
            sent = 0
            while not self._stop.is_set() and at - start < self._max_seconds:
                if self._count is not None and sent >= self._count:
                    break
                sent += 1
                at += self._rng.expovariate(self._rate)
                delay = at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.get_running_loop().create_task(one(at))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks)
