"""Filter that gives each call one identity: a verified bearer JWT's claim, else a header, else the peer.

With a `jwt` section in the policy the token comes from one header only (`authorization: Bearer`
unless configured otherwise): two of them, a malformed one, or (when required) none is
UNAUTHENTICATED with a message saying why, before anything reaches the model. The headers the
policy forwards claims in are always removed from what the client sent, token or not, so a
client can never pose as a claim; the sidecar then adds them from the verified token. The token
itself is forwarded or stripped, as configured. Tokens in a query string are never read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Final

from sidecar.auth.verifier import AuthError
from sidecar.core.call import NO_CLAIMS, Call, Claims, Metadata, Outcome
from sidecar.core.status import Code
from sidecar.filters.chain import Next
from sidecar.filters.governed import EXEMPT
from sidecar.governance.active import Active
from sidecar.governance.stats import GovernanceStats

_BEARER: Final = "bearer "
_MAX_CLIENT_ID: Final = 256


class AuthFilter:
    def __init__(self, active: Callable[[], Active], stats: GovernanceStats) -> None:
        self._active = active
        self._stats = stats

    async def __call__(self, call: Call, next: Next) -> Outcome:
        if call.method in EXEMPT:
            return await next(call)
        a = self._active()
        policy = a.policy
        jwt = policy.jwt
        claims: Claims = NO_CLAIMS
        if jwt is not None:
            stripped = jwt.forward_claims.values()
            token_header = jwt.header
            tokens: list[str | bytes] = []
            kept: Metadata = []
            changed = False
            for item in call.metadata:
                key = item[0]
                if key == token_header:
                    tokens.append(item[1])
                    if not jwt.forward_token:
                        changed = True
                        continue
                elif key in stripped:
                    changed = True
                    continue
                kept.append(item)
            if changed:
                call.metadata[:] = kept
            if len(tokens) > 1:
                return self._refuse(call, a, "duplicate", f"{len(tokens)} {token_header} headers; send one")
            if tokens:
                token = _bearer(tokens[0])
                if token is None:
                    return self._refuse(
                        call, a, "malformed", f"{token_header} header is not 'Bearer <token>'"
                    )
                assert a.verifier is not None
                try:
                    claims = a.verifier.verify(token)
                except AuthError as e:
                    return self._refuse(call, a, e.reason, e.message)
                call.claims = claims
                for claim, header in jwt.forward_claims.items():
                    if claim in claims:
                        call.metadata.append((header, _claim_text(claims[claim])))
            elif jwt.required:
                return self._refuse(
                    call,
                    a,
                    "missing",
                    f"no bearer token in the {token_header} header (query strings are never read)",
                )
        _identify(call, a, claims)
        return await next(call)

    def _refuse(self, call: Call, a: Active, reason: str, message: str) -> Outcome:
        _identify(call, a, NO_CLAIMS)
        self._stats.auth_failures[reason] += 1
        self._stats.count("auth", call.client_class, "unauthenticated")
        call.governance = f"auth: {message}"
        return Outcome(Code.UNAUTHENTICATED, f"{call.method}: {message}")


def _identify(call: Call, a: Active, claims: Claims) -> None:
    identity = a.policy.identity
    named = claims.get(identity.claim) if claims else None
    client = named if isinstance(named, str) else ""
    if claims and not client:
        # A verified caller whose token lacks the configured claim: its subject, never a header
        # it could set to be someone else.
        subject = claims.get("sub")
        client = subject if isinstance(subject, str) and subject else _peer_host(call.peer)
    if not client:
        if identity.header:
            for key, value in call.metadata:
                if key == identity.header and isinstance(value, str):
                    client = value
                    break
        if not client:
            client = _peer_host(call.peer)
    call.client_id = client[:_MAX_CLIENT_ID]
    client_class = ""
    if identity.class_claim and claims:
        named_class = claims.get(identity.class_claim)
        if isinstance(named_class, str) and named_class in a.class_names:
            client_class = named_class
    call.client_class = client_class or identity.classes.get(call.client_id, identity.default_class)


def _bearer(value: str | bytes) -> str | None:
    if not isinstance(value, str) or value[:7].lower() != _BEARER:
        return None
    token = value[7:].strip()
    return token or None


def _claim_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    return json.dumps(value, separators=(",", ":"))


def _peer_host(peer: str) -> str:
    """ipv4:10.0.0.1:5000 -> 10.0.0.1; ipv6:[::1]:5000 -> ::1; a bare address stays as it is."""
    kind, sep, rest = peer.partition(":")
    if sep and kind in ("ipv4", "ipv6"):
        host = rest.rpartition(":")[0]
        return host.strip("[]")
    return peer
