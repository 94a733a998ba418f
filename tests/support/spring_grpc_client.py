"""The Spring gRPC client (tests/spring/grpc-client) as a real JVM process for tests.

Built by scripts/build-spring-grpc-client.sh: net.devh's grpc-client-spring-boot-starter with Eureka
discovery, calling `discovery:///digits`. It makes its calls, prints one result line and exits.
Knows nothing about the sidecar.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from typing import Any

from tests.support import REPO
from tests.support.eureka import JVM_FLAGS

JAR = REPO / "tests" / "spring" / "grpc-client" / "target" / "grpc-client.jar"
RESULT = "GRPCCLIENT RESULT "
FAILED = "GRPCCLIENT FAILED "


class SpringGrpcClientError(RuntimeError):
    """The client could not be started, or ended without its result."""


def run_grpc_client(
    eureka_url: str,
    request_file: str,
    *,
    instances: int,
    count: int,
    timeout: float = 120.0,
    properties: Sequence[str] = (),
) -> dict[str, Any]:
    """Run the client to its end; its result: discovered instances, ready, labels per call, errors."""
    java = shutil.which("java")
    if java is None:
        raise SpringGrpcClientError("java not found on PATH: the Spring gRPC client needs a JDK 17+")
    if not JAR.is_file():
        raise SpringGrpcClientError(f"{JAR} is missing: run scripts/build-spring-grpc-client.sh")
    command = [
        java, *JVM_FLAGS, "-jar", str(JAR),
        f"--eureka.client.service-url.defaultZone={eureka_url}",
        # Fetch the registry every second, not every 30: the instances have just registered.
        "--eureka.client.registry-fetch-interval-seconds=1",
        f"--calls.request={request_file}", f"--calls.instances={instances}", f"--calls.count={count}",
        *properties,
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired as e:
        why = f"the Spring gRPC client did not end within {timeout} s:\n{e.stdout!r}"
        raise SpringGrpcClientError(why) from e
    for line in done.stdout.splitlines():
        if line.startswith(RESULT):
            return dict(json.loads(line[len(RESULT):]))
    failed = [line for line in done.stdout.splitlines() if line.startswith(FAILED)]
    raise SpringGrpcClientError(
        f"the Spring gRPC client exited with {done.returncode} and no result: {failed}\n"
        f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
