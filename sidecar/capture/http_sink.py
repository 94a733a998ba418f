"""The HTTP sink: each event POSTed in CloudEvents' binary mode (as KServe's logger posts them) over one
pooled aiohttp session. A batch goes out over at most `connections` requests at once.

A 2xx is delivered; 408, 429, a 5xx, a refused connection or a timeout is tried again; any other
4xx is the collector refusing the event for good. Knows nothing about queues or retries' timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiohttp

from sidecar.capture.dispatch import Delivery
from sidecar.capture.events import CloudEvent, http_headers
from sidecar.capture.policy import HttpSinkSettings

_AGAIN = frozenset({408, 429})


class HttpSink:
    name = "http"

    def __init__(self, settings: HttpSinkSettings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        s = self._settings
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=s.connections, limit_per_host=s.connections),
            timeout=aiohttp.ClientTimeout(total=s.timeout),
            # The collector's answer is read and dropped: no cookies kept, nothing decompressed.
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            skip_auto_headers=("User-Agent",),
        )

    async def send(self, events: Sequence[CloudEvent]) -> Delivery:
        assert self._session is not None
        session, url = self._session, self._settings.url
        outcome: list[str] = ["again"] * len(events)
        next_index = 0

        async def worker() -> None:
            nonlocal next_index
            while next_index < len(events):
                i = next_index
                next_index += 1
                outcome[i] = await self._post(session, url, events[i])

        workers = min(self._settings.connections, len(events))
        await asyncio.gather(*(worker() for _ in range(workers)))
        return Delivery(
            retry=[i for i, o in enumerate(outcome) if o == "again"],
            rejected=sum(1 for o in outcome if o == "rejected"),
        )

    @staticmethod
    async def _post(session: aiohttp.ClientSession, url: str, event: CloudEvent) -> str:
        try:
            async with session.post(url, data=event.data, headers=http_headers(event)) as response:
                await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError):
            return "again"
        if 200 <= status < 300:
            return "sent"
        if status >= 500 or status in _AGAIN:
            return "again"
        return "rejected"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
