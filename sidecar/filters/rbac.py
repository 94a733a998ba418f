"""Filter that allows or denies each call by the policy's RBAC rules: PERMISSION_DENIED saying why.

Runs after the auth filter (it reads the caller's identity, class and claims) and needs the
call's model name: REST has it from the path, the gRPC planes read field 1 of the first request
message (sidecar/oip/model_name.py) before the chain runs.
"""

from __future__ import annotations

from collections.abc import Callable

from sidecar.core.call import Call, Outcome
from sidecar.core.status import Code
from sidecar.filters.chain import Next
from sidecar.filters.governed import EXEMPT
from sidecar.governance.active import Active
from sidecar.governance.stats import GovernanceStats


class RbacFilter:
    def __init__(self, active: Callable[[], Active], stats: GovernanceStats) -> None:
        self._active = active
        self._stats = stats

    async def __call__(self, call: Call, next: Next) -> Outcome:
        rbac = self._active().rbac
        if not rbac.rules or call.method in EXEMPT:
            return await next(call)
        verdict = rbac.check(call.method, call.model, call.client_id, call.client_class, call.claims)
        if not verdict.allowed:
            self._stats.count("rbac", call.client_class, "denied")
            call.governance = f"rbac: {verdict.reason}"
            return Outcome(Code.PERMISSION_DENIED, f"{call.method}: {verdict.reason}")
        return await next(call)
