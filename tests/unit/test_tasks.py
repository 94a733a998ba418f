"""A supervised task's crash is logged when it happens, not lost."""

import asyncio
import logging

import pytest

from sidecar.core.tasks import supervised


async def test_a_crash_is_logged_with_the_task_name(caplog: pytest.LogCaptureFixture) -> None:
    async def boom() -> None:
        raise RuntimeError("lost heartbeat")

    with caplog.at_level(logging.ERROR, logger="sidecar"):
        task = supervised(boom(), "eureka-registrar")
        with pytest.raises(RuntimeError):
            await task
        await asyncio.sleep(0)  # done callbacks run on the next loop turn
    assert "background task eureka-registrar stopped: RuntimeError('lost heartbeat')" in caplog.text


async def test_cancellation_is_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    task = supervised(asyncio.sleep(10), "prober")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert "stopped" not in caplog.text
