"""Readiness holds while a client stalls the sidecar's event loop, and still follows a model that stops.

A real sidecar in front of the real digits model probes it every 0.1 s with a
0.15 s timeout and a failure threshold of 2. Clients send REST bodies that the
loop must parse synchronously (60 to 240 MB of JSON each, sized to this machine, within max_message_bytes,
answered 400): each holds the loop for about 1.5 s, far longer than
probe_timeout x failure_threshold. /readyz, polled from this process, and the
sidecar's log must say READY throughout. The control: the same sidecar goes
NOT_READY within its thresholds when the model really stops answering (SIGSTOP),
and again when it is gone (SIGKILL).
"""

from __future__ import annotations

import functools
import http.client
import os
import pathlib
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.procs import HOST, Proc, http_get, running, start_model, start_sidecar

pytestmark = pytest.mark.integration

INTERVAL, TIMEOUT, THRESHOLD = 0.1, 0.15, 2
PROBES = (
    "--probe-interval", str(INTERVAL), "--probe-timeout", str(TIMEOUT),
    "--probe-failure-threshold", str(THRESHOLD),
)  # fmt: skip
# One JSON object with one key repeated: cheap to hold once parsed (a one-entry dict), slow to parse
# (the escape is decoded each time), and rejected afterwards for want of "inputs".
_PAIR = b'"\\u00e9":0,'


# Seconds one body should hold the sidecar's loop: well over probe_timeout x failure_threshold on
# whatever machine runs this, so the body is sized by how fast this machine parses.
PARSE_SECONDS = 1.5
BODY_BYTES = (60_000_000, 240_000_000)  # the least and most the body may be
MAX_MESSAGE = "256MiB"


