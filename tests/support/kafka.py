"""A real Apache Kafka broker for tests: one KRaft node (broker and controller) on loopback, in a temp dir.

The jars come from Maven Central through scripts/setup-kafka.sh, which resolves org.apache.kafka:kafka_2.13
and its runtime dependencies into a folder keyed by the version. Start-up formats the node's storage
(kafka.tools.StorageTool, as `kafka-storage.sh format` does) and runs kafka.Kafka, each a JVM of its own,
with the flags that make a short-lived JVM start fast. Knows nothing about the sidecar.
"""

from __future__ import annotations

import base64
import contextlib
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from tests.support import REPO
from tests.support.procs import HOST, free_port

VERSION = os.environ.get("KAFKA_VERSION", "4.1.1")
CACHE = pathlib.Path(os.environ.get("AI_SIDECAR_CACHE", pathlib.Path.home() / ".cache" / "ai-sidecar"))
HOME = CACHE / f"kafka-{VERSION}"
LIBS = HOME / "libs"
SETUP = REPO / "scripts" / "setup-kafka.sh"

# C1 only and the serial collector: a broker that lives for one test module never pays C2 back, and
# two cores want few GC threads. The heap is far above what one topic of test events needs.
JVM_FLAGS = (
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "-Xms128m",
    "-Xmx512m",
    "-Djava.awt.headless=true",
)
_LOG4J2_PROPERTIES = """\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = out
logger.broker.name = kafka.server.BrokerServer
logger.broker.level = INFO
"""


class KafkaError(RuntimeError):
    """The broker could not be set up or started."""


def available() -> str:
    """ "" when the jars are there, else why not (the skip reason a test shows)."""
    if shutil.which("java") is None:
        return "java not found (scripts/setup-polyglot.sh installs a JDK)"
    if not (HOME / ".complete").exists():
        return f"Kafka {VERSION} jars not set up: run bash scripts/setup-kafka.sh"
    return ""


def _cluster_id() -> str:
    # What `kafka-storage.sh random-uuid` prints: a random UUID, URL-safe base64 without padding.
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


@dataclass
class KafkaBroker:
    """One KRaft node on loopback; `bootstrap` is what a client is given."""

    port: int
    controller_port: int
    home: pathlib.Path
    popen: subprocess.Popen[bytes] | None = None
    startup_seconds: float = 0.0
    _log: BinaryIO | None = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def log_path(self) -> pathlib.Path:
        return self.home / "broker.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _java(self, main: str, *args: str) -> list[str]:
        return [
            "java", *JVM_FLAGS, f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            "-cp", f"{LIBS}/*", main, *args,
        ]  # fmt: skip

    def configure(self) -> None:
        data = self.home / "data"
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{HOST}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(data),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "background.threads": "2",
            "log.flush.interval.messages": str(2**62),
        }
        (self.home / "server.properties").write_text("".join(f"{k}={v}\n" for k, v in properties.items()))
        (self.home / "log4j2.properties").write_text(_LOG4J2_PROPERTIES)
        fmt = subprocess.run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                "-t",
                _cluster_id(),
                "-c",
                str(self.home / "server.properties"),
            ),
            capture_output=True,
            timeout=120,
        )
        if fmt.returncode != 0:
            raise KafkaError(
                f"formatting the KRaft storage failed:\n{fmt.stdout.decode()}{fmt.stderr.decode()}"
            )

    def start(self, timeout: float = 90.0) -> None:
        started = time.monotonic()
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self._java("kafka.Kafka", str(self.home / "server.properties")),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.home,
        )
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise KafkaError(f"the broker exited with {self.popen.returncode}:\n{self.log()}")
            if "started (kafka.server.BrokerServer)" in self.log() or "Kafka Server started" in self.log():
                with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), timeout=1):
                    self.startup_seconds = time.monotonic() - started
                    return
            time.sleep(0.1)
        self.stop()
        raise KafkaError(f"the broker did not start within {timeout}s:\n{self.log()}")

    def stop(self, timeout: float = 20.0) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


@contextlib.contextmanager
def kafka_broker() -> Iterator[KafkaBroker]:
    """A formatted, started broker for the duration of the block; its temp dir is removed after."""
    why = available()
    if why:
        raise KafkaError(why)
    home = pathlib.Path(tempfile.mkdtemp(prefix="kafka-"))
    broker = KafkaBroker(port=free_port(), controller_port=free_port(), home=home)
    try:
        broker.configure()
        broker.start()
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(home, ignore_errors=True)
