"""A relay connection's timers: the preface deadline, then the idle check. Knows nothing of frames or sockets.

One timer at a time. From the client's connect (`preface()`), no preface within preface_timeout
calls `late()`; the preface in, `cancel()` ends that wait. From the model connection settled on
(`idle_checks()`), a check runs every idle_timeout / IDLE_CHECKS, and IDLE_CHECKS checks in a row
that find the connection not busy and no stream opened since the one before call `idle()`: a
connection goes between 1 and 1 + 1/IDLE_CHECKS of idle_timeout after its last stream. What
busy means and which stream came last are the owner's to say (`busy()`, `last_sid()`); what a
late or idle connection is told, and its closing, are the owner's too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

# Idle checks per idle_timeout: a connection goes between 1 and 1 + 1/IDLE_CHECKS of it after its last stream.
IDLE_CHECKS: Final = 4


class ConnectionTimers:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        preface_timeout: float,
        idle_timeout: float,
        late: Callable[[], None],
        idle: Callable[[], None],
        busy: Callable[[], bool],
        last_sid: Callable[[], int],
    ) -> None:
        self._loop = loop
        self._preface_timeout = preface_timeout
        self._idle_timeout = idle_timeout
        self._late = late
        self._idle = idle
        self._busy = busy
        self._last_sid = last_sid
        self._timer: asyncio.TimerHandle | None = None  # the preface's deadline, then the idle check
        self._idle_sid = 0  # the last stream id the idle check saw
        self._idle_checks = 0  # checks in a row that found no stream and no new one
        self._stopped = False

    def preface(self) -> None:
        self._timer = self._loop.call_later(self._preface_timeout, self._preface_late)

    def idle_checks(self) -> None:
        self._timer = self._loop.call_later(self._idle_timeout / IDLE_CHECKS, self._idle_check)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def stop(self) -> None:
        """No timer runs after this: its connection is closed."""
        self._stopped = True
        self.cancel()

    def _preface_late(self) -> None:
        self._timer = None
        self._late()

    def _idle_check(self) -> None:
        self._timer = None
        if self._stopped:
            return
        sid = self._last_sid()
        if self._busy() or sid != self._idle_sid:
            self._idle_sid, self._idle_checks = sid, 0
        else:
            self._idle_checks += 1
            if self._idle_checks >= IDLE_CHECKS:
                self._idle()
                return
        self.idle_checks()
