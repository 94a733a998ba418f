"""Governance turned off (no policy setting): no filter, no task, nothing read per call.

Beside the real assembly so that a sidecar without a policy imports none of it (JWT, Redis,
policy sources): the composition root builds this one then. Knows nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sidecar.egress.policy import EgressPolicies
    from sidecar.filters.chain import Filter


class NoGovernance:
    enabled = False

    def filters(self, *, queueing: bool = True) -> list[Filter]:
        return []

    def needs_model(self) -> bool:
        return False

    def egress_policies(self) -> EgressPolicies | None:
        """The policy document's egress section; None: there is none."""
        return None

    def describe(self) -> dict[str, object]:
        return {"version": None, "source": None}

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass
