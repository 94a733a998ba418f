"""Both builds of a module with a compiled twin (sidecar/h2/build.py), for tests parametrised over them.

`both("messages")` is a fixture yielding the pure module `sidecar.h2.messages`, then its compiled
twin `sidecar.h2._messages`, whatever build.py would choose (but a build older than its sources,
which build.py would refuse, fails the test). Where the compiled build is
expected (CI is set, as CI sets it: the editable install has built it), a missing twin fails the
test; elsewhere (a worktree never built) it is skipped, and the pure case still runs.
`bash scripts/build-extensions.sh` builds the twins in place.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from sidecar.h2 import build

BUILDS = ("pure", "compiled")


def expected() -> bool:
    """True where a missing compiled build is a failure, not a skip."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def load(name: str, kind: str) -> ModuleType:
    """The pure module sidecar.h2.NAME, or its compiled twin, failing or skipping if it is not built."""
    if kind == "pure":
        return importlib.import_module(f"sidecar.h2.{name}")
    try:
        module = importlib.import_module(f"sidecar.h2._{name}")
    except ImportError as e:
        message = f"sidecar.h2._{name} is not built ({e}); bash scripts/build-extensions.sh builds it"
        if expected():
            pytest.fail(message)
        pytest.skip(message)
    # A build older than its sources would test yesterday's twin against today's pure module.
    stale = build.choice().stale
    if stale:
        pytest.fail(f"the compiled twins are older than {', '.join(stale)}: bash scripts/build-extensions.sh")
    return module


def both(name: str) -> Callable[..., Any]:
    """A fixture yielding sidecar.h2.NAME's pure module, then its compiled twin."""

    @pytest.fixture(params=BUILDS)
    def module(request: pytest.FixtureRequest) -> ModuleType:
        return load(name, request.param)

    return module