def _flood(size: int) -> bytes:
    return b'{"id":"flood",' + _PAIR * (size // len(_PAIR)) + b'"k":0}'


@functools.cache
def body() -> bytes:
    """Built when a test needs it, not when pytest collects the file; large enough that the sidecar
    parses it for about PARSE_SECONDS, as timed here on a sample (orjson, as the sidecar parses)."""
    import orjson

    sample = _flood(6_000_000)
    took = []
    for _ in range(3):
        start = time.perf_counter()
        orjson.loads(sample)
        took.append(time.perf_counter() - start)
    least, most = BODY_BYTES
    size = int(len(sample) * PARSE_SECONDS / min(took))
    return _flood(max(least, min(most, size)))


CLIENTS = 4
# How long after the model stops the sidecar may take to say so: the probes the thresholds need,
# plus room for a shared, noisy machine.
SLACK = 2.0


@pytest.fixture
def stack() -> Iterator[tuple[Proc, Proc]]:
    with (
        running(start_model()) as model,
        running(
            start_sidecar(
                model.ports["grpc"], "--model", "digits", "--max-message-bytes", MAX_MESSAGE, *PROBES
            )
        ) as sidecar,
    ):
        yield model, sidecar


class ReadyzPoller:
    """Polls GET /readyz until stopped, keeping (status, body, seconds the answer took)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.answers: list[tuple[int, bytes, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ReadyzPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)

    def _run(self) -> None:
        while not self._stop.is_set():
            start = time.monotonic()
            status, body = http_get(self.port, "/readyz", timeout=60)
            self.answers.append((status, body, time.monotonic() - start))
            self._stop.wait(0.02)


def post_body(port: int) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=120)
    try:
        headers = {"Content-Type": "application/json"}
        conn.request("POST", "/v2/models/digits/infer", body=body(), headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def scrape(proc: Proc) -> dict[str, float]:
    found = {}
    for line in http_get(proc.ports["http"], "/metrics")[1].decode().splitlines():
        if line.startswith(("ai_sidecar_event_loop", "ai_sidecar_model_probes")):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def connections_to(port: int) -> int:
    """Established TCP connections on this machine whose far end is `port` (grpc's sockets are IPv6,
    with IPv4-mapped addresses)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in pathlib.Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[3] == "01":  # 01: ESTABLISHED
                count += 1
    return count


def test_the_prober_has_a_connection_of_its_own(stack: tuple[Proc, Proc]) -> None:
    model, sidecar = stack
    # A REST call goes through the sidecar's model link; the probes have been going through theirs.
    assert http_get(sidecar.ports["http"], "/v2/models/digits/ready")[0] == 200
    assert connections_to(model.ports["grpc"]) == 2


def test_readiness_stays_ready_while_the_loop_is_stalled_by_huge_bodies(stack: tuple[Proc, Proc]) -> None:
    _, sidecar = stack
    port = sidecar.ports["http"]
    before = scrape(sidecar)
    with ReadyzPoller(port) as poller:
        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = list(pool.map(post_body, [port] * CLIENTS))
        # A few probes after the flood, on a free loop.
        time.sleep(5 * INTERVAL)
    after = scrape(sidecar)

    for status, body in answers:  # the client's mistake, answered as one, after the parse
        assert status == 400 and b'missing required field \\"inputs\\"' in body, (status, body[:200])
    # The loop really stalled for longer than the probes' thresholds allow, by its own measure.
    worst = after["ai_sidecar_event_loop_lag_seconds"]
    total = "ai_sidecar_event_loop_stalled_seconds_total"
    stalled = after[total] - before[total]
    assert worst > TIMEOUT * THRESHOLD, after
    assert stalled > 2 * TIMEOUT * THRESHOLD, after
    # Readiness, as a kubelet polling /readyz saw it: ready at every answer, though answers were held up.
    assert len(poller.answers) >= 10
    assert {(status, body) for status, body, _ in poller.answers} == {(200, b'{"ready": true}')}
    assert max(took for _, _, took in poller.answers) > TIMEOUT * THRESHOLD
    # And as the sidecar saw it: probes went on and none failed (an inconclusive one changes nothing).
    verdict = 'ai_sidecar_model_probes_total{verdict="%s"}'
    assert after[verdict % "fail"] == 0, after
    assert after[verdict % "pass"] > before[verdict % "pass"]
    log = sidecar.log()
    assert "WARNING sidecar.health.prober: probe:" not in log, log
    assert "model not ready" not in log, log


def wait_not_ready(port: int, within: float) -> tuple[float, str]:
    """Seconds until /readyz answered 503, and the reason it gave."""
    start = time.monotonic()
    while (took := time.monotonic() - start) < within:
        status, body = http_get(port, "/readyz", timeout=within)
        if status == 503:
            return took, body.decode()
        time.sleep(0.01)
    raise AssertionError(f"/readyz still 200 after {within}s")


def test_control_a_model_that_really_stops_goes_not_ready_within_the_thresholds(
    stack: tuple[Proc, Proc],
) -> None:
    model, sidecar = stack
    port = sidecar.ports["http"]
    # Hung: the connection stays up and nothing answers, on a loop with nothing else to do.
    expected = THRESHOLD * (INTERVAL + TIMEOUT)
    os.kill(model.pid, signal.SIGSTOP)
    try:
        took, reason = wait_not_ready(port, expected + SLACK)
    finally:
        os.kill(model.pid, signal.SIGCONT)
    assert took >= THRESHOLD * TIMEOUT * 0.9  # the timeouts were waited out, not guessed
    assert f"probe timed out after {TIMEOUT:g}s" in reason, reason
    deadline = time.monotonic() + 10
    while http_get(port, "/readyz")[0] != 200:
        assert time.monotonic() < deadline, sidecar.log()
        time.sleep(0.02)
    # Gone: the connection is refused.
    model.popen.kill()
    model.popen.wait()
    took, reason = wait_not_ready(port, THRESHOLD * INTERVAL + SLACK)
    assert "UNAVAILABLE" in reason, reason
    log = sidecar.log()
    assert f"WARNING sidecar.health.prober: probe: probe timed out after {TIMEOUT:g}s" in log, log
    assert "probe inconclusive" not in log, log
