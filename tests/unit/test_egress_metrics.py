"""Egress resilience counters appear in the Prometheus exposition, one series set per service."""

from sidecar.telemetry.names import BoundedNames, MethodLabels
from sidecar.telemetry.prometheus import SidecarMetrics


def test_egress_counters_and_states_are_exposed_per_service():
    metrics = SidecarMetrics(MethodLabels([]), BoundedNames([], limit=10))
    stats = {"OCR": {"requests": 10, "attempts": 12, "retries": 2, "budget_exhausted": 1,
                     "rejected_by_breaker": 3, "breaker_transitions_total": 4, "ejections": 1,
                     "ejected": ["i1"], "service_breaker": "half_open"}}
    metrics.watch_egress(lambda: stats)
    text = metrics.exposition()[0].decode()
    for line in ('ai_sidecar_egress_attempts_total{service="OCR"} 12.0',
                 'ai_sidecar_egress_retries_total{service="OCR"} 2.0',
                 'ai_sidecar_egress_retry_budget_exhausted_total{service="OCR"} 1.0',
                 'ai_sidecar_egress_breaker_transitions_total{service="OCR"} 4.0',
                 'ai_sidecar_egress_ejections_total{service="OCR"} 1.0',
                 'ai_sidecar_egress_ejected_instances{service="OCR"} 1.0',
                 'ai_sidecar_egress_service_breaker_state{service="OCR",state="half_open"} 1.0',
                 'ai_sidecar_egress_service_breaker_state{service="OCR",state="open"} 0.0'):
        assert line in text, line
    stats["OCR"]["retries"] = 5  # read at scrape time
    assert 'ai_sidecar_egress_retries_total{service="OCR"} 5.0' in metrics.exposition()[0].decode()
