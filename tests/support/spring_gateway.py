"""The Spring Cloud Gateway of tests/spring/gateway as a real JVM process for tests.

Built by scripts/build-gateway.sh. It routes `/digits/**` (REST) and gRPC calls to `lb://digits`,
resolved through Eureka. Knows nothing about the sidecar.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass

from tests.support import REPO
from tests.support.eureka import HOST, JVM_FLAGS, free_port

JAR = REPO / "tests" / "spring" / "gateway" / "target" / "gateway.jar"


class GatewayError(RuntimeError):
    """The gateway could not be started."""


@dataclass
class Gateway:
    popen: subprocess.Popen[bytes]
    port: int
    log_path: str
    startup_seconds: float = 0.0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def start_gateway(
    eureka_url: str, *, startup_timeout: float = 90.0, properties: Sequence[str] = ()
) -> Gateway:
    """Start the gateway on a free loopback port; returns once it accepts connections."""
    java = shutil.which("java")
    if java is None:
        raise GatewayError("java not found on PATH: the gateway needs a JDK 17+")
    if not JAR.is_file():
        raise GatewayError(f"{JAR} is missing: run scripts/build-gateway.sh")
    port = free_port()
    command = [
        java, *JVM_FLAGS, "-jar", str(JAR), f"--server.port={port}", f"--server.address={HOST}",
        f"--eureka.client.service-url.defaultZone={eureka_url}",
        *properties,
    ]  # fmt: skip
    fd, log = tempfile.mkstemp(prefix="gateway-", suffix=".log")
    with os.fdopen(fd, "wb") as out:
        started = time.monotonic()
        popen = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    gateway = Gateway(popen, port, log)
    deadline = started + startup_timeout
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise GatewayError(f"the gateway exited with {popen.returncode}:\n{gateway.log()[-5000:]}")
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
        except OSError:
            time.sleep(0.1)
            continue
        gateway.startup_seconds = time.monotonic() - started
        return gateway
    gateway.stop()
    raise GatewayError(f"the gateway did not listen within {startup_timeout} s:\n{gateway.log()[-5000:]}")
