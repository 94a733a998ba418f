"""Which build of the wire machinery this process runs: the pure-Python modules, or a compiled twin.

Set to anything but the empty string, SIDECAR_NO_EXTENSIONS (core/env.py) forces the pure
modules even where a compiled build is installed, as AIOHTTP_NO_EXTENSIONS does for aiohttp; it
is read once, at import. No compiled twin is built yet (the relay's hot path, issue 16), so the
pure modules run either way, and `describe` says why. Knows nothing about frames or streams.
"""

from __future__ import annotations

import os
from typing import Final

from sidecar.core import env

NO_EXTENSIONS: Final = bool(os.environ.get(env.NO_EXTENSIONS))
COMPILED: Final = False  # the compiled twin is imported and runs


def describe() -> str:
    """The build that runs, and why, for the start-up log."""
    if COMPILED:
        return "compiled"
    if NO_EXTENSIONS:
        return f"pure Python ({env.NO_EXTENSIONS} is set)"
    return "pure Python (no compiled build is installed)"
