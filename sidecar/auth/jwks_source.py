"""The JWKS the verifier reads: fetched from a file or a URL by a background task, published as a snapshot.

Refetched every `refresh` and, when a token names an unknown kid, once more at most once per
`cooldown` (a flood of made-up kids costs one fetch per cooldown). A failed fetch keeps the last
good set, marked stale; readiness is held while there has never been one. The request path only
reads `current`. Knows nothing about tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pathlib
from collections.abc import Callable

import aiohttp

from sidecar.auth.keys import MAX_JWKS_BYTES, NO_KEYS, JwksError, KeySet, from_jwks
from sidecar.core.clock import Clock, monotonic

log = logging.getLogger(__name__)


class JwksSource:
    def __init__(
        self,
        *,
        file: str = "",
        url: str = "",
        refresh: float = 300.0,
        cooldown: float = 30.0,
        timeout: float = 5.0,
        clock: Clock = monotonic,
        on_change: Callable[[KeySet], None] = lambda keys: None,
    ) -> None:
        if bool(file) == bool(url):
            raise ValueError("a JWKS source needs exactly one of a file and a URL")
        self._file, self._url = file, url
        self._where = file or url
        self._refresh, self._cooldown, self._timeout = refresh, cooldown, timeout
        self._clock = clock
        self._on_change = on_change
        self.current: KeySet = NO_KEYS
        self._wake = asyncio.Event()
        self._last_fetch = -float("inf")
        self.fetches = {"ok": 0, "failed": 0}
        self.loaded = asyncio.Event()

    def request_refresh(self) -> None:
        """A token named a kid the set lacks: fetch again soon, unless one was fetched within the cooldown."""
        if self._clock() - self._last_fetch >= self._cooldown:
            self._wake.set()

    async def run(self) -> None:
        async with aiohttp.ClientSession() as session:
            failures = 0
            while True:
                ok = await self.fetch_once(session)
                failures = 0 if ok else failures + 1
                self._wake.clear()
                # After a failure, try again sooner (1 s, 2 s, 4 s, ... up to `refresh`): a sidecar
                # that started while the issuer was down must not wait a whole refresh to be ready.
                wait = self._refresh if ok else min(self._refresh, 2.0 ** (failures - 1))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
                # Never two fetches within the cooldown, however many unknown kids arrive.
                wait = self._last_fetch + self._cooldown - self._clock()
                if wait > 0:
                    await asyncio.sleep(wait)

    async def fetch_once(self, session: aiohttp.ClientSession | None = None) -> bool:
        """Fetch now; False if the fetch failed (the keys in use stay)."""
        self._last_fetch = self._clock()
        generation = self.current.generation + 1
        try:
            document = await (self._read_file() if self._file else self._get(session))
            keys = from_jwks(document, generation, self._where)
        except JwksError as e:
            self._failed(str(e))
            return False
        self.fetches["ok"] += 1
        if keys.keys.keys() == self.current.keys.keys() and self.current.state == "ok" and self._same(keys):
            return True
        self.current = keys
        log.info("JWKS: %s", keys.detail)
        self.loaded.set()
        self._on_change(keys)
        return True

    def _same(self, keys: KeySet) -> bool:
        return all(keys.keys[k].as_dict() == self.current.keys[k].as_dict() for k in keys.keys)

    def _failed(self, why: str) -> None:
        self.fetches["failed"] += 1
        old = self.current
        if old.keys:
            self.current = KeySet(old.keys, old.generation, "stale", f"keeping the last good set: {why}")
        else:
            self.current = KeySet(old.keys, old.generation, "none", why)
        log.warning("JWKS: %s", self.current.detail)
        self._on_change(self.current)

    async def _read_file(self) -> bytes:
        try:
            return await asyncio.to_thread(pathlib.Path(self._file).read_bytes)
        except OSError as e:
            raise JwksError(f"{self._file}: cannot read: {e.strerror or e}") from None

    async def _get(self, session: aiohttp.ClientSession | None) -> bytes:
        assert session is not None
        try:
            async with session.get(
                self._url, timeout=aiohttp.ClientTimeout(total=self._timeout), allow_redirects=False
            ) as r:
                if r.status != 200:
                    raise JwksError(f"{self._url}: answered HTTP {r.status}")
                body = await r.content.read(MAX_JWKS_BYTES + 1)
                return body
        except (aiohttp.ClientError, TimeoutError) as e:
            raise JwksError(f"{self._url}: {type(e).__name__}: {e}") from None
