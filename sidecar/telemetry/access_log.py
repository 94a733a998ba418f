"""Access log lines, one JSON object per call on stdout, written by a thread so the event loop never waits.

`submit` only appends a record to a bounded in-memory buffer (no formatting,
no I/O); a writer thread formats and writes batches. When the buffer is full,
or the output fails, records are dropped and counted through `on_drop`, so a
slow or blocked stdout costs log lines, never latency. `NoAccessLog` stands
in when the log is off. Knows nothing about filters or transports.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import json
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Final

log = logging.getLogger(__name__)

CAPACITY: Final = 10_000
_BATCH: Final = 256
_LINGER_S: Final = 0.05
_MAX_NAME: Final = 256
_STOP_TIMEOUT_S: Final = 2.0


@dataclass(frozen=True, slots=True)
class Record:
    """One finished call, as the access log writes it (None fields are left out)."""

    time: float  # wall clock, seconds since the epoch, when the call arrived
    direction: str
    protocol: str
    method: str
    model: str
    code: str
    duration_s: float
    peer: str
    trace_id: str | None = None
    span_id: str | None = None
    client_id: str | None = None
    http_status: int | None = None
    request_bytes: int | None = None
    response_bytes: int | None = None
    client_class: str | None = None
    # Which governance filter refused the call, and why (auth, rbac, rate limit, admission).
    governance: str | None = None


def line(record: Record) -> str:
    fields: dict[str, object] = {
        "time": datetime.datetime.fromtimestamp(record.time, datetime.UTC).isoformat(timespec="milliseconds"),
        "direction": record.direction,
        "protocol": record.protocol,
        # Both come from the caller: cut, so that a hostile name cannot make a line huge.
        "method": record.method[:_MAX_NAME],
        "model": record.model[:_MAX_NAME] or None,
        "code": record.code,
        "http_status": record.http_status,
        "duration_ms": round(record.duration_s * 1000, 3),
        "trace_id": record.trace_id,
        "span_id": record.span_id,
        "client_id": record.client_id,
        "client_class": record.client_class,
        "governance": record.governance[:_MAX_NAME] if record.governance else None,
        "request_bytes": record.request_bytes,
        "response_bytes": record.response_bytes,
        "peer": record.peer or None,
    }
    return json.dumps({k: v for k, v in fields.items() if v is not None}, separators=(",", ":")) + "\n"


class AccessLog:
    def __init__(
        self,
        out: BinaryIO | None = None,
        *,
        capacity: int = CAPACITY,
        on_drop: Callable[[int], None] = lambda lines: None,
    ) -> None:
        self._out = out if out is not None else sys.stdout.buffer
        self._capacity = capacity
        self._on_drop = on_drop
        self._records: collections.deque[Record] = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._finished: asyncio.Event | None = None

    def start(self) -> None:
        """Start the writer thread; on the event loop, which `stop` then awaits."""
        loop = asyncio.get_running_loop()
        finished = self._finished = asyncio.Event()

        def run() -> None:
            try:
                self._run()
            finally:
                with contextlib.suppress(RuntimeError):  # the loop closed first
                    loop.call_soon_threadsafe(finished.set)

        # A daemon: a stdout blocked for good must not keep the process from exiting.
        self._thread = threading.Thread(target=run, name="access-log", daemon=True)
        self._thread.start()

    def submit(self, record: Record) -> None:
        """Queue one record; never blocks. Called on the event loop."""
        if len(self._records) >= self._capacity:
            self._on_drop(1)
            return
        self._records.append(record)  # deque.append is atomic; the writer pops from the other end
        if not self._wake.is_set():
            self._wake.set()

    async def stop(self) -> None:
        """Write what is queued, waiting a little for a slow stdout; what is left then is dropped."""
        self._stopping = True
        self._stop.set()
        self._wake.set()
        if self._thread is None or self._finished is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_STOP_TIMEOUT_S):
                await self._finished.wait()
        if self._thread.is_alive():
            log.warning("access log: stdout did not take the last lines within %gs", _STOP_TIMEOUT_S)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            # Let lines gather: a write and a thread switch per line would cost more than the
            # line itself at a few hundred calls per second. stop() cuts the wait short.
            self._stop.wait(_LINGER_S)
            self._wake.clear()
            while self._records:
                batch: list[str] = []
                while len(batch) < _BATCH:
                    try:
                        batch.append(line(self._records.popleft()))
                    except IndexError:
                        break
                self._write("".join(batch).encode(), len(batch))
            if self._stopping:
                return

    def _write(self, data: bytes, lines: int) -> None:
        try:
            self._out.write(data)
            self._out.flush()
        except (OSError, ValueError):  # a closed or broken stdout
            self._on_drop(lines)


class NoAccessLog:
    """The access log off: no writer thread, nothing to flush."""

    def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass
