"""A real Prometheus from Debian's `prometheus` package, as a local process for tests. Knows no sidecar.

Runs in the foreground on a free loopback port with a generated scrape config
(every target scraped each second) and its data in a temp dir, so it touches
no system path. Install it with scripts/setup-observability.sh.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tests.support.procs import HOST, free_port

SCRAPE_INTERVAL = "1s"


class PrometheusError(RuntimeError):
    """Prometheus could not be started, or a query failed."""


def binary() -> str | None:
    found = shutil.which("prometheus")
    if found is None and pathlib.Path("/usr/bin/prometheus").exists():
        found = "/usr/bin/prometheus"
    return found


def scrape_config(targets: Sequence[str], interval: str = SCRAPE_INTERVAL) -> str:
    """prometheus.yml scraping `targets` (HOST:PORT) at /metrics; JSON is valid YAML."""
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": "ai-sidecar",
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": list(targets)}],
            }
        ],
    }
    return json.dumps(config, indent=2)


@dataclass
class Prometheus:
    port: int
    popen: subprocess.Popen[bytes]
    directory: pathlib.Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log(self) -> str:
        path = self.directory / "prometheus.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise PrometheusError(f"{path} {params}: HTTP {e.code}: {e.read()[:500]!r}") from None
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's vector result: [{"metric": {...}, "value": [t, "v"]}, ...]."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self.api("query", **params)
        if data["resultType"] != "vector":
            raise PrometheusError(f"{expr}: expected a vector, got {data['resultType']}")
        result: list[dict[str, Any]] = data["result"]
        return result

    def scalar(self, expr: str, at: float | None = None) -> float:
        """The value of a query that yields exactly one series."""
        result = self.query(expr, at)
        if len(result) != 1:
            raise PrometheusError(f"{expr}: expected one series, got {result}")
        return float(result[0]["value"][1])

    def wait_scraped(self, timeout: float = 30.0) -> None:
        """Until every target is up and has been scraped at least once."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise PrometheusError(f"prometheus exited with {self.popen.returncode}:\n{self.log()}")
            with contextlib.suppress(OSError, PrometheusError):
                last = self.api("targets")["activeTargets"]
                if last and all(t["health"] == "up" for t in last):
                    return
            time.sleep(0.2)
        raise PrometheusError(f"targets not up within {timeout}s: {last}\n{self.log()}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_prometheus(targets: Sequence[str], startup_timeout: float = 30.0) -> Prometheus:
    exe = binary()
    if exe is None:
        raise PrometheusError("prometheus is not installed; run scripts/setup-observability.sh")
    directory = pathlib.Path(tempfile.mkdtemp(prefix="prometheus-"))
    (directory / "prometheus.yml").write_text(scrape_config(targets))
    port = free_port()
    with (directory / "prometheus.log").open("ab") as log:
        popen = subprocess.Popen(
            [
                exe,
                f"--config.file={directory / 'prometheus.yml'}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address={HOST}:{port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=log,
            cwd=directory,
        )
    prometheus = Prometheus(port, popen, directory)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            text = prometheus.log()
            prometheus.stop()
            raise PrometheusError(f"prometheus exited with {popen.returncode}:\n{text}")
        ready = f"{prometheus.url}/-/ready"
        with contextlib.suppress(OSError), urllib.request.urlopen(ready, timeout=1) as r:
            if r.status == 200:
                return prometheus
        time.sleep(0.1)
    text = prometheus.log()
    prometheus.stop()
    raise PrometheusError(f"prometheus not ready within {startup_timeout}s:\n{text}")


@contextlib.contextmanager
def running_prometheus(targets: Sequence[str]) -> Iterator[Prometheus]:
    prometheus = start_prometheus(targets)
    try:
        yield prometheus
    finally:
        prometheus.stop()
