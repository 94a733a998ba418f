"""Filter that counts calls as they arrive, so the drain can tell when callers have stopped coming.

One integer increment per call; it reads no clock (the drain does, when it looks at the count).
"""

from __future__ import annotations

from sidecar.core.call import Call, Outcome
from sidecar.filters.chain import Next


class ArrivalCounter:
    def __init__(self) -> None:
        self.count = 0

    async def __call__(self, call: Call, next: Next) -> Outcome:
        self.count += 1
        return await next(call)
