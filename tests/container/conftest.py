"""The container tests' set-up: a Docker engine, and every image of docker/ built once per session.

They run wherever an engine answers (scripts/setup-docker.sh installs and starts one, and makes the
base image). Without one they skip, except under CI (CI set), where a missing engine is a failure:
.ci/run always provides one, so a skip there would hide that nothing ran.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.support.docker import build_images, engine_problem


@pytest.fixture(scope="session", autouse=True)
def engine() -> None:
    problem = engine_problem()
    if problem is None:
        return
    message = f"container tests need a Docker engine: {problem} (run scripts/setup-docker.sh as root)"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session", autouse=True)
def images(engine: None) -> str:
    """Every image, built by scripts/build-images.sh (cached layers make a rebuild take seconds)."""
    start = time.monotonic()
    out = build_images()
    print(f"\n{out}images built in {time.monotonic() - start:.1f} s")
    return out
