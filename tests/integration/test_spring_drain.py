"""A real Spring Boot client (Eureka discovery + Spring Cloud LoadBalancer, @LoadBalanced RestClient,
their default caches) calls three instances behind sidecars while one of them drains with the
sidecar's default drain settings: no call fails.

Spring's caches keep a draining instance in use for up to the Eureka server's response cache
(30 s) + the client's registry fetch interval (30 s) + the LoadBalancer cache TTL (35 s), which is
longer than any fixed delay derived from the registry settings (the old drain_delay: auto, 35 s,
lost about 3 % of a minute's calls). Here all three are scaled by 1/10 (3 s, 3 s, 3.5 s) so the
drill fits CI; the drain settings are not scaled at all (drain_delay auto: a 5 s quiet period, at
most 100 s), and that is the point: the quiet-period drain knows nothing of its callers' caches,
it serves for as long as calls still come, so the scale of the caches changes only how long it
lasts, not whether a call is lost. The instances register their IP as hostName (as in
Kubernetes), which is what a Spring client connects to.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator

import pytest

from tests.support.eureka import EurekaServer, start_eureka
from tests.support.procs import Proc, running, start_model, start_sidecar
from tests.support.spring_client import start_lb_client

pytestmark = pytest.mark.integration

SERVICE = "digits-svc"
# Spring Cloud's defaults / 10.
SERVER_CACHE = ("--eureka.server.use-read-only-response-cache=true",
                "--eureka.server.response-cache-update-interval-ms=3000")
CLIENT_CACHES = ("--eureka.client.registry-fetch-interval-seconds=3",
                 "--spring.cloud.loadbalancer.cache.ttl=3500ms")
RATE = 50


@pytest.fixture(scope="module")
def eureka() -> Iterator[EurekaServer]:
    with start_eureka(args=SERVER_CACHE) as server:
        yield server


def instance(eureka: EurekaServer) -> tuple[Proc, Proc]:
    model = start_model()
    sidecar = start_sidecar(
        model.ports["grpc"], "--eureka-url", eureka.url, "--model", "digits",
        # Registry timings scaled like the callers' (the drain's minimum derives from the fetch).
        "--registry-fetch-interval", "3", "--lease-renewal-interval", "3", "--lease-duration", "9",
        "--drain-delay", "auto",  # the default, which the test helpers otherwise set to 0
        app_name=SERVICE, env={"KUBERNETES_SERVICE_HOST": "10.96.0.1"},
    )  # fmt: skip
    return model, sidecar


def test_a_spring_loadbalancer_client_loses_no_call_to_a_draining_instance(eureka: EurekaServer):
    procs = [instance(eureka) for _ in range(3)]
    try:
        client = start_lb_client(eureka.url, SERVICE, rate=RATE, instances=3, properties=CLIENT_CACHES)
        try:
            client.wait_ready(120)
            time.sleep(3.0)  # calls reach all three instances
            assert client.totals()["ok"] > 0
            model, sidecar = procs[0]
            sidecar.signal(signal.SIGTERM)
            t0 = time.monotonic()
            assert sidecar.wait(120) == 0
            drained = time.monotonic() - t0
            model.stop()
            time.sleep(3.0)  # the client goes on with the two left
            totals = client.stop()
        finally:
            client.kill()
        log = sidecar.log()
        arrived = re.search(r"(\d+) calls arrived, the last ([\d.]+)s ago", log)
        print(f"\nSpring client through a drain: {totals}; drain took {drained:.1f}s;"
              f" {arrived.group(0) if arrived else 'no call during the drain'}")
        assert totals["failed"] == 0, totals["errors"]
        assert totals["ok"] > RATE * 5
        # The client kept picking the draining instance after it went OUT_OF_SERVICE (its caches),
        # and the drain served those calls; it ended on its quiet period, not on its maximum.
        assert arrived is not None and int(arrived.group(1)) > 0, log[-3000:]
        assert "after the maximum" not in log
        assert drained < 100
    finally:
        for model, sidecar in procs:
            with running(model), running(sidecar):
                pass
