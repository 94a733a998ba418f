"""A real Spring Cloud Eureka server as a local process for tests. Knows nothing about the sidecar.

The server is docker/eureka-server, built by scripts/build-eureka.sh. It runs standalone on a loopback
port with the test settings of its application.yml (no self-preservation, eviction every second, no
read-only response cache), so registrations, status changes and cancels show up in the next read.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, BinaryIO, cast

from tests.support import REPO

HOST = "127.0.0.1"
TARGET = REPO / "docker" / "eureka-server" / "target"
JAR = TARGET / "eureka-server.jar"
# The class-data-sharing copy the build script makes: the extracted jar and its class archive.
CDS_JAR = TARGET / "cds" / "eureka-server.jar"
CDS_ARCHIVE = TARGET / "cds" / "eureka-server.jsa"

# Start-up is class loading and running Spring's configuration once, so C2 never pays off: stopping at
# C1 halves the CPU it takes, and the CDS archive halves it again (measurements in
# docker/eureka-server/README.md). The serial collector did not change start-up time; it is there
# for fewer GC threads on a 2-core machine. -Xss512k and -Xshare:auto measured no effect.
JVM_FLAGS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")

JsonObject = dict[str, Any]


class EurekaServerError(RuntimeError):
    """The Eureka server could not be started, or answered a request unexpectedly."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class EurekaServer:
    """One Eureka server process on a fixed loopback port; restart() brings it back on the same port."""

    port: int
    log_path: pathlib.Path
    startup_timeout: float = 90.0
    # Extra Spring properties, e.g. ("--eureka.server.use-read-only-response-cache=true",).
    args: Sequence[str] = ()
    popen: subprocess.Popen[bytes] | None = None
    # Seconds from launch to the first 200 from GET /eureka/apps, for the latest start.
    startup_seconds: float = 0.0
    _log_file: BinaryIO | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The service URL a Eureka client is configured with (ends in a slash)."""
        return f"http://{HOST}:{self.port}/eureka/"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            raise EurekaServerError(f"Eureka server on port {self.port} is already running")
        command = [*_command(self.port), *self.args]
        self._log_file = self.log_path.open("ab")
        self._log_file.write(f"--- start_eureka: {' '.join(command)}\n".encode())
        self._log_file.flush()
        started = time.monotonic()
        self.popen = subprocess.Popen(command, stdout=self._log_file, stderr=subprocess.STDOUT, cwd=TARGET)
        self._wait_ready(started + self.startup_timeout)
        self.startup_seconds = time.monotonic() - started

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (Spring closes the context and the registry), then SIGKILL after `timeout` seconds."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return self.popen.returncode

    def restart(self) -> None:
        """Stop and start again on the same port; the registry starts empty (it lives in memory only)."""
        self.stop()
        self.start()

    def request(
        self, method: str, path: str, body: JsonObject | None = None, timeout: float = 5.0
    ) -> tuple[int, bytes]:
        """One HTTP request to `path` (relative to /eureka/) asking for JSON; any status is returned."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path.lstrip("/"), data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return int(r.status), r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def get_json(self, path: str) -> JsonObject | None:
        """GET `path` as parsed JSON, or None on 404."""
        status, body = self.request("GET", path)
        if status == 404:
            return None
        if status != 200:
            raise EurekaServerError(f"GET {self.url}{path} answered {status}: {body[:500]!r}")
        return cast(JsonObject, json.loads(body))

    def apps(self) -> JsonObject:
        """GET /eureka/apps: the whole registry, `{"applications": {...}}`."""
        apps = self.get_json("apps")
        if apps is None:
            raise EurekaServerError(f"GET {self.url}apps answered 404")
        return apps

    def app(self, name: str) -> JsonObject | None:
        """GET /eureka/apps/{NAME}: one application, `{"application": {...}}`, or None if not registered."""
        return self.get_json(f"apps/{name.upper()}")

    def _wait_ready(self, deadline: float) -> None:
        assert self.popen is not None
        last: object = None
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                self.stop()
                raise EurekaServerError(
                    f"Eureka server exited with {self.popen.returncode} before it was ready "
                    f"(port {self.port}); log {self.log_path}:\n{self.log()[-5000:]}"
                )
            with contextlib.suppress(OSError):
                last = self.request("GET", "apps", timeout=1.0)[0]
                if last == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise EurekaServerError(
            f"Eureka server on port {self.port} not ready within {self.startup_timeout} s "
            f"(last status {last!r}); log {self.log_path}:\n{self.log()[-5000:]}"
        )

    def __enter__(self) -> EurekaServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _command(port: int) -> list[str]:
    java = shutil.which("java", path=_java_path())
    if java is None:
        raise EurekaServerError("java not found on PATH or in JAVA_HOME: the Eureka server needs a JDK 17+")
    if not JAR.is_file():
        raise EurekaServerError(f"{JAR} is missing: run scripts/build-eureka.sh")
    jar, cds = str(JAR), []
    # A CDS copy older than the jar belongs to a previous build: use the jar alone.
    if CDS_ARCHIVE.is_file() and CDS_JAR.is_file() and CDS_ARCHIVE.stat().st_mtime >= JAR.stat().st_mtime:
        jar, cds = str(CDS_JAR), [f"-XX:SharedArchiveFile={CDS_ARCHIVE}"]
    return [
        java,
        *JVM_FLAGS,
        *cds,
        "-jar",
        jar,
        f"--server.port={port}",
        f"--server.address={HOST}",
    ]


def _java_path() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    path = os.environ.get("PATH", os.defpath)
    return f"{java_home}/bin{os.pathsep}{path}" if java_home else path


def start_eureka(
    port: int | None = None, startup_timeout: float = 90.0, args: Sequence[str] = ()
) -> EurekaServer:
    """Start a Eureka server on `port` (a free one if None) and wait until GET /eureka/apps answers 200.
    `args` are extra Spring properties (--key=value) overriding application.yml's test settings.

    Use as a context manager, or call stop(). The log goes to a temp file (`log_path`), all starts
    of one server appended to it.
    """
    fd, log = tempfile.mkstemp(prefix="eureka-", suffix=".log")
    os.close(fd)
    server = EurekaServer(port if port is not None else free_port(), pathlib.Path(log), startup_timeout, args)
    server.start()
    return server
