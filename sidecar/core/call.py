"""One call crossing the sidecar, as every filter sees it, whatever the transport.

A Call carries what filters read and may change (method, metadata, deadline);
the transport that created it keeps its own per-call state in `exchange`,
which no filter touches. An Outcome is what the call ended with.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sidecar.core.deadline import Deadline
from sidecar.core.status import Code

MetadataValue = str | bytes
Metadata = list[tuple[str, MetadataValue]]


@dataclass(slots=True)
class Call:
    # gRPC method path, e.g. "/inference.GRPCInferenceService/ModelInfer";
    # REST calls carry the contract method they are transcoded to.
    method: str
    # Request metadata (lower-case keys) forwarded upstream; filters may append.
    metadata: Metadata
    deadline: Deadline | None
    # "grpc" or "http": the ingress protocol the call arrived on.
    protocol: str
    peer: str = ""
    # Model name where the transport knows it without parsing the payload.
    model: str = ""
    # Transport-owned per-call state; opaque to filters.
    exchange: object = None
    # Message bytes in each direction, where the transport counts them (access logs); None if not.
    request_bytes: int | None = None
    response_bytes: int | None = None
    # (host, port) this try goes to, where it is known per try (an egress attempt); else None.
    upstream: tuple[str, int] | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    code: Code
    message: str = ""
    trailing_metadata: Metadata = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.code is Code.OK


OK = Outcome(Code.OK)
