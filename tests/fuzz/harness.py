"""Relays under fuzz in one event loop, one exchange at a time, and what each exchange and each run must keep.

Three RelayDataplanes share one filter chain composed as the sidecar composes it (metrics,
tracing, access log, readiness gate): in front of the digits model, in front of a scripted
model that writes what a case says, and in front of nothing (every call answered locally).
They are driven only through the public seam: constructor, start(), port, stop(). Knows
nothing about Hypothesis.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import gc
import io
import logging
import os
import pathlib
import threading
import time
import traceback
import tracemalloc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import grpc
import hpack
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inference import grpc_service_pb2 as pb
from inference import grpc_service_pb2_grpc as pb_grpc
from sidecar.config import load_config
from sidecar.core.call import Call, Outcome
from sidecar.filters.chain import Filter, Next
from sidecar.filters.readiness import ReadinessGate
from sidecar.health.readiness import Readiness
from sidecar.ingress.relay.listener import RelayDataplane
from sidecar.observability import Telemetry
from tests.fuzz import streams as s
from tests.support import REPO
from tests.support.procs import HOST, Proc, free_port, start_model

# A relay lets go of a connection (its tasks end, its sockets close) this long after the client did.
LET_GO_S: Final = 2.0
# The event loop turns at least this often; a callback that runs longer is a stuck relay.
BLOCKED_S: Final = 1.5
# Memory allocated in this process at an exchange's peak (client side included): a connection should
# hold at most one frame (16 KiB, the model's SETTINGS_MAX_FRAME_SIZE), one header block (the relay
# caps it at 1 MiB), ~1 MiB of writes per direction before it drains, a 64 KiB health request; the
# largest case is ~1.4 MB. Observed: under 4 MiB.
PEAK_PER_EXCHANGE: Final = 16 << 20
# Memory allocated by the relay's code, hpack and asyncio and still held after replaying a run's
# sampled cases twice more (once first, to fill bounded label sets and caches). A closed connection
# left alive holds ~14 KB; the loop's and the access log's in-flight bits come to ~15 KB in all.
RETAINED_GROWTH: Final = 64 << 10
_RELAY_CODE: Final = [
    tracemalloc.Filter(True, f"{directory}{os.sep}*")
    for directory in (REPO / "sidecar", *(pathlib.Path(m.__file__ or "").parent for m in (hpack, asyncio)))
]


class LoopBlocked(AssertionError):
    """Raised into the event loop's thread when one callback has held it for BLOCKED_S."""


class Problems(logging.Handler):
    """What must never happen: a sidecar record at ERROR, a log call that fails, an error only asyncio saw."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception as e:
            self.found.append(f"{record.pathname}:{record.lineno}: log call does not format: {e!r}")
            return
        details = "".join(traceback.format_exception(*record.exc_info)) if record.exc_info else None
        if record.levelno >= logging.ERROR:
            self.found.append(f"{record.name} {record.levelname}: {message}\n{details or ''}")
        # Frozen to text for the handlers after this one (pytest's capture keeps every record): a record's
        # arguments and exception would keep a closed connection's frames, and so all of it, alive.
        record.msg, record.args = message, ()
        record.exc_info, record.exc_text = None, details

    def on_loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        detail = "".join(traceback.format_exception(error)) if error else ""
        self.found.append(f"asyncio: {context.get('message')}\n{detail}")


class Watchdog:
    """Turns a blocked event loop into a failing exchange instead of a test that hangs until its timeout.

    A thread asks the loop for a heartbeat; when none came for BLOCKED_S, it raises LoopBlocked
    into the loop's thread, where whatever runs (a relay task stuck in a loop) fails with it.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread_id = threading.get_ident()
        self._beat = time.monotonic()
        self._active = False
        self.fired = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="fuzz-watchdog", daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def active(self) -> Any:
        self._beat = time.monotonic()
        self._active = True
        try:
            yield
        finally:
            self._active = False

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def _touch(self) -> None:
        self._beat = time.monotonic()

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            if not self._active:
                continue
            if time.monotonic() - self._beat > BLOCKED_S:
                self.fired = True
                self._beat = time.monotonic()
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(self._thread_id), ctypes.py_object(LoopBlocked)
                )
            else:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    self._loop.call_soon_threadsafe(self._touch)


