"""The calls the sidecar makes to the model on its own behalf from the relay (a batch): over the model
link's grpc channel, since the relay's model connection carries its clients' streams 1:1.

The relay's chain hands such a call here (relay/batched.py's terminal); its exchange carries the
request bytes and gets the response and the model's headers back. Knows nothing about batching.
"""

from __future__ import annotations

from sidecar.core.call import Call, Outcome
from sidecar.filters.chain import Next
from sidecar.ingress.relay.batched import OwnInfer
from sidecar.model.grpc_link import GrpcModelLink
from sidecar.transport import grpc_forward as forward


def over(link: GrpcModelLink) -> Next:
    async def send(call: Call) -> Outcome:
        exchange = call.exchange
        assert isinstance(exchange, OwnInfer)
        timeout = call.deadline.remaining() if call.deadline else None
        result = await forward.unary(link.raw_unary(call.method), exchange.request, call.metadata, timeout)
        exchange.response = result.response
        exchange.initial = list(result.initial_metadata or [])
        return result.outcome

    return send
