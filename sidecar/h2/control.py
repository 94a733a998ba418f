"""A relayed connection's control plane: the SETTINGS both sides exchange through the relay, and the
client's budgets of control frames.

SETTINGS (RFC 9113 6.5). The relay sends its own first, the limits it holds the client to
(SETTINGS_MAX_CONCURRENT_STREAMS, SETTINGS_MAX_HEADER_LIST_SIZE); the model's reach the client
with the relay's limits in place of the model's where the relay's are lower, the rest as the model
sent them. The client acknowledges each in the order it got them: the ACK of the relay's own stops
here, the model's go on. The relay frames header blocks to the model at the model's new
SETTINGS_MAX_FRAME_SIZE only once the model has that ACK: a peer enforces its new settings from
then (grpc-core closes the connection on a larger frame before it), though 6.5.3 lets a sender
use them at once.

Budgets. RST_STREAM, PING, SETTINGS, empty DATA and malformed requests each have a budget per
window of an injected clock; past one, the connection ends GOAWAY(ENHANCE_YOUR_CALM), counted by
kind. Knows nothing about streams, sockets or the layers above.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from sidecar.h2 import frames as f
from sidecar.h2.limits import Budget, Limits

_OWN = -1  # in the queue of SETTINGS the client has to acknowledge: the relay's own


class SettingsSync:
    __slots__ = ("_unacked", "max_frame_to_client", "max_frame_to_model", "own")

    def __init__(self, limits: Limits) -> None:
        self.own = {
            f.MAX_CONCURRENT_STREAMS: limits.max_concurrent_streams,
            f.MAX_HEADER_LIST_SIZE: limits.max_header_list_size,
        }
        # Each SETTINGS the client has not acknowledged yet, in the order it gets them: _OWN, or
        # the model's SETTINGS_MAX_FRAME_SIZE (0: it sets none).
        self._unacked: deque[int] = deque()
        self.max_frame_to_client = f.DEFAULT_MAX_FRAME  # the client's setting
        self.max_frame_to_model = f.DEFAULT_MAX_FRAME  # the model's, once it has the ACK

    def own_frame(self) -> bytes:
        """The relay's own SETTINGS, the first frame the client gets."""
        self._unacked.append(_OWN)
        return f.settings_frame(self.own)

    def from_model(self, raw: bytes, values: dict[int, int], frame_size: int | None) -> bytes:
        """The frame the client gets for the model's SETTINGS (`raw`, holding `values`)."""
        self._unacked.append(frame_size or 0)
        own = self.own
        if any(k in own for k in values):
            return f.settings_frame({k: min(v, own[k]) if k in own else v for k, v in values.items()})
        return raw

    def client_ack(self) -> bool:
        """The client acknowledged the oldest SETTINGS it had; True if they were the model's (the
        ACK goes on to it)."""
        acked = self._unacked.popleft() if self._unacked else 0
        if acked == _OWN:
            return False
        if acked:
            self.max_frame_to_model = acked
        return True


class ControlBudgets:
    __slots__ = ("_budgets", "_clock")

    def __init__(self, limits: Limits, clock: Callable[[], float]) -> None:
        self._clock = clock
        control = limits.control_window
        self._budgets = {
            "rapid_reset": (Budget(limits.reset_budget, limits.reset_window), "RST_STREAM frames"),
            "ping_flood": (Budget(limits.ping_budget, control), "PING frames"),
            "settings_flood": (Budget(limits.settings_budget, control), "SETTINGS frames"),
            "empty_frames": (Budget(limits.empty_frame_budget, control), "empty DATA frames"),
            "malformed_streams": (Budget(limits.malformed_stream_budget, control), "malformed requests"),
        }

    def spend(self, kind: str) -> None:
        """One more frame of `kind`; past its budget, ConnectionError_(ENHANCE_YOUR_CALM) of that kind."""
        budget, what = self._budgets[kind]
        if not budget.spend(self._clock()):
            raise f.calm(f"more than {budget.limit} {what} in {budget.seconds:g}s", kind)
