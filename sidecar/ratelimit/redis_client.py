"""A lean Redis client for the request path: one pipelined connection, every command bounded in time.

Why not redis-py's asyncio client: on the relay a filter runs without a current asyncio task
(sidecar/filters/chain.py), and redis-py bounds reads with `asyncio.timeout`, which needs one;
its pool also takes a lock per command. Here a command is a write and a future in a FIFO; the
reply resolves it from the socket's callback, and a timer fails it at `timeout`, so a caller
waits at most that long whatever Redis does. While the connection is down every command fails
at once (no waiting for a connect), and a background task reconnects with capped backoff and
loads the registered scripts again. Redis being down is `up` and counters, never a hang.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
from collections.abc import Callable
from typing import Final

from sidecar.ratelimit import resp

log = logging.getLogger(__name__)

_MAX_PENDING: Final = 10_000
_BACKOFF: Final = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
_PING_EVERY: Final = 1.0


class RedisUnavailable(Exception):
    """No reply: the connection is down, the command timed out, or Redis answered an error."""


class _Protocol(asyncio.Protocol):
    def __init__(self, client: RedisClient) -> None:
        self._client = client
        self._buf = bytearray()

    def data_received(self, data: bytes) -> None:
        self._buf += data
        pos = 0
        try:
            while True:
                parsed = resp.parse(self._buf, pos)
                if parsed is None:
                    break
                reply, pos = parsed
                self._client._reply(reply)
        except (resp.ProtocolError, ValueError) as e:
            log.warning("redis: %s; reconnecting", e)
            self._client._lost()
        del self._buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        self._client._lost()


class RedisClient:
    def __init__(
        self, host: str, port: int, *, timeout: float, on_state: Callable[[bool], None] = lambda up: None
    ) -> None:
        self._host, self._port = host, port
        self._timeout = timeout
        self._on_state = on_state
        self._transport: asyncio.Transport | None = None
        self._pending: collections.deque[asyncio.Future[resp.Reply]] = collections.deque()
        self._scripts: dict[str, bytes] = {}  # sha1 -> source
        self._down = asyncio.Event()
        self._down.set()
        self.up = False
        self.errors = {"timeout": 0, "down": 0, "error": 0}
        self.connects = 0

    def script(self, source: str) -> str:
        """Register a Lua script, loaded at each connect; returns its SHA1 for `evalsha`."""
        sha = hashlib.sha1(source.encode()).hexdigest()
        self._scripts[sha] = source.encode()
        if self.up:
            self._fire("SCRIPT", "LOAD", source)
        return sha

    def _fire(self, *args: bytes | str | int | float) -> None:
        """A command whose reply nobody waits for (its failure shows in the counters)."""
        self.send(*args).add_done_callback(lambda f: f.cancelled() or f.exception())

    def send(self, *args: bytes | str | int | float) -> asyncio.Future[resp.Reply]:
        """Send one command; its future has the reply, or RedisUnavailable within `timeout`."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[resp.Reply] = loop.create_future()
        transport = self._transport
        if transport is None or not self.up:
            self.errors["down"] += 1
            future.set_exception(RedisUnavailable(f"redis at {self._host}:{self._port} is down"))
            return future
        if len(self._pending) >= _MAX_PENDING:
            self.errors["timeout"] += 1
            future.set_exception(RedisUnavailable("too many redis commands waiting"))
            return future
        transport.write(resp.command(*args))
        self._pending.append(future)
        timer = loop.call_later(self._timeout, self._expire, future)
        future.add_done_callback(lambda _: timer.cancel())
        return future

    def _expire(self, future: asyncio.Future[resp.Reply]) -> None:
        if not future.done():
            self.errors["timeout"] += 1
            future.set_exception(RedisUnavailable(f"redis did not answer within {self._timeout * 1000:g} ms"))

    def _reply(self, reply: resp.Reply) -> None:
        if not self._pending:
            return
        future = self._pending.popleft()
        if future.done():
            return  # it timed out; its reply came anyway
        if isinstance(reply, resp.ReplyError):
            self.errors["error"] += 1
            if str(reply).startswith("NOSCRIPT"):
                # Redis lost its scripts (a restart, SCRIPT FLUSH, a failover): load them again.
                for source in self._scripts.values():
                    self._fire("SCRIPT", "LOAD", source)
            future.set_exception(RedisUnavailable(f"redis: {reply}"))
        else:
            future.set_result(reply)

    def _lost(self) -> None:
        if self._transport is not None:
            self._transport.abort()
        self._transport = None
        if self.up:
            log.warning("redis at %s:%d: connection lost", self._host, self._port)
            self.up = False
            self._on_state(False)
        while self._pending:
            future = self._pending.popleft()
            if not future.done():
                self.errors["down"] += 1
                future.set_exception(RedisUnavailable("redis connection lost"))
        self._down.set()

    async def run(self) -> None:
        """Keep a connection: connect, load scripts, ping while up; on loss, reconnect with backoff."""
        loop = asyncio.get_running_loop()
        failures = 0
        try:
            while True:
                await self._down.wait()
                try:
                    transport, _ = await asyncio.wait_for(
                        loop.create_connection(lambda: _Protocol(self), self._host, self._port), 1.0
                    )
                    self._transport = transport
                    self.up = True  # send() works now; the scripts load next, in order
                    for source in self._scripts.values():
                        await self.send("SCRIPT", "LOAD", source)
                except (OSError, TimeoutError, RedisUnavailable) as e:
                    self._lost()
                    delay = _BACKOFF[min(failures, len(_BACKOFF) - 1)]
                    failures += 1
                    if failures == 1:
                        log.warning(
                            "redis at %s:%d: cannot connect (%s); retrying", self._host, self._port, e
                        )
                    await asyncio.sleep(delay)
                    continue
                failures = 0
                self.connects += 1
                self._down.clear()
                log.info("redis at %s:%d: connected", self._host, self._port)
                self._on_state(True)
                while self.up:
                    await asyncio.sleep(_PING_EVERY)
                    if self.up:
                        with contextlib.suppress(RedisUnavailable):
                            await self.send("PING")
        finally:
            self._lost()

    async def close(self) -> None:
        self._lost()
