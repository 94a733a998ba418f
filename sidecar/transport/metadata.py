"""Which request metadata crosses the sidecar. Pure: no grpc import.

HTTP/2 pseudo-headers, connection-level headers (RFC 9110 section 7.6.1,
RFC 9113 section 8.2.2) and the gRPC transport's own headers belong to one hop:
the upstream call sets its own.
"""

from __future__ import annotations

from collections.abc import Iterable

from sidecar.core.call import Metadata, MetadataValue

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
        "te",
        "host",
        "content-type",
        "content-length",
        "user-agent",
        "grpc-timeout",
        "grpc-encoding",
        "grpc-accept-encoding",
        "grpc-message-type",
    }
)


def forwardable(metadata: Iterable[tuple[str, MetadataValue]]) -> Metadata:
    return [(k, v) for k, v in metadata if k not in HOP_BY_HOP and not k.startswith(":")]
