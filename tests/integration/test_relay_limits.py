"""The relay's HTTP/2 limits as a user meets them: set by SIDECAR_H2_* settings, advertised in the relay's
own SETTINGS, answered on the wire, and counted at GET /metrics as ai_sidecar_relay_limits_total{kind}.
The attack suite (tests/attacks) judges the defaults under floods; this checks the wiring end to end."""

from __future__ import annotations

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.attacks import h2
from tests.attacks.h2 import Peer
from tests.attacks.spec import HEALTH_BODY as BODY
from tests.support.procs import HOST, http_get, running, start_model, start_sidecar

pytestmark = pytest.mark.integration


def limit_hits(http_port: int) -> dict[str, float]:
    status, body = http_get(http_port, "/metrics")
    assert status == 200
    for family in text_string_to_metric_families(body.decode()):
        if family.name == "ai_sidecar_relay_limits":
            return {s.labels["kind"]: s.value for s in family.samples if s.name.endswith("_total")}
    return {}


FLAGS = (
    "--h2-max-concurrent-streams", "3", "--h2-max-header-list-size", "5000", "--h2-ping-budget", "5",
    "--h2-health-max-streams", "1",
)  # fmt: skip
WATCH = "/grpc.health.v1.Health/Watch"


def test_settings_reach_the_wire_and_a_limit_that_fires_is_counted_at_metrics():
    with (
        running(start_model()) as model,
        running(start_sidecar(model.ports["grpc"], "--dataplane", "relay", *FLAGS)) as sidecar,
    ):
        assert limit_hits(sidecar.ports["http"]) == {}
        with Peer(HOST, sidecar.ports["grpc"]) as p:
            advertised = p.handshake()
            assert advertised[h2.MAX_CONCURRENT_STREAMS] == 3
            assert advertised[h2.MAX_HEADER_LIST_SIZE] <= 5000
            reqs = h2.Requests()
            watches = b"".join(
                h2.frame(h2.HEADERS, h2.END_HEADERS, sid, reqs.block(WATCH))
                + h2.frame(h2.DATA, h2.END_STREAM, sid, BODY)
                for sid in (1, 3)
            )
            p.write(watches, time.monotonic() + 2)
            p.pump(0.5)
            assert p.answer.resets == {3: h2.REFUSED_STREAM}  # one health stream at a time
            p.write(h2.ping() * 6, time.monotonic() + 2)
            p.pump(1.0)
        assert [code for code, _ in p.answer.goaways] == [h2.ENHANCE_YOUR_CALM]
        assert limit_hits(sidecar.ports["http"]) == {"health_streams": 1.0, "ping_flood": 1.0}
