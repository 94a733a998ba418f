"""The file sink, for local runs: each event one JSON line in CloudEvents' structured format
(`application/cloudevents+json`: JSON payloads inline, protobuf ones as data_base64), appended.

A batch is written and flushed in one call on a worker thread, so the event loop never waits on the
disk. Knows nothing about queues or retries' timing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import IO

from sidecar.capture.dispatch import Delivery
from sidecar.capture.events import CloudEvent, structured
from sidecar.capture.policy import FileSinkSettings


class FileSink:
    name = "file"

    def __init__(self, settings: FileSinkSettings) -> None:
        self._path = settings.path
        self._file: IO[str] | None = None

    async def start(self) -> None:
        self._file = await asyncio.to_thread(open, self._path, "a", encoding="utf-8")

    async def send(self, events: Sequence[CloudEvent]) -> Delivery:
        text = "".join(json.dumps(structured(e), separators=(",", ":")) + "\n" for e in events)
        await asyncio.to_thread(self._write, text)
        return Delivery()

    def _write(self, text: str) -> None:
        assert self._file is not None
        self._file.write(text)
        self._file.flush()

    async def close(self) -> None:
        if self._file is not None:
            await asyncio.to_thread(self._file.close)
