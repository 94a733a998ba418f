"""The seam between the sidecar and whatever moves gRPC bytes: a data plane starts, serves, drains.

The grpc.aio data plane implements it today; a frame-level HTTP/2 relay can
replace it without the composition root or the filters changing.
"""

from __future__ import annotations

from typing import Protocol


class GrpcDataplane(Protocol):
    @property
    def port(self) -> int:
        """The bound port (known after start)."""
        ...

    async def start(self) -> None: ...

    async def stop(self, grace: float) -> None:
        """Stop accepting, let in-flight calls finish for up to `grace` seconds, then cancel them."""
        ...
