"""Linux inotify on one directory, as a callback from the event loop (ctypes; no dependency).

The policy file watcher's fast path: a Kubernetes ConfigMap volume swaps its `..data` symlink
in the directory, and an editor renames over the file, so the directory is watched, not the
file. Events are only a hint to look again (their names are not parsed); where inotify is not
there (not Linux, no more watches) `start` returns False and the hash poll does it all.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
from collections.abc import Callable
from typing import Final

_IN_NONBLOCK: Final = 0o4000
_IN_CLOEXEC: Final = 0o2000000
# IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
_MASK: Final = 0x002 | 0x004 | 0x008 | 0x040 | 0x080 | 0x100 | 0x200


class DirectoryWatch:
    def __init__(self, directory: str, on_event: Callable[[], None]) -> None:
        self._directory = directory
        self._on_event = on_event
        self._fd = -1

    def start(self) -> bool:
        name = ctypes.util.find_library("c")
        if name is None:
            return False
        try:
            libc = ctypes.CDLL(name, use_errno=True)
            fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        except (OSError, AttributeError):
            return False
        if fd < 0:
            return False
        if libc.inotify_add_watch(fd, os.fsencode(self._directory), _MASK) < 0:
            os.close(fd)
            return False
        self._fd = fd
        asyncio.get_running_loop().add_reader(fd, self._readable)
        return True

    def _readable(self) -> None:
        try:
            while os.read(self._fd, 65536):
                pass
        except BlockingIOError:
            pass
        except OSError:
            return
        self._on_event()

    def stop(self) -> None:
        if self._fd >= 0:
            asyncio.get_running_loop().remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
