"""One call crossing the sidecar, as every filter sees it, whatever the transport.

A Call carries what filters read and may change (method, metadata, deadline);
the transport that created it keeps its own per-call state in `exchange`,
which no filter touches. An Outcome is what the call ended with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from sidecar.core.deadline import Deadline
from sidecar.core.status import Code

MetadataValue = str | bytes
Metadata = list[tuple[str, MetadataValue]]
# A verified token's claims; the empty one for a call without a token.
Claims = Mapping[str, object]
NO_CLAIMS: Claims = MappingProxyType({})


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
    # Who is calling, once the identity filter decided (sidecar/filters/identity.py): the client id
    # (a token's claim, a header, or the peer's address), its class (a bounded label), its claims.
    client_id: str = ""
    client_class: str = ""
    claims: Claims = field(default_factory=lambda: NO_CLAIMS)
    # Which governance filter refused or held the call, and why, for the access log ("" if none).
    governance: str = ""


@dataclass(frozen=True, slots=True)
class Outcome:
    code: Code
    message: str = ""
    trailing_metadata: Metadata = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.code is Code.OK


OK = Outcome(Code.OK)


def grpc_peer(address: object) -> str:
    """A socket's peer address as grpc names it in `Call.peer`: ipv4:10.0.0.1:5000, ipv6:[::1]:5000."""
    if not isinstance(address, tuple) or len(address) < 2:
        return ""
    host, port = address[0], address[1]
    return f"ipv6:[{host}]:{port}" if ":" in str(host) else f"ipv4:{host}:{port}"
