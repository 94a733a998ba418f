"""The policy document from a file: watched with inotify, and its hash polled, since events can be missed.

Reads the path each time (so a ConfigMap's symlink swap is followed to the new target), and
offers the document only when its bytes changed. A file that cannot be read or parsed is a
refused policy (logged, counted), and the active one stays. Knows nothing about what the
policy means.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import pathlib
from typing import Final

import yaml

from sidecar.governance.active import PolicyStore
from sidecar.policy.inotify import DirectoryWatch

log = logging.getLogger("sidecar.policy")

# Events come in bursts (a ConfigMap update is several renames): look once they settle.
_SETTLE: Final = 0.05
KIND: Final = "file"


def read_document(path: pathlib.Path) -> tuple[bytes, object]:
    """The file's bytes and its parsed YAML; OSError or yaml.YAMLError if it has neither."""
    data = path.read_bytes()
    return data, yaml.safe_load(data) or {}


class FilePolicySource:
    def __init__(self, path: str, store: PolicyStore, *, poll_interval: float) -> None:
        self._path = pathlib.Path(path)
        self._store = store
        self._poll = poll_interval
        self._digest = b""
        self._changed = asyncio.Event()
        self._watch = DirectoryWatch(os.path.dirname(os.path.abspath(path)), self._changed.set)
        self.watching = False

    def load(self) -> bool:
        """Read and offer the file now (at start-up: an invalid file then stops the start)."""
        try:
            data, doc = read_document(self._path)
        except OSError as e:
            return self._store.refuse(str(self._path), KIND, f"cannot read: {e.strerror or e}")
        except yaml.YAMLError as e:
            self._digest = b""
            return self._store.refuse(str(self._path), KIND, f"not valid YAML: {e}".replace("\n", " "))
        digest = hashlib.sha256(data).digest()
        if digest == self._digest:
            return True
        self._digest = digest
        return self._store.offer(doc, str(self._path), kind=KIND)

    async def run(self) -> None:
        self.watching = self._watch.start()
        try:
            while True:
                try:
                    await asyncio.wait_for(self._changed.wait(), self._poll)
                    await asyncio.sleep(_SETTLE)
                except TimeoutError:
                    pass
                self._changed.clear()
                await asyncio.to_thread(lambda: None)  # let a writer in another thread finish its rename
                self.load()
        finally:
            self._watch.stop()
