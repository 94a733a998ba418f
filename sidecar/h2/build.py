"""Which build of the wire machinery runs: the compiled twins, or the pure-Python modules they twin.

A module in TWINS (`sidecar/h2/NAME.py`) has a compiled twin, `_NAME.pyx` beside it, built by
setup.py into the extension `sidecar.h2._NAME` with the same API. The pure module is the
reference and the fallback. `twin(NAME)` is the module to run, chosen here and only here, once
for every twin: the compiled build runs whole or not at all (its modules cimport one another, so
one stale twin would run inside another), and only when every twin
- is wanted: SIDECAR_NO_EXTENSIONS (core/env.py), set to anything but the empty string, forces
  the pure modules, as AIOHTTP_NO_EXTENSIONS does for aiohttp (read once, at import);
- imports: it is not there where no C compiler was at install, or in a tree never built;
- was built from the sources present: setup.py compiles into each twin the SHA-256 of its .pyx,
  its .pxd and its pure twin, and a file beside the pure module that no longer matches (an edit
  since the build, in an editable install) means the build would silently run in place of the
  edit. Then the pure modules run and `choice().loud` asks the start-up log for a warning naming
  the files and the command that rebuilds. Rebuilding here instead would need a compiler and
  Cython at run time, seconds at start-up and a writable package (an image has none); the pure
  module is always right, only slower. A source file not present (an image drops them) is not
  checked.

The choice is made at the first `twin`, `choice` or `describe`. A compiled twin may import only
modules that choose no twin (limits, frames, its own pure module), or choosing would import
itself. docs/compiled-core.md has the whole story. Knows nothing about frames or streams.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import pathlib
from dataclasses import dataclass
from types import ModuleType
from typing import Final

from sidecar.core import env

NO_EXTENSIONS: Final = bool(os.environ.get(env.NO_EXTENSIONS))
# The pure modules of sidecar/h2 that have a compiled twin (_NAME.pyx beside NAME.py).
TWINS: Final = ("messages", "grpc_headers")
# In a source tree (setup.py beside sidecar/), this rebuilds the twins in place.
REBUILD: Final = "bash scripts/build-extensions.sh"


@dataclass(frozen=True, slots=True)
class Choice:
    compiled: bool
    reason: str  # why this build runs, for the start-up log
    loud: bool = False  # a build is there but cannot run: the log warns
    stale: tuple[str, ...] = ()  # sources edited since the build


_choice: Choice | None = None
_modules: dict[str, ModuleType] = {}


def twin(name: str) -> ModuleType:
    """The module to run for sidecar.h2.NAME: its compiled twin or itself, as `choice()` says."""
    module = _modules.get(name)
    if module is None:
        if name not in TWINS:
            raise ValueError(f"sidecar.h2.{name} has no compiled twin (build.TWINS: {', '.join(TWINS)})")
        prefix = "_" if choice().compiled else ""
        module = _modules[name] = importlib.import_module(f"{__package__}.{prefix}{name}")
    return module


def choice() -> Choice:
    """Which build runs, decided once."""
    global _choice
    if _choice is None:
        _choice = _choose()
    return _choice


def describe() -> str:
    """The build that runs, and why, for the start-up log."""
    c = choice()
    return f"{'compiled' if c.compiled else 'pure Python'} ({c.reason})"


def _choose() -> Choice:
    if NO_EXTENSIONS:
        return Choice(False, f"{env.NO_EXTENSIONS} is set")
    built: list[ModuleType] = []
    for name in TWINS:
        compiled = f"{__package__}._{name}"
        try:
            built.append(importlib.import_module(compiled))
        except ModuleNotFoundError as e:
            if e.name != compiled:
                return Choice(False, f"{compiled} does not import: {e}", loud=True)
            return Choice(False, f"no compiled build is installed: {compiled} is not built")
        except Exception as e:  # an extension for another Python, or a failing module body
            return Choice(False, f"{compiled} does not import: {type(e).__name__}: {e}", loud=True)
    stale: list[str] = []
    for name, module in zip(TWINS, built, strict=True):
        problem = _unbuilt_edits(name, module, stale)
        if problem:
            return Choice(False, problem, loud=True)
    if stale:
        return Choice(
            False,
            f"the compiled build is older than {', '.join(stale)}; it would run in place of the "
            f"edit, so it is not used: rebuild it ({_rebuild_hint()})",
            loud=True,
            stale=tuple(stale),
        )
    return Choice(True, ", ".join(m.__name__ for m in built))


def _unbuilt_edits(name: str, module: ModuleType, stale: list[str]) -> str:
    """Add to `stale` the sources of `module` whose files differ from what it was built from; a
    reason not to use it if it cannot say what that was."""
    spec = importlib.util.find_spec(f"{__package__}.{name}")
    if spec is None or spec.origin is None:
        return f"{__package__}.{name}, the pure twin of {module.__name__}, is not found"
    here = pathlib.Path(spec.origin).parent
    sources = str(getattr(module, "SOURCES", ""))
    if not sources:
        return (
            f"{module.__name__} carries no hashes of its sources (not built by setup.py): {_rebuild_hint()}"
        )
    for item in sources.split(","):
        file, _, digest = item.partition("=")
        path = here / file
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            stale.append(str(path))
    return ""


def _rebuild_hint() -> str:
    root = pathlib.Path(__file__).resolve().parents[2]
    if (root / "setup.py").is_file():
        return f"{REBUILD} in {root}, or pip install again"
    return "reinstall ai-sidecar"
