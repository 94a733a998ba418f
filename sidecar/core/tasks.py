"""Background tasks that never die silently: an exception that ends one is logged at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger("sidecar")


def supervised(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
    """Start a control-plane task (prober, discovery, registrar) whose crash is reported, not lost."""
    task = asyncio.create_task(coro, name=name)
    task.add_done_callback(_report)
    return task


def _report(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.error("background task %s stopped: %r", task.get_name(), error, exc_info=error)
