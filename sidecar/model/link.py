"""What the sidecar needs from the link to its model, whatever protocol the model speaks."""

from __future__ import annotations

from typing import Protocol, TypeVar

from google.protobuf.message import Message

from sidecar.core.call import Metadata
from sidecar.core.status import Code

M = TypeVar("M", bound=Message)


class ModelLink(Protocol):
    address: str

    async def call(
        self,
        method: str,
        request: Message,
        response_type: type[M],
        *,
        timeout: float | None,
        metadata: Metadata | None = None,
    ) -> tuple[M, Metadata, Metadata]:
        """One OIP call by its gRPC method path: (response, initial metadata, trailing metadata).

        Raises SidecarError with the status the model answered.
        """
        ...

    async def health(self, timeout: float) -> tuple[bool, str, Code]:
        """The model's own health service: (serving, detail, code); UNIMPLEMENTED when it has none."""
        ...

    async def close(self, grace: float | None = None) -> None: ...
