"""The compiled twins (each `_name.pyx` beside its pure `name.py` under sidecar/), built as C extensions.

Everything else about the package is in pyproject.toml. This adds only what pyproject cannot say:
- every `_name.pyx` under sidecar/ becomes the extension `sidecar...._name`, compiled with -O2 and
  Cython's default bounds checks, carrying the SHA-256 of its sources and of its pure twin
  (`SIDECAR_SOURCES`), which sidecar/h2/build.py checks at import against the files present, so
  that a stale build never runs in place of an edited source;
- where it cannot be built (no C compiler, no Python headers, Cython missing in an offline build
  without isolation) or SIDECAR_NO_EXTENSIONS is set at build time, the install goes on without
  it, and the pure-Python modules run: as aiohttp, yarl and frozenlist install.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import sys
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, ExecError, PlatformError

HERE = pathlib.Path(__file__).resolve().parent
# sidecar/core/env.py's NO_EXTENSIONS (this file cannot import the package it builds).
NO_EXTENSIONS = "SIDECAR_NO_EXTENSIONS"


def _say(message: str) -> None:
    print(f"ai-sidecar setup: {message}", file=sys.stderr)


def _digest(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def twins() -> list[Extension]:
    """One extension per `_name.pyx` under sidecar/, each with its sources' hashes compiled in."""
    extensions = []
    for pyx in sorted((HERE / "sidecar").rglob("_*.pyx")):
        pure = pyx.with_name(pyx.name[1:].removesuffix(".pyx") + ".py")
        if not pure.is_file():
            raise SystemExit(
                f"{pyx.relative_to(HERE)}: a compiled twin needs its pure twin {pure.name} beside it"
            )
        pxd = pyx.with_suffix(".pxd")
        sources = [pyx, *([pxd] if pxd.is_file() else []), pure]
        # Edits to any of them rebuild the extension (depends), so the hashes it carries are fresh.
        hashes = ",".join(f"{p.name}={_digest(p)}" for p in sources)
        extensions.append(
            Extension(
                ".".join(pyx.relative_to(HERE).with_suffix("").parts),
                [pyx.relative_to(HERE).as_posix()],
                depends=[p.relative_to(HERE).as_posix() for p in sources[1:]],
                define_macros=[("SIDECAR_SOURCES", f'"{hashes}"')],
                extra_compile_args=["-O2"],
            )
        )
    return extensions


def extensions() -> list[Any]:
    if os.environ.get(NO_EXTENSIONS):
        _say(f"{NO_EXTENSIONS} is set: no compiled twins, the pure-Python modules run")
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        _say("Cython is not installed: no compiled twins, the pure-Python modules run")
        return []
    # language_level 3; boundscheck and wraparound stay at their defaults (on): see docs/compiled-core.md.
    return cythonize(  # type: ignore[no-any-return]
        twins(),
        build_dir="build/cython",
        compiler_directives={"language_level": 3, "embedsignature": True},
        quiet=True,
    )


class OptionalBuildExt(build_ext):
    """Builds what it can: a twin that does not compile leaves its pure module to run; the install goes on."""

    def run(self) -> None:
        try:
            super().run()
        except (PlatformError, FileNotFoundError) as e:  # no compiler at all
            _say(f"cannot compile ({e}): no compiled twins, the pure-Python modules run")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except (CCompilerError, ExecError, PlatformError, ValueError) as e:
            _say(f"{ext.name} did not compile ({e}): its pure-Python module runs")


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
