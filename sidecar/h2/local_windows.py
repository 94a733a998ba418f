"""Flow control of the streams the relay answers itself (RFC 9113 6.9): their windows, and what waits.

A stream answered here (grpc.health.v1, a batched call) starts with the client's
SETTINGS_INITIAL_WINDOW_SIZE; a change of that setting moves every open window by the difference
(6.9.2), and the client's WINDOW_UPDATEs on the stream open it further. Frames whose DATA does
not fit wait, in order, until it does; whatever goes out is handed to `send`. The DATA sent from
here is a debt on the connection's window: the client's connection credit pays it back before
any goes on to the model (`repaid`). Knows nothing about what the frames hold, the model, or the
layers above.
"""

from __future__ import annotations

from collections.abc import Callable

from sidecar.h2 import frames as f


class LocalWindows:
    __slots__ = ("_debt", "_initial", "_local", "_send", "_waiting", "_windows")

    def __init__(self, send: Callable[[bytes], None], local: set[int]) -> None:
        """`local`: the streams still answered here, the stream layer's own set (a window outlives
        its stream only while frames wait on it)."""
        self._send = send
        self._local = local
        self._initial = 65535
        self._windows: dict[int, int] = {}
        self._waiting: dict[int, list[tuple[bytes, int]]] = {}
        self._debt = 0  # DATA bytes sent from here the client has not credited back yet

    def repaid(self, increment: int) -> int:
        """The client's connection WINDOW_UPDATE of `increment`: what is left for the model once
        the DATA sent from here is paid back."""
        paid = min(increment, self._debt)
        self._debt -= paid
        return increment - paid

    def __len__(self) -> int:
        """The windows kept: streams answered here still open, or with frames waiting."""
        return len(self._windows)

    def open(self, sid: int) -> None:
        self._windows[sid] = self._initial

    def update(self, sid: int, increment: int) -> bool:
        """A WINDOW_UPDATE of stream `sid`; False if it is no stream of these."""
        window = self._windows.get(sid)
        if window is None:
            return False
        self._windows[sid] = min(window + increment, f.MAX_WINDOW)
        self._opened(sid)
        return True

    def initial(self, window: int) -> None:
        """The client's SETTINGS_INITIAL_WINDOW_SIZE: it applies to every open stream's window."""
        delta, self._initial = window - self._initial, window
        for sid in list(self._windows):
            self._windows[sid] += delta
            self._opened(sid)

    def answer(self, sid: int, frames: bytes, data_bytes: int) -> None:
        """Frames for stream `sid` holding `data_bytes` of DATA: sent, or, while its window is
        short, queued after any still waiting."""
        waiting = self._waiting.get(sid)
        if waiting is None:
            window = self._windows.get(sid, self._initial)
            if data_bytes <= window:
                self._windows[sid] = window - data_bytes
                self._debt += data_bytes
                self._send(frames)
                return
            self._windows[sid] = window
            waiting = self._waiting[sid] = []
        waiting.append((frames, data_bytes))

    def ended(self, sid: int) -> None:
        """The client ended stream `sid`: its window goes once nothing waits on it."""
        if sid not in self._waiting:
            self._windows.pop(sid, None)

    def forget(self, sid: int) -> None:
        """Stream `sid` was reset: nothing more goes on it."""
        self._windows.pop(sid, None)
        self._waiting.pop(sid, None)

    def clear(self) -> None:
        """The connection is closing: what waits goes nowhere."""
        self._waiting.clear()

    def _opened(self, sid: int) -> None:
        """Send what waits on stream `sid` as far as its window now allows."""
        waiting = self._waiting.get(sid)
        if waiting is None:
            return
        window = self._windows[sid]
        while waiting and waiting[0][1] <= window:
            frames, data_bytes = waiting.pop(0)
            window -= data_bytes
            self._debt += data_bytes
            self._send(frames)
        self._windows[sid] = window
        if not waiting:
            del self._waiting[sid]
            if sid not in self._local:
                del self._windows[sid]
