"""How long a drain lasts, from the settings alone: the policy it serves by, and its worst case.

Pure: knows nothing about what draining does. The composition root (app.py) drains by
`drain_policy` (sidecar/drain/quiet_period.py decides when, from the calls that still come); the
Kubernetes injector sizes a pod's terminationGracePeriodSeconds from `longest_drain`, so both
follow the same settings and defaults.
"""

from __future__ import annotations

from typing import Final

from sidecar.config import SidecarConfig
from sidecar.drain.quiet_period import DrainPolicy

# Kubernetes takes a few seconds to remove a not-ready pod from its Service endpoints.
_DRAIN_DELAY_WITHOUT_REGISTRY: Final = 5.0
_DRAIN_DELAY_MARGIN: Final = 5.0


def drain_policy(config: SidecarConfig) -> DrainPolicy:
    """How a draining sidecar keeps serving while it reports not ready: fixed, or while calls come."""
    if config.drain_delay is not None:
        return DrainPolicy.fixed(config.drain_delay)
    minimum = config.drain_min_delay
    if minimum is None:
        # Callers that call rarely still pick from a registry copy refreshed every fetch interval.
        minimum = (
            config.registry_fetch_interval + _DRAIN_DELAY_MARGIN
            if config.eureka_url
            else _DRAIN_DELAY_WITHOUT_REGISTRY
        )
        minimum = min(minimum, config.drain_max_delay)
    return DrainPolicy(config.drain_quiet_period, minimum, config.drain_max_delay)


def longest_drain(config: SidecarConfig) -> float:
    """The longest a drain can take: serving while not ready, then in-flight calls finishing."""
    return drain_policy(config).maximum + config.drain_timeout
