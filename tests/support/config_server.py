"""A real Spring Cloud Config Server (docker/config-server, scripts/build-config-server.sh) for tests.

It serves the files of one directory (the native backend), so a test rewrites a file and the next
poll sees it. Knows nothing about the sidecar.
"""

from __future__ import annotations

import contextlib
import pathlib
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator

from tests.support import REPO
from tests.support.eureka import JVM_FLAGS, _java_path
from tests.support.procs import HOST, free_port

JAR = REPO / "docker" / "config-server" / "target" / "config-server.jar"


class ConfigServer:
    def __init__(self, repo: pathlib.Path) -> None:
        self.repo = repo
        self.port = free_port()
        self.log_path = pathlib.Path(tempfile.mkstemp(prefix="config-server-", suffix=".log")[1])
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 90.0) -> None:
        import shutil

        java = shutil.which("java", path=_java_path())
        if java is None or not JAR.is_file():
            raise RuntimeError(f"needs java and {JAR} (run scripts/build-config-server.sh)")
        command = [
            java, *JVM_FLAGS, "-jar", str(JAR), f"--server.port={self.port}", f"--server.address={HOST}",
            f"--spring.cloud.config.server.native.search-locations=file:{self.repo}/",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"Config Server exited:\n{self.log_path.read_text()[-3000:]}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/probe/default", timeout=1) as r,
            ):
                if r.status == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"Config Server not ready in {timeout} s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@contextlib.contextmanager
def running_config_server(repo: pathlib.Path) -> Iterator[ConfigServer]:
    server = ConfigServer(repo)
    server.start()
    try:
        yield server
    finally:
        server.stop()
