"""gRPC ingress for a model that speaks REST: OIP calls are parsed and made through the model link.

Unlike passthrough this parses protobuf, so only the contract's methods
exist: each unary OIP call becomes one link call; ModelStreamInfer answers
each request of the stream in order with ModelInfer (errors in-band, as
Triton does); anything else is UNIMPLEMENTED naming why.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from inference import grpc_service_pb2 as pb
from sidecar.core.call import Call, Outcome
from sidecar.core.errors import SidecarError
from sidecar.core.status import Code
from sidecar.model.link import ModelLink
from sidecar.oip import contract
from sidecar.transport.grpc_server import StreamExchange, UnaryExchange


class Transcoder:
    def __init__(self, link: ModelLink) -> None:
        self._link = link

    async def unary(self, call: Call) -> Outcome:
        exchange = call.exchange
        assert isinstance(exchange, UnaryExchange)
        types = contract.MESSAGES.get(call.method)
        if types is None or call.method == contract.MODEL_STREAM_INFER:
            return _unimplemented(call.method)
        request_type, response_type = types
        try:
            request = request_type.FromString(exchange.request)
        except DecodeError as e:
            return Outcome(Code.INVALID_ARGUMENT, f"{call.method}: the request is not a valid message: {e}")
        timeout = call.deadline.remaining() if call.deadline else None
        try:
            response, _, trailing = await self._link.call(
                call.method, request, response_type, timeout=timeout, metadata=call.metadata
            )
        except SidecarError as e:
            return Outcome(e.code, e.message)
        exchange.respond(response.SerializeToString())
        return Outcome(Code.OK, "", trailing)

    async def streaming(self, call: Call) -> Outcome:
        exchange = call.exchange
        assert isinstance(exchange, StreamExchange)
        if call.method != contract.MODEL_STREAM_INFER:
            return _unimplemented(call.method)
        async for raw in exchange.requests:
            answer = pb.ModelStreamInferResponse()
            try:
                request = pb.ModelInferRequest.FromString(raw)
                timeout = call.deadline.remaining() if call.deadline else None
                response, _, _ = await self._link.call(
                    contract.MODEL_INFER,
                    request,
                    pb.ModelInferResponse,
                    timeout=timeout,
                    metadata=call.metadata,
                )
                answer.infer_response.CopyFrom(response)
            except DecodeError as e:
                answer.error_message = f"a request is not a valid ModelInferRequest: {e}"
            except SidecarError as e:
                answer.error_message = e.message
            message = answer.SerializeToString()
            await exchange.context.write(message)
            exchange.sent(message)
        return Outcome(Code.OK)


def _unimplemented(method: str) -> Outcome:
    return Outcome(
        Code.UNIMPLEMENTED,
        f"{method}: the model speaks OIP REST; only the OIP calls can be transcoded to it",
    )
