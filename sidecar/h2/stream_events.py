"""The API between the relay's stream layer and the layer above: the Stream it keeps, and the events it tells.

The layer above (StreamEvents) hears of a relayed stream twice, its start and its end; that is
the API a compiled twin of this layer keeps:
- `opened(stream, headers, end_stream)`: a client opened `stream` (built by `new_stream`, of the
  layer above's class) with these decoded request headers. True relays it, False answers it
  here, StreamError resets it unseen. A relayed stream awaits its verdict, the client's later
  frames waiting (header blocks reach the model in the client's order), until the layer above
  calls `admit` (HEADERS to the model, with fields added or replaced) or `refuse` (a reply from
  here); usually within `opened`.
  A verdict that needs the stream's first request bytes (the model a call names, read from its
  message) waits for them: the layer above calls `await_data(stream)` in `opened`, is told
  `held(stream)` after each read while they may still come, and looks with `held_data`, which
  takes nothing (the frames are read on as they would have been). `held` returns whether it
  still waits; a verdict given within `held` needs no resumed read, as within `opened`.
- `trailers(stream, headers)` or `reset(stream, code, by_client)`: it ended. Endings the model
  sent are told after the read's writes are out, so the layer above adds no latency.
In between, its DATA passes with no call up: the reader counts its messages into the stream's
`request_bytes` and `response_bytes`. That is the one message path. A stream marked with
`observe` before its admission has each message handed up whole (`message`, copied once) as
its last byte passes, the frames still passing as they are: payload capture hooks in there,
and streams not observed pay nothing. Holding or rewriting messages (dynamic batching, an
egress proxy re-framing per upstream) extends the same path: an intercepting counter in place
of the observer, and the reader leaving that stream's DATA out of its spans.

Streams answered here (`opened` returned False: grpc.health.v1) are never seen by the model;
their DATA and end go up (`data`, `ended`), the replies come down (`answer`). A stream awaiting
its verdict can also be taken (`take`: a batched call), then goes as those do until the layer
above ends it (`answered`); it counts as in flight for `idle` and is handed back by `close`. Knows nothing
about calls, filters or sockets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

from sidecar.core.call import MetadataValue
from sidecar.h2 import build
from sidecar.h2.hpack_decoder import Headers

if TYPE_CHECKING:
    from sidecar.h2 import messages
else:
    messages = build.twin("messages")  # compiled or pure: build.py chooses

Fields = Sequence[tuple[str, MetadataValue]]  # appended to a block as literals


class Stream:
    """A stream relayed to the model, as this layer keeps it; the layer above subclasses it."""

    __slots__ = ("block", "changed", "end_stream", "headers", "replied", "request_bytes", "response_bytes",
                 "sid")  # fmt: skip

    def __init__(self, sid: int) -> None:
        self.sid = sid
        # Until the verdict: the client's block, what it decoded to, whether it changed the table.
        self.block = b""
        self.headers: Headers = []
        self.changed = False
        self.end_stream = False
        self.replied = False  # the model sent response headers
        self.request_bytes: messages.MessageBytes = messages.MessageBytes()
        self.response_bytes: messages.MessageBytes = messages.MessageBytes()


S = TypeVar("S", bound=Stream)
S_contra = TypeVar("S_contra", bound=Stream, contravariant=True)


class StreamEvents(Protocol[S_contra]):
    """What this layer tells the layer above (the module docstring says when)."""

    def opened(self, stream: S_contra, headers: Headers, end_stream: bool) -> bool: ...
    def trailers(self, stream: S_contra, headers: Headers) -> None: ...
    def reset(self, stream: S_contra, code: int, by_client: bool) -> None: ...
    def message(self, stream: S_contra, from_client: bool, message: bytes) -> None: ...
    def held(self, stream: S_contra) -> bool:
        """More of the stream awaiting its verdict (see `await_data`) may be held; whether it still waits."""
        ...

    def data(self, sid: int, payload: bytes) -> None: ...
    def ended(self, sid: int, reset: bool) -> bool:
        """The client ended (reset: reset) a stream answered here; whether it still is (an open Watch)."""
        ...