class ScriptedModel:
    """A 'model' that writes `script[0]` on accept and `script[1]` once the relay's first bytes went quiet,
    then hangs up if `closes`, or reads until the relay does."""

    def __init__(self) -> None:
        self.script: tuple[bytes, bytes] = (b"", b"")
        self.closes = False
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        (first, rest), closes = self.script, self.closes
        try:
            async with asyncio.timeout(10):
                writer.write(first)
                await _until_quiet(reader, 0.015, 0.5)
                writer.write(rest)
                await writer.drain()
                while not closes and await reader.read(1 << 16):
                    pass
        except (ConnectionError, TimeoutError):
            pass
        finally:
            writer.close()


class Pause:
    """A filter that awaits before passing the call on, as one that looks something up would."""

    def __init__(self) -> None:
        self.seconds = 0.0

    async def __call__(self, call: Call, next: Next) -> Outcome:
        if self.seconds:
            await asyncio.sleep(self.seconds)
        return await next(call)


async def _until_quiet(reader: asyncio.StreamReader, quiet: float, limit: float) -> int:
    """Read until nothing came for `quiet` s, EOF, or `limit` s; how many bytes came."""
    n = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(limit):
            while True:
                try:
                    chunk = await asyncio.wait_for(reader.read(1 << 16), quiet)
                except TimeoutError:
                    return n
                if not chunk:
                    return n
                n += len(chunk)
    return n


@dataclass(frozen=True)
class Case:
    """One exchange: what the client writes to which relay, how it ends, what the scripted model writes."""

    target: str  # "model", "scripted" or "down"
    writes: tuple[bytes, ...]
    ending: str  # "eof" (FIN, then read to the relay's close), "linger" (read a little, close), "abort" (RST)
    script: tuple[bytes, bytes] = (b"", b"")
    model_closes: bool = False  # the scripted model hangs up after its script
    pause: float = 0.0  # seconds each call spends in a filter on the scripted model's relay
    paced: bool = False  # pause between writes, so the model's answers arrive in between


