"""The GCRA script on a real redis-server paces as sidecar/ratelimit/gcra.py does; the client is bounded."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from sidecar.ratelimit.redis_client import RedisClient, RedisUnavailable
from sidecar.ratelimit.redis_limiter import GlobalLimiter, retry_after
from tests.support.procs import HOST, free_port
from tests.support.redis import running_redis

pytestmark = pytest.mark.integration


async def connected(client: RedisClient) -> asyncio.Task[None]:
    task = asyncio.ensure_future(client.run())
    for _ in range(200):
        if client.up and client.connects:
            return task
        await asyncio.sleep(0.01)
    raise AssertionError("redis client never connected")


async def test_the_script_admits_the_burst_then_paces_at_the_rate():
    with running_redis() as redis:
        client = RedisClient(HOST, redis.port, timeout=0.5)
        task = await connected(client)
        limiter = GlobalLimiter(client, "test:")
        waits = [retry_after(await limiter.take("k", 10, 5, 1)) for _ in range(6)]
        assert waits[:5] == [0.0] * 5
        assert 0.05 < waits[5] <= 0.1  # the next token in at most 100 ms (10/s)
        await asyncio.sleep(waits[5] + 0.01)
        assert retry_after(await limiter.take("k", 10, 5, 1)) == 0.0
        assert retry_after(await limiter.take("other", 10, 5, 1)) == 0.0  # keys apart
        await stop(task)


async def test_commands_fail_at_once_while_down_and_within_the_timeout_when_silent():
    client = RedisClient(HOST, free_port(), timeout=0.05)
    with pytest.raises(RedisUnavailable, match="down"):
        await client.send("PING")
    task = asyncio.ensure_future(client.run())
    await asyncio.sleep(0.1)
    assert not client.up
    await stop(task)
    # A server that accepts and never answers: the command's own timer ends the wait.
    writers: list[asyncio.StreamWriter] = []
    server = await asyncio.start_server(lambda r, w: writers.append(w), HOST, 0)
    port = server.sockets[0].getsockname()[1]
    silent = RedisClient(HOST, port, timeout=0.05)
    silent_task = asyncio.ensure_future(silent.run())
    for _ in range(100):  # the client's state is a plain flag, polled
        if silent.up:
            break
        await asyncio.sleep(0.01)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(RedisUnavailable, match="did not answer within 50 ms"):
        await silent.send("PING")
    assert loop.time() - started < 0.2
    await stop(silent_task)
    for w in writers:
        w.close()
    server.close()
    await server.wait_closed()


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
