"""What a transport's exchange offers the batcher for a unary ModelInfer call: its request, word that
it waits in a batch, a way to answer it without the model, and an exchange of the transport's own
kind for a call the sidecar makes itself (the batch), whose answer is read back. Knows nothing
about transports.
"""

from __future__ import annotations

from typing import Protocol, cast

from inference import grpc_service_pb2 as pb
from sidecar.core.call import Metadata


class NotHeld(Exception):
    """The transport did not hold the call's request whole (the relay holds up to a bound): it goes
    to the model unbatched, counted as not_batchable."""


class Batchable(Protocol):
    def infer_request(self) -> pb.ModelInferRequest:
        """The call's request; raises NotHeld when the transport does not have it whole, any other
        exception when it is not a valid one."""
        ...

    def detached(self, request: pb.ModelInferRequest) -> Batchable:
        """An exchange carrying `request` for a call with no caller behind it."""
        ...

    def infer_response(self) -> tuple[pb.ModelInferResponse, Metadata]:
        """A detached exchange's response after its call ended OK, and the headers the model sent."""
        ...

    def waits(self) -> None:
        """The call now waits in a batch: a transport that holds other work behind an undecided call
        (the relay holds a connection's later streams) lets it go on; others do nothing."""
        ...

    async def respond_infer(self, response: pb.ModelInferResponse, initial: Metadata) -> None:
        """Answer the caller with `response` (and the model's headers) as if the model had."""
        ...


def batchable(exchange: object) -> Batchable | None:
    """The exchange if its transport hands ModelInfer over, else None (an attribute look-up, not an
    isinstance() against the Protocol, which costs tens of microseconds)."""
    return cast(Batchable, exchange) if hasattr(exchange, "infer_request") else None
