"""ModelInfer calls the batcher takes on the relay: held whole before the chain, answered by the relay itself.

When a policy batches, a relayed ModelInfer's chain starts once its request message is held
whole (calls.py's `held`, as the model-name wait does; up to HELD_REQUEST bytes, past which the
call relays unbatched). Its exchange (RelayedCall, through BatchSeam) then offers the batching
seam (sidecar/batching/seam.py): the request; `waits`, which takes the stream from the model
(streams.py `take`: the connection's other streams go on while it waits in a batch); and
`respond_infer`, whose reply `answer` sends once the chain is over, as relay/health.py answers
grpc.health.v1. The batch itself is a call of the sidecar's own (OwnInfer), which the relay's
terminal hands to `own`, the model link's channel given at assembly (the relay imports no grpc);
a taken call that must go alone (its batch's reply could not be split) goes that way too. A
client's RST_STREAM cancels what the taken call's chain waits on, so its batch goes on without
it; its deadline is the batcher's. Knows nothing about frames' layout, HPACK state or sockets.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING, Final

from inference import grpc_service_pb2 as pb
from sidecar.batching.seam import NotHeld
from sidecar.core.call import Call, Metadata, Outcome
from sidecar.core.status import Code
from sidecar.filters.chain import Next
from sidecar.h2 import frames as f
from sidecar.h2 import hpack_encoder as he
from sidecar.ingress.relay.observer import NO_OBSERVER, CallObserver

if TYPE_CHECKING:
    from sidecar.ingress.relay.calls import RelayedCall

# A request held whole for the batcher: at most this long with its prefix (one default-sized
# frame). More would wait on flow-control credit the relay does not give while it holds a call.
HELD_REQUEST: Final = 16384
# The longest reply the relay sends itself: the initial stream window (RFC 9113 6.9.2). The relay
# keeps no send window for the streams it answers, so a longer reply could overrun the client's.
ANSWERED_REPLY: Final = 65535
# What `whole_request` says while more of the message may still come.
NEED_MORE: Final = b"\x00need more"


def whole_request(data: bytes, final: bool) -> bytes | None:
    """The request message (without its prefix) if `data`, a stream's first DATA bytes, holds it
    whole; NEED_MORE if it may yet; None if it will not be held (too long, compressed, cut short)."""
    if len(data) < 5:
        return None if final else NEED_MORE
    length = int.from_bytes(data[1:5], "big")
    if data[0] != 0 or 5 + length > HELD_REQUEST:
        return None
    if len(data) >= 5 + length:
        return data[5 : 5 + length]
    return None if final else NEED_MORE


@dataclasses.dataclass(slots=True)
class OwnInfer:
    """The exchange of a ModelInfer the sidecar makes itself (a batch): the request, then the answer."""

    request: bytes
    response: bytes | None = None
    initial: Metadata = dataclasses.field(default_factory=list)

    def infer_response(self) -> tuple[pb.ModelInferResponse, Metadata]:
        assert self.response is not None
        return pb.ModelInferResponse.FromString(self.response), self.initial


class BatchSeam:
    """The batching seam on a relayed call (RelayedCall's slots hold its state)."""

    __slots__ = ()

    request: bytes | None  # the request message held whole, if it was
    taken: bool  # answered here, not relayed
    reply: tuple[bytes, Metadata] | None  # the reply to send once the chain is over
    waiting: asyncio.Future[object] | None  # what the chain waits on, while it does
    observer: CallObserver
    sid: int

    def infer_request(self) -> pb.ModelInferRequest:
        if self.request is None:
            raise NotHeld(f"ModelInfer: request not held whole (over {HELD_REQUEST} bytes, or compressed)")
        return pb.ModelInferRequest.FromString(self.request)

    def detached(self, request: pb.ModelInferRequest) -> OwnInfer:
        return OwnInfer(request.SerializeToString())

    def infer_response(self) -> tuple[pb.ModelInferResponse, Metadata]:
        raise TypeError("a client's call has no response of the sidecar's own")

    def waits(self) -> None:
        """The call waits in a batch: take it from the model, so the connection goes on."""
        st = self._relayed()
        if st.taken or st.request is None:
            return
        st.taken = True
        st.calls.take(st)
        if st.observer is not NO_OBSERVER:
            message = st.request
            st.observer.on_message(st, True, b"\x00" + len(message).to_bytes(4, "big") + message)

    async def respond_infer(self, response: pb.ModelInferResponse, initial: Metadata) -> None:
        self._relayed().reply = (response.SerializeToString(), list(initial))

    def _relayed(self) -> RelayedCall:
        from sidecar.ingress.relay.calls import RelayedCall

        assert isinstance(self, RelayedCall)
        return self


def answer(st: RelayedCall, result: Outcome, max_frame: int) -> tuple[bytes, int]:
    """The frames ending taken call `st` with `result` (its reply first, if it has one), and their
    DATA bytes."""
    reply, st.reply = st.reply, None
    if reply is None or not result.ok:
        return f.header_block_frames(st.sid, he.trailers_only(result), True, max_frame), 0
    message, initial = reply
    if 5 + len(message) > ANSWERED_REPLY:
        too_long = Outcome(
            Code.RESOURCE_EXHAUSTED,
            f"ModelInfer: the batched reply for this call is {len(message)} bytes; the relay answers"
            f" at most {ANSWERED_REPLY - 5} itself (--dataplane grpcio has no such bound)",
        )
        return f.header_block_frames(st.sid, he.trailers_only(too_long), True, max_frame), 0
    framed = b"\x00" + len(message).to_bytes(4, "big") + message
    if st.observer is not NO_OBSERVER:
        st.observer.on_message(st, False, framed)
    headers = he.response_headers() + he.literal_fields(initial)
    out = [f.header_block_frames(st.sid, headers, False, max_frame)]
    for at in range(0, len(framed), max_frame):
        out.append(f.frame(f.DATA, 0, st.sid, framed[at : at + max_frame]))
    out.append(f.header_block_frames(st.sid, he.trailers_only(result, after_headers=True), True, max_frame))
    return b"".join(out), len(framed)


def terminal(forward: Next, own: Next) -> Next:
    """The relay chain's terminal: a client's call goes to the model on its stream (`forward`), or,
    taken here, over `own` with the model's reply kept for `answer`; the sidecar's own calls go
    over `own`."""
    from sidecar.ingress.relay.calls import RelayedCall

    async def send(call: Call) -> Outcome:
        st = call.exchange
        if isinstance(st, OwnInfer):
            return await own(call)
        if isinstance(st, RelayedCall) and st.taken and st.request is not None:
            alone = OwnInfer(st.request)
            result = await own(dataclasses.replace(call, exchange=alone))
            if result.ok and alone.response is not None:
                st.reply = (alone.response, alone.initial)
            return result
        return await forward(call)

    return send
