"""The Docker engine as the container tests use it: the CLI, the images of this tree, and clean-up.

The engine is shared by everyone on the machine, so this run's images carry a registry prefix of
their own worktree (ai-sidecar-test-<hash>/), and its containers and compose projects a name with
this process's id; every container a test starts is removed when it ends.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Sequence
from typing import Any

from tests.support import REPO

VERSION_MATCH = re.search(r'^__version__ = "(.+)"$', (REPO / "sidecar" / "__init__.py").read_text(), re.M)
assert VERSION_MATCH is not None
VERSION = VERSION_MATCH.group(1)
REGISTRY = f"ai-sidecar-test-{hashlib.sha256(str(REPO).encode()).hexdigest()[:8]}/"
# docker/FOLDER -> image name, as scripts/build-images.sh tags them.
IMAGES = {
    "sidecar": "ai-sidecar",
    "digits-python": "ai-sidecar-digits-python",
    "digits-java": "ai-sidecar-digits-java",
    "eureka-server": "ai-sidecar-eureka",
    "digits-cpp": "ai-sidecar-digits-cpp",
    "digits-php": "ai-sidecar-digits-php",
    "prometheus": "ai-sidecar-prometheus",
}


def tag(folder: str) -> str:
    return f"{REGISTRY}{IMAGES[folder]}:{VERSION}"


def engine_problem() -> str | None:
    """None when a Docker engine and the compose plugin answer; otherwise what is missing."""
    if shutil.which("docker") is None:
        return "no docker CLI"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    if info.returncode != 0:
        return f"no Docker engine answers: {info.stderr.strip()[-300:]}"
    compose = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30)
    if compose.returncode != 0:
        return "no `docker compose` plugin (scripts/setup-docker.sh builds it)"
    return None


def docker(*args: str, check: bool = True, timeout: float = 120, input: str | None = None) -> str:
    """Run `docker ARGS`; its stdout. A failure raises with both streams."""
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, input=input
    )
    if check and result.returncode != 0:
        output = result.stdout + result.stderr
        raise RuntimeError(f"docker {' '.join(args)} exited {result.returncode}:\n{output}")
    return result.stdout


def inspect(kind: str, name: str) -> dict[str, Any]:
    data: list[dict[str, Any]] = json.loads(docker(kind, "inspect", name))
    return data[0]


def unique(prefix: str) -> str:
    """A container or project name no other run on this engine uses."""
    return f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def host_port(container: str, port: int) -> int:
    """The loopback port Docker published `port/tcp` of `container` on."""
    out = docker("port", container, f"{port}/tcp").split()
    return int(out[0].rsplit(":", 1)[1])


def remove(*containers: str) -> None:
    if containers:
        docker("rm", "-f", "-v", *containers, check=False)


def wait_for(what: str, predicate: Any, timeout: float, interval: float = 0.25) -> Any:
    """Poll `predicate()` until it returns something truthy; that value. TimeoutError names `what`."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (OSError, RuntimeError, ValueError, KeyError) as e:
            last = e
        else:
            if last:
                return last
        time.sleep(interval)
    raise TimeoutError(f"{what} within {timeout:g} s (last: {last!r})")


def logs(container: str) -> str:
    result = subprocess.run(["docker", "logs", container], capture_output=True, text=True, timeout=30)
    return result.stdout + result.stderr


def build_images(folders: Sequence[str] = ()) -> str:
    """scripts/build-images.sh with this run's registry prefix; its output."""
    env = {**os.environ, "AI_SIDECAR_REGISTRY": REGISTRY}
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "build-images.sh"), *folders],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=3000,
    )
    if result.returncode != 0:
        raise RuntimeError(f"build-images.sh exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result.stdout