class Harness:
    """The relays and their models, started in one loop; `exchange` runs one case against one of them."""

    def __init__(self, tmp: pathlib.Path) -> None:
        self._tmp = tmp
        self._model: Proc | None = None
        self._model_port = 0
        self.problems = Problems()
        self.scripted = ScriptedModel()
        self.pause = Pause()
        self.relays: dict[str, RelayDataplane] = {}
        self.telemetry: Telemetry | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._fds = 0
        self._objects: collections.Counter[str] = collections.Counter()
        self.peak = 0
        self.retained = 0

    async def start(self) -> None:
        self._model = await asyncio.to_thread(start_model)
        self._model_port = self._model.ports["grpc"]
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(self.problems.on_loop_exception)
        # Every sidecar record reaches Problems first: DEBUG ones too, so that a log call that cannot
        # format its arguments is caught on paths that production runs at INFO.
        self._logger = logging.getLogger("sidecar")
        self._saved_level = self._logger.level
        self._logger.setLevel(logging.DEBUG)
        self._logger.addHandler(self.problems)
        self.watchdog = Watchdog(loop)
        argv = ["--app-name", "digits", "--model-address", f"{HOST}:{self._model_port}"]
        argv += ["--tracing", "on", "--trace-exporter", "file", "--trace-file", str(self._tmp / "spans")]
        argv += ["--trace-propagation", "w3c,b3,b3multi", "--access-log", "on"]
        # The access log writes to the stdout it finds at construction: a file here, not pytest's capture.
        self._access_log = io.TextIOWrapper((self._tmp / "access.log").open("wb"), write_through=True)
        with contextlib.redirect_stdout(self._access_log):
            self.telemetry = Telemetry(load_config(argv, {}))
        self.telemetry.start()
        ready = Readiness(1, 1)
        ready.record(True)
        await self.scripted.start()
        upstreams = {
            "model": (f"{HOST}:{self._model_port}", ready),
            "scripted": (f"{HOST}:{self.scripted.port}", ready),
            "down": (f"{HOST}:{free_port()}", Readiness(1, 1)),  # nothing listens; never probed: not ready
        }
        for name, (address, readiness) in upstreams.items():
            filters = self._filters(readiness, [self.pause] if name == "scripted" else [])
            relay = RelayDataplane(
                host=HOST, port=0, model_address=address, filters=filters, readiness=readiness
            )
            await relay.start()
            self.relays[name] = relay

    def _filters(self, readiness: Readiness, extra: list[Filter]) -> list[Filter]:
        """The chain the composition root builds (telemetry's outer filters, the readiness gate, its inner
        ones), with `extra` before the inner ones."""
        assert self.telemetry is not None
        return [
            *self.telemetry.outer_filters("ingress", local=lambda protocol: None),
            ReadinessGate(readiness),
            *extra,
            *self.telemetry.inner_filters("ingress", upstream=f"{HOST}:{self._model_port}"),
        ]

    async def stop(self) -> None:
        for relay in self.relays.values():
            await relay.stop(1.0)
        await self.scripted.stop()
        if self.telemetry is not None:
            await self.telemetry.stop()
        self._access_log.close()
        self.watchdog.close()
        self._logger.removeHandler(self.problems)
        self._logger.setLevel(self._saved_level)
        if self._model is not None:
            await asyncio.to_thread(self._model.stop)

    # ---- one run: baselines before, leaks after ----

    async def begin(self) -> None:
        self._tasks = asyncio.all_tasks()
        self._fds = _open_fds()
        self._objects = _census()
        self.peak = 0

    async def finish(self, replay: Sequence[Case]) -> None:
        """After a run: no memory kept per connection; nothing left running or open; calls still served."""
        await self._retained(replay)
        await self._settle(self._tasks, "after the run")
        # Sockets and objects go on the loop's next turns after their connections closed.
        for _ in range(100):
            if _open_fds() <= self._fds and not _grown(self._objects):
                break
            await asyncio.sleep(0.01)
        assert _open_fds() <= self._fds, f"{_open_fds() - self._fds} sockets left open"
        assert not _grown(self._objects), f"objects left from closed connections: {_grown(self._objects)}"
        assert self.telemetry is not None
        exposition = self.telemetry.exposition()
        assert exposition is not None
        body, _ = exposition()
        assert b'ai_sidecar_requests_in_flight{direction="ingress"} 0.0' in body, "calls never finished"
        await asyncio.to_thread(_still_serves, self.relays["model"].port, self.relays["down"].port)
        self._raise_problems("after the run")

    async def _retained(self, replay: Sequence[Case]) -> None:
        """Replay cases once to fill what is bounded, then twice under tracemalloc: nothing may stay."""
        for case in replay:
            await self.exchange(case)
        tracemalloc.start()
        try:
            before = _relay_memory()
            for case in [*replay, *replay]:
                await self.exchange(case)
            after = _relay_memory()
        finally:
            tracemalloc.stop()
        growth = self.retained = sum(d.size_diff for d in after.compare_to(before, "filename"))
        if growth > RETAINED_GROWTH:
            top = "\n".join(str(d) for d in after.compare_to(before, "lineno")[:10])
            raise AssertionError(f"relay kept {growth} bytes over {2 * len(replay)} exchanges:\n{top}")

    # ---- one exchange ----

    async def exchange(self, case: Case) -> None:
        """Run `case` against its relay: write, read all the relay sends, end as told; then check."""
        self.scripted.script, self.scripted.closes = case.script, case.model_closes
        self.pause.seconds = case.pause
        port = self.relays[case.target].port
        before = asyncio.all_tasks()
        with self.watchdog.active(), _peak() as peak:
            try:
                await self._talk(port, case)
                await self._settle(before, "after the client closed")
            except LoopBlocked:
                raise AssertionError(f"event loop blocked for {BLOCKED_S} s") from None
        if case.target == "model" and not await self._model_serves():
            # What the relay let through took the model down: a finding, and later cases need it back.
            assert self._model is not None
            log = self._model.log()[-3000:]
            self._model = await asyncio.to_thread(_restart, self._model)
            self.problems.found.append(f"the model stopped serving after this exchange; its log ends:\n{log}")
        if self.watchdog.fired:
            self.watchdog.fired = False
            self.problems.found.append(f"event loop blocked for {BLOCKED_S} s")
        self._raise_problems("in this exchange")
        self.peak = max(self.peak, peak[0])
        assert peak[0] <= PEAK_PER_EXCHANGE, f"one exchange held {peak[0] >> 20} MiB at its peak"

    async def _talk(self, port: int, case: Case) -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        received = asyncio.create_task(_drain(reader))
        try:
            try:
                async with asyncio.timeout(LET_GO_S):
                    for chunk in case.writes:
                        writer.write(chunk)
                        await writer.drain()
                        if case.paced:
                            await asyncio.sleep(0.03)
            except TimeoutError:
                raise AssertionError(f"relay stopped reading from the client for {LET_GO_S} s") from None
            except ConnectionError:
                pass  # the relay closed first: its right after a connection error
            if case.ending == "eof":
                with contextlib.suppress(OSError, RuntimeError):  # RuntimeError: uvloop's, once closed
                    writer.write_eof()
                done, _ = await asyncio.wait([received], timeout=LET_GO_S)
                assert done, f"relay kept the connection open {LET_GO_S} s after the client's FIN"
            elif case.ending == "linger":
                await asyncio.wait([received], timeout=0.02)
            else:
                writer.transport.abort()  # RST, with whatever the relay sent unread
        finally:
            writer.close()
            received.cancel()
            await asyncio.gather(received, return_exceptions=True)

    async def _settle(self, before: set[asyncio.Task[Any]], when: str) -> None:
        # Polled: nothing signals "the relay let go of every task"; all_tasks() is what can be seen.
        me = asyncio.current_task()
        deadline = time.monotonic() + LET_GO_S
        while True:
            left = [t for t in asyncio.all_tasks() if t not in before and t is not me and not t.done()]
            if not left:
                return
            if time.monotonic() > deadline:
                stacks = "\n".join(_stack(t) for t in left)
                raise AssertionError(f"{len(left)} tasks still running {LET_GO_S} s {when}:\n{stacks}")
            await asyncio.sleep(0.005)

    async def _model_serves(self) -> bool:
        """Whether the model still answers a ServerLive call of its own (sent straight to it)."""
        try:
            async with asyncio.timeout(LET_GO_S):
                reader, writer = await asyncio.open_connection(HOST, self._model_port)
                try:
                    writer.write(_SERVER_LIVE)
                    while True:
                        head = await reader.readexactly(9)
                        await reader.readexactly(int.from_bytes(head[:3], "big"))
                        if head[3] == s.HEADERS and head[4] & s.END_STREAM:
                            return True
                finally:
                    writer.close()
        except (OSError, EOFError, TimeoutError):
            return False

    def _raise_problems(self, where: str) -> None:
        found, self.problems.found = self.problems.found, []
        assert not found, f"{len(found)} problems {where}:\n" + "\n".join(found)

    # ---- a real client's session, recorded to be mutated ----

    async def record_session(self) -> bytes:
        """What grpcio writes for a few calls (unary, metadata, deadline, health, an error), via a tap."""
        recorded = bytearray()
        pumps: list[asyncio.Task[None]] = []

        async def tap(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            up_r, up_w = await asyncio.open_connection(HOST, self._model_port)
            pumps.append(asyncio.create_task(_pipe(reader, up_w, recorded)))
            pumps.append(asyncio.create_task(_pipe(up_r, writer, None)))

        server = await asyncio.start_server(tap, HOST, 0)
        try:
            await asyncio.to_thread(_grpcio_calls, server.sockets[0].getsockname()[1])
            async with asyncio.timeout(5):
                await asyncio.gather(*pumps)
        finally:
            server.close()
        return bytes(recorded)


_SERVER_LIVE: Final = s.PREFACE + s.frame(s.SETTINGS, 0, 0) + s.call(hpack.Encoder(), 1, s.SERVER_LIVE)


def _restart(model: Proc) -> Proc:
    model.stop()
    return start_model(port=model.ports["grpc"])


def _relay_memory() -> tracemalloc.Snapshot:
    """What the relay's code, hpack and asyncio still hold of what was allocated since tracing began."""
    gc.collect()
    return tracemalloc.take_snapshot().filter_traces(_RELAY_CODE)


@contextlib.contextmanager
def _peak() -> Iterator[list[int]]:
    """[bytes allocated at the block's peak over its start]; traces the block unless tracing already is."""
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    start = tracemalloc.get_traced_memory()[0]
    result = [0]
    try:
        yield result
    finally:
        result[0] = tracemalloc.get_traced_memory()[1] - start
        if not tracing:
            tracemalloc.stop()


# Objects of these types belong to connections (or to what lives as long as the relays); the event
# loop's own (timers, handles) come and go with it.
_CONNECTION_TYPES: Final = ("sidecar.", "hpack.", "asyncio.streams.", "uvloop.loop.TCPTransport")
# ... but for these, which live as long as the process: one metrics series per (method, model, code)
# a call first used, bounded by the label caps (telemetry/request_stats.py), not by connections.
_PROCESS_TYPES: Final = ("sidecar.telemetry.request_stats.",)


def _census() -> collections.Counter[str]:
    """Live objects by type, of the types in _CONNECTION_TYPES' modules."""
    gc.collect()
    names = (f"{getattr(type(o), '__module__', '')}.{type(o).__qualname__}" for o in gc.get_objects())
    return collections.Counter(
        n for n in names if n.startswith(_CONNECTION_TYPES) and not n.startswith(_PROCESS_TYPES)
    )


def _grown(before: collections.Counter[str]) -> dict[str, int]:
    return {k: n - before[k] for k, n in _census().items() if n > before[k]}


def _open_fds() -> int:
    """Open sockets (other descriptors come and go with the test's tools, e.g. a restarted model's log)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor, gone by now
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


async def _drain(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(ConnectionError):
        while await reader.read(1 << 16):
            pass


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: bytearray | None) -> None:
    try:
        while chunk := await reader.read(1 << 16):
            if record is not None:
                record += chunk
            writer.write(chunk)
    except ConnectionError:
        pass
    finally:
        writer.close()


def _stack(task: asyncio.Task[Any]) -> str:
    out = io.StringIO()
    task.print_stack(file=out)
    return out.getvalue()


def _grpcio_calls(port: int) -> None:
    infer = pb.ModelInferRequest.FromString(s.infer_request(1, 0))
    with grpc.insecure_channel(f"{HOST}:{port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        stub.ServerLive(pb.ServerLiveRequest(), timeout=5)
        stub.ModelInfer(infer, metadata=[("x-tenant", "t1"), ("x-data-bin", b"\x00\xff")], timeout=5)
        stub.ModelInfer(infer, metadata=[("x-tenant", "t2")], timeout=5)  # its fields indexed now
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        with contextlib.suppress(grpc.RpcError):
            stub.ModelMetadata(pb.ModelMetadataRequest(name="no-such-model"), timeout=5)


def _still_serves(model_port: int, down_port: int) -> None:
    with grpc.insecure_channel(f"{HOST}:{model_port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        assert stub.ServerReady(pb.ServerReadyRequest(), timeout=5).ready
        assert stub.ModelInfer(pb.ModelInferRequest.FromString(s.infer_request(2, 1)), timeout=5).outputs
    with grpc.insecure_channel(f"{HOST}:{down_port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
