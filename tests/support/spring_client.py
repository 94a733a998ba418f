"""The Spring Boot LoadBalancer client (tests/spring/lb-client) as a real JVM process for tests.

Built by scripts/build-spring-client.sh. It calls a service by name through a @LoadBalanced
RestClient at a fixed rate and reports on stdout; closing its stdin stops it. Knows nothing about
the sidecar.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.support import REPO
from tests.support.eureka import JVM_FLAGS

JAR = REPO / "tests" / "spring" / "lb-client" / "target" / "lb-client.jar"
PREFIX = "LBCLIENT "


class SpringClientError(RuntimeError):
    """The client could not be started, or did not report as it should."""


@dataclass
class LbClient:
    popen: subprocess.Popen[str]
    log_path: str
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    reader: threading.Thread | None = None

    def _read(self) -> None:
        assert self.popen.stdout is not None
        with open(self.log_path, "a") as log:
            for line in self.popen.stdout:
                log.write(line)
                log.flush()
                if line.startswith(PREFIX):
                    self.lines.append(line[len(PREFIX):].strip())
                    if line.startswith(PREFIX + "READY"):
                        self.ready.set()

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.1):
            if self.popen.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise SpringClientError(f"lb-client not ready within {timeout}s:\n{self.log()[-5000:]}")

    def totals(self) -> dict[str, Any]:
        """The latest running totals: ok, failed, errors by kind."""
        for line in reversed(self.lines):
            if line.startswith(("TOTALS ", "DONE ")):
                return dict(json.loads(line.split(" ", 1)[1]))
        return {"ok": 0, "failed": 0, "errors": {}}

    def stop(self, timeout: float = 30.0) -> dict[str, Any]:
        """Close stdin (the client stops sending, waits for calls in flight), return the final totals."""
        assert self.popen.stdin is not None
        self.popen.stdin.close()
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            log = self.log()[-5000:]
            raise SpringClientError(f"lb-client did not stop within {timeout}s:\n{log}") from None
        self._close()
        done = [line for line in self.lines if line.startswith("DONE ")]
        if not done:
            raise SpringClientError(f"lb-client ended without its totals:\n{self.log()[-5000:]}")
        return dict(json.loads(done[-1].split(" ", 1)[1]))

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
        self._close()

    def _close(self) -> None:
        if self.reader is not None:
            self.reader.join(5)  # it reads to the end of the dead process's output
        for pipe in (self.popen.stdin, self.popen.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()


def start_lb_client(
    eureka_url: str, service: str, *, rate: float, instances: int, properties: Sequence[str] = ()
) -> LbClient:
    """Start the client; it sends its first call once Eureka lists `instances` of `service` to it."""
    java = shutil.which("java")
    if java is None:
        raise SpringClientError("java not found on PATH: the Spring client needs a JDK 17+")
    if not JAR.is_file():
        raise SpringClientError(f"{JAR} is missing: run scripts/build-spring-client.sh")
    command = [
        java, *JVM_FLAGS, "-jar", str(JAR),
        f"--eureka.client.service-url.defaultZone={eureka_url}",
        f"--lb.service={service}", f"--lb.rate={rate}", f"--lb.instances={instances}",
        *properties,
    ]  # fmt: skip
    log = tempfile.mkstemp(prefix="lb-client-", suffix=".log")[1]
    popen = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO
    )
    client = LbClient(popen, log)
    client.reader = threading.Thread(target=client._read, name="lb-client-stdout", daemon=True)
    client.reader.start()
    return client
