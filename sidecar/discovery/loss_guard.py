"""Holds back full registry fetches that lose instances all at once: the client side of self-preservation.

Knows the Eureka registry's shape (instances by app and id, with status and lease) but no I/O.

A Eureka server keeps its registry in memory, so one that has just restarted answers a full fetch
with an empty or partial registry until the instances' registrars have registered again (each
within one lease renewal). A client that believed that answer would drop every instance and close
its connections, then fail every call for a fetch interval. Eureka's server protects its own
registry from such mass loss (self-preservation); Envoy stops trusting health when too few hosts
are left (panic threshold). This is the same idea on the client: a full fetch in which most of the
registry, or most of one app's instances, vanish without the server having told us of their
departure (a DELETED delta) is suspect. The vanished instances are kept, as last seen, until the
server has gone without listing them for their lease duration plus a margin, counting only time
in which it answered (a live instance has re-registered by then and shows up again; while the
server is down nobody can register, so an outage does not use the hold up). A server that
restarts again and answers suspiciously again gives them a new lease. What the server still does
not list then is dropped: it has confirmed the loss across its fetches for a whole lease. An
instance the server lists again (in any status), or whose cancel a delta reports, leaves the hold
at once. Instances kept here that really died are
the egress router's to find out (failed calls, outlier ejection), as they are between fetches.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sidecar.core.clock import Clock

Instances = Mapping[str, Mapping[str, Mapping[str, Any]]]

_DEFAULT_LEASE = 90.0  # Eureka's default lease duration, for an instance that does not say


@dataclass(slots=True)
class Held:
    instance: Mapping[str, Any]  # as last seen UP
    remaining: float  # seconds of the server answering without listing it, before it is dropped


@dataclass(frozen=True, slots=True)
class Suspect:
    """One app's loss in a suspect full fetch, for the log."""

    app: str
    lost: int
    had: int
    hold: float  # seconds the lost instances are kept at most


class LossGuard:
    def __init__(self, clock: Clock, margin: float, share: float = 0.5) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be within (0, 1]")
        self._clock = clock
        self._margin = margin
        self._share = share
        self._held: dict[str, dict[str, Held]] = {}
        self.suspect_fetches = 0
        self.dropped = 0  # held instances that never came back
        self._answered_at: float | None = None  # the server's last answer, unless it failed since

    @property
    def held(self) -> int:
        return sum(len(by_id) for by_id in self._held.values())

    def unreachable(self) -> None:
        """A fetch failed: until the server answers again, holds do not run down."""
        self._answered_at = None

    def full_fetch(self, believed: Instances, fetched: Instances) -> list[Suspect]:
        """Judge a full fetch against what the client believed (the server's view after the deltas it
        applied, with held instances): hold instances it loses suspiciously; the suspect apps."""
        self._run_down()
        # Holds that ran out still count as believed here: a server that restarted again before
        # they were confirmed has given those instances no chance to register.
        view = self._merged(believed)
        lost_by_app: dict[str, dict[str, Mapping[str, Any]]] = {}
        up_total = 0
        for app, by_id in view.items():
            up = {iid: inst for iid, inst in by_id.items() if inst.get("status") == "UP"}
            up_total += len(up)
            listed = fetched.get(app, {})
            lost = {iid: inst for iid, inst in up.items() if iid not in listed}
            if lost:
                lost_by_app[app] = lost
        lost_total = sum(len(lost) for lost in lost_by_app.values())
        registry_wide = up_total > 0 and lost_total >= self._share * up_total
        suspects: list[Suspect] = []
        for app, lost in lost_by_app.items():
            had = sum(1 for inst in view[app].values() if inst.get("status") == "UP")
            if not (registry_wide or len(lost) >= self._share * had):
                continue
            held = self._held.setdefault(app, {})
            hold = max(_lease(inst) for inst in lost.values()) + self._margin
            for iid, inst in lost.items():
                held[iid] = Held(inst, _lease(inst) + self._margin)
            suspects.append(Suspect(app, len(lost), had, hold))
        self._release(fetched)
        if suspects:
            self.suspect_fetches += 1
        return suspects

    def cancelled(self, gone: Iterable[tuple[str, str]]) -> None:
        """(app, instance id) pairs the server reported DELETED: their departure is confirmed."""
        for app, iid in gone:
            by_id = self._held.get(app)
            if by_id is not None:
                by_id.pop(iid, None)
                if not by_id:
                    del self._held[app]

    def view(self, server: Instances) -> Instances:
        """The server's instances plus the held ones it does not list (after a successful fetch);
        holds that ran out are dropped."""
        self._run_down()
        self._release(server)
        for app in list(self._held):
            by_id = self._held[app]
            for iid in [i for i, h in by_id.items() if h.remaining <= 0]:
                del by_id[iid]
                self.dropped += 1
            if not by_id:
                del self._held[app]
        return self._merged(server)

    def _run_down(self) -> None:
        # The server answered now; the time since its previous answer counts against every hold.
        now = self._clock()
        if self._answered_at is not None:
            spent = max(0.0, now - self._answered_at)
            for by_id in self._held.values():
                for h in by_id.values():
                    h.remaining -= spent
        self._answered_at = now

    def _merged(self, server: Instances) -> Instances:
        if not self._held:
            return server
        merged: dict[str, Mapping[str, Mapping[str, Any]]] = dict(server)
        for app, by_id in self._held.items():
            merged[app] = MappingProxyType(
                {**{iid: h.instance for iid, h in by_id.items()}, **server.get(app, {})}
            )
        return MappingProxyType(merged)

    def _release(self, listed: Instances) -> None:
        # The server lists them again: its word is the current one.
        for app in list(self._held):
            present = listed.get(app, {})
            by_id = self._held[app]
            for iid in [i for i in by_id if i in present]:
                del by_id[iid]
            if not by_id:
                del self._held[app]


def _lease(inst: Mapping[str, Any]) -> float:
    lease = inst.get("leaseInfo")
    raw: Any = lease.get("durationInSecs") if isinstance(lease, Mapping) else None
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        return _DEFAULT_LEASE
    return seconds if seconds > 0 else _DEFAULT_LEASE
