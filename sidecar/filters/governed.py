"""What the governance filters share: which calls they leave alone, and how a refusal reads.

Health and probe calls (grpc.health.v1, OIP ServerLive/ServerReady/ModelReady) are exempt:
a kubelet or a load balancer has no token and must never be rate limited or queued.
"""

from __future__ import annotations

import math
from typing import Final

from sidecar.core.call import Outcome
from sidecar.core.status import Code
from sidecar.oip import contract

EXEMPT: Final = frozenset(
    {
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        contract.SERVER_LIVE,
        contract.SERVER_READY,
        contract.MODEL_READY,
    }
)
# gRPC's retry throttling pushback (gRFC A6): how long the client should wait before retrying.
PUSHBACK: Final = "grpc-retry-pushback-ms"


def exhausted(message: str, retry_after: float) -> Outcome:
    """RESOURCE_EXHAUSTED with the pushback trailer: never UNAVAILABLE, which clients retry at once."""
    millis = max(1, math.ceil(retry_after * 1000))
    return Outcome(Code.RESOURCE_EXHAUSTED, message, [(PUSHBACK, str(millis))])
