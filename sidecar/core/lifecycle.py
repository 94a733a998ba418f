"""Start and stop paired: parts started in order, stopped in reverse. Knows nothing of what the parts are.

As aiohttp's runner keeps each cleanup context's set-up and tear-down together, a part is its
start and its stop side by side, and the composition root lists the parts once, in dependency
order. A part whose start was reached is stopped even if that start failed half-way (a listener
bound, the next not), so every stop must accept a part that never fully started.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

log = logging.getLogger("sidecar")

Step = Callable[[], Awaitable[None]]


async def nothing() -> None:
    """The start or stop of a part that has none (built ready, or nothing to release)."""


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    start: Step = nothing
    stop: Step = nothing


class Lifecycle:
    def __init__(self, parts: Iterable[Part]) -> None:
        self._parts = tuple(parts)
        self._reached: list[Part] = []

    @property
    def names(self) -> tuple[str, ...]:
        """The parts in start order."""
        return tuple(p.name for p in self._parts)

    async def start(self) -> None:
        """Start each part in order; the first that raises stops the start, and its error propagates."""
        for part in self._parts:
            self._reached.append(part)
            await part.start()

    async def stop(self) -> None:
        """Stop every part whose start was reached, the last first, each once. A stop that raises is
        logged and the rest still stop; the first such error is raised at the end."""
        first: BaseException | None = None
        while self._reached:
            part = self._reached.pop()
            try:
                await part.stop()
            except Exception as e:  # the parts below must still be released
                log.error("stopping %s failed: %r", part.name, e, exc_info=e)
                first = first or e
        if first is not None:
            raise first
