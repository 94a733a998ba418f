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


def ingress_within(proc: Proc, code: str, seconds: float) -> tuple[int, int]:
    """(calls ended with `code` within `seconds` of arriving, all calls ended with `code`), from the
    sidecar's duration histogram (`seconds` must be one of its bucket bounds)."""
    within = total = 0
    for line in http_get(proc.ports["http"], "/metrics")[1].decode().splitlines():
        if not line.startswith("ai_sidecar_request_duration_seconds_bucket{"):
            continue
        if 'direction="ingress"' not in line or f'code="{code}"' not in line:
            continue
        count = int(float(line.rsplit(" ", 1)[1]))
        if f'le="{seconds}"' in line:
            within += count
        elif 'le="+Inf"' in line:
            total += count
    return within, total


def ingress_histogram(proc: Proc, code: str) -> dict[float, int]:
    """The cumulative duration buckets (upper bound -> calls) of ingress calls that ended with `code`."""
    buckets: dict[float, int] = {}
    for line in http_get(proc.ports["http"], "/metrics")[1].decode().splitlines():
        if not line.startswith("ai_sidecar_request_duration_seconds_bucket{"):
            continue
        if 'direction="ingress"' not in line or f'code="{code}"' not in line:
            continue
        bound = line.split('le="', 1)[1].split('"', 1)[0]
        le = float("inf") if bound == "+Inf" else float(bound)
        buckets[le] = buckets.get(le, 0) + int(float(line.rsplit(" ", 1)[1]))
    return buckets


def histogram_quantile(q: float, after: dict[float, int], before: dict[float, int] | None = None) -> float:
    """Prometheus' histogram_quantile over the calls counted between two readings."""
    before = before or {}
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0) for b in bounds]
    total = counts[-1]
    if not total:
        return 0.0
    rank = q * total
    lower, below = 0.0, 0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(1, count - below)
        lower, below = bound, count
    return lower
