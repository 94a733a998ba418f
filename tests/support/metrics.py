"""A sidecar's own counts, read from its /metrics as Prometheus would scrape them."""

from tests.support.procs import Proc, http_get


def ingress_calls(proc: Proc, code: str) -> int:
    """Calls the sidecar `proc` ended with `code` at its ingress (ai_sidecar_requests_total)."""
    total = 0
    for line in http_get(proc.ports["http"], "/metrics")[1].decode().splitlines():
        ingress = line.startswith("ai_sidecar_requests_total{") and 'direction="ingress"' in line
        if ingress and f'code="{code}"' in line:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total
