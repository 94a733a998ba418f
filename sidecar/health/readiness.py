"""Readiness with hysteresis: consecutive probe results move a published snapshot. No I/O, no clock reads.

The request path reads `Readiness.current` (an immutable snapshot); only the
prober calls `record`. Watchers are told of each change, in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReadinessSnapshot:
    # What probes and registries are told.
    ready: bool
    reason: str
    # True once the model has been ready at least once since start-up.
    ever_ready: bool = False
    # Whether ingress accepts calls: equals `ready` except while draining, when
    # the sidecar reports not-ready but keeps serving callers that have not
    # noticed yet.
    serving: bool | None = None

    @property
    def accepts_calls(self) -> bool:
        return self.ready if self.serving is None else self.serving


Watcher = Callable[[ReadinessSnapshot], None]

NOT_YET_PROBED = ReadinessSnapshot(False, "model not probed yet")


class Readiness:
    def __init__(self, failure_threshold: int, success_threshold: int) -> None:
        if failure_threshold < 1 or success_threshold < 1:
            raise ValueError("thresholds must be at least 1")
        self._failure_threshold = failure_threshold
        self._success_threshold = success_threshold
        self._successes = 0
        self._failures = 0
        self._draining = False
        # Conditions besides the model that keep the sidecar not ready (e.g. no JWKS yet), by name.
        self._holds: dict[str, str] = {}
        self._model_state = NOT_YET_PROBED
        self.current = NOT_YET_PROBED
        self._watchers: list[Watcher] = []

    def watch(self, watcher: Watcher) -> None:
        self._watchers.append(watcher)
        watcher(self.current)

    def record(self, ok: bool, detail: str = "") -> None:
        """Feed one probe result. `detail` says why a failed probe failed."""
        model = self._model_state
        if ok:
            self._failures = 0
            self._successes += 1
            # Before the first success one good probe is enough: waiting for a
            # streak at start-up only delays traffic, never protects it.
            needed = self._success_threshold if model.ever_ready else 1
            if not model.ready and self._successes >= needed:
                model = ReadinessSnapshot(True, "model ready", ever_ready=True)
        else:
            self._successes = 0
            self._failures += 1
            if model.ready and self._failures >= self._failure_threshold:
                model = ReadinessSnapshot(False, f"model not ready: {detail}", ever_ready=True)
            elif not model.ready:
                model = ReadinessSnapshot(
                    False, f"model not ready: {detail}", ever_ready=model.ever_ready
                )
        self._model_state = model
        self._publish()

    def drain(self) -> None:
        """From now on report not ready, whatever the model says: the sidecar is shutting down."""
        self._draining = True
        self._publish()

    def hold(self, name: str, reason: str | None) -> None:
        """Keep reporting not ready for `reason` (None lifts the hold named `name`)."""
        if reason is None:
            self._holds.pop(name, None)
        else:
            self._holds[name] = reason
        self._publish()

    def _publish(self) -> None:
        model = self._model_state
        if self._holds and model.ready:
            reason = "; ".join(f"{k}: {v}" for k, v in self._holds.items())
            model = ReadinessSnapshot(False, reason, ever_ready=model.ever_ready)
        if self._draining:
            new = ReadinessSnapshot(
                False, "sidecar draining", ever_ready=model.ever_ready, serving=model.ready
            )
        else:
            new = model
        if new == self.current:
            return
        changed = (new.ready, new.accepts_calls) != (self.current.ready, self.current.accepts_calls)
        self.current = new
        if changed:
            for watcher in self._watchers:
                watcher(new)
