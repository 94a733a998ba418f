"""How long a drain lasts, from the settings alone: the time it keeps serving, and its worst case.

Pure: knows nothing about what draining does. The composition root (app.py) drains for
`drain_delay`; the Kubernetes injector sizes a pod's terminationGracePeriodSeconds from
`longest_drain`, so both follow the same settings and defaults.
"""

from __future__ import annotations

from typing import Final

from sidecar.config import SidecarConfig

# Kubernetes takes a few seconds to remove a not-ready pod from its Service endpoints.
_DRAIN_DELAY_WITHOUT_REGISTRY: Final = 5.0
_DRAIN_DELAY_MARGIN: Final = 5.0


def drain_delay(config: SidecarConfig) -> float:
    """How long a draining sidecar keeps serving while it reports not ready."""
    if config.drain_delay is not None:
        return config.drain_delay
    if config.eureka_url:
        # Callers pick instances from a registry copy refreshed every fetch interval.
        return config.registry_fetch_interval + _DRAIN_DELAY_MARGIN
    return _DRAIN_DELAY_WITHOUT_REGISTRY


def longest_drain(config: SidecarConfig) -> float:
    """The longest a drain can take: serving while not ready, then in-flight calls finishing."""
    return drain_delay(config) + config.drain_timeout
