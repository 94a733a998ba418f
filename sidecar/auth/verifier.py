"""Bearer JWT verification: allow-listed asymmetric algorithms, iss/aud/exp/nbf with leeway, a cache.

`verify(token)` returns the token's claims or raises AuthError with a message saying why. A
verified token is cached (by its exact text, bounded) until it expires or the key set or policy
changes: a signature check costs tens to hundreds of microseconds, more than the relay's whole
budget per call. An unknown `kid` calls `on_unknown_kid` (the JWKS source refetches, at most
once per cooldown) and the token is refused now; the request path never waits for keys.
Knows nothing about headers, transports or where keys come from.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import warnings
from collections.abc import Callable
from typing import Final

from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning

from sidecar.auth.keys import KEY_TYPES, Key, KeySet
from sidecar.core.call import Claims
from sidecar.policy.document import Jwt

_MAX_HEADER: Final = 2048


class AuthError(Exception):
    """A token was refused: `reason` is a bounded metric label, the text says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Verifier:
    def __init__(
        self,
        settings: Jwt,
        keys: Callable[[], KeySet],
        *,
        on_unknown_kid: Callable[[], None] = lambda: None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._s = settings
        self._keys = keys
        self._on_unknown_kid = on_unknown_kid
        self._clock = wall_clock
        self._cache: dict[str, tuple[Claims, float, float, int]] = {}  # token -> claims, exp, nbf, generation
        self.cache_hits = 0
        self.verified = 0

    def verify(self, token: str) -> Claims:
        now = self._clock()
        leeway = self._s.leeway
        cached = self._cache.get(token)
        if cached is not None:
            claims, exp, nbf, generation = cached
            if generation == self._keys().generation and now <= exp + leeway and now >= nbf - leeway:
                self.cache_hits += 1
                return claims
            del self._cache[token]
        if len(token) > self._s.max_token_bytes:
            raise AuthError(
                "too_large", f"token is {len(token)} bytes, more than the {self._s.max_token_bytes} allowed"
            )
        keys = self._keys()
        alg, kid = self._header(token)
        key = self._key(keys, alg, kid)
        try:
            if alg == "EdDSA":
                # joserfc warns on each EdDSA check (RFC 9864 names it Ed25519); the allow-list is ours.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", SecurityWarning)
                    verified = jwt.decode(token, key, algorithms=[alg])
            else:
                verified = jwt.decode(token, key, algorithms=[alg])
        except JoseError as e:
            raise AuthError("bad_signature", f"token signature does not verify ({e.error})") from None
        except (ValueError, TypeError):
            raise AuthError("malformed", "token is not a well-formed JWS") from None
        claims = verified.claims
        exp, nbf = self._check_claims(claims, now)
        self.verified += 1
        if self._s.cache_size:
            if len(self._cache) >= self._s.cache_size:
                del self._cache[next(iter(self._cache))]
            self._cache[token] = (claims, exp, nbf, keys.generation)
        return claims

    def clear(self) -> None:
        self._cache.clear()

    def _header(self, token: str) -> tuple[str, str]:
        head, dot, _ = token.partition(".")
        if not dot or token.count(".") != 2 or len(head) > _MAX_HEADER:
            raise AuthError("malformed", "token is not a compact JWS (three base64url parts)")
        try:
            header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
        except (ValueError, binascii.Error):
            raise AuthError("malformed", "token header is not base64url JSON") from None
        if not isinstance(header, dict):
            raise AuthError("malformed", "token header is not a JSON object")
        alg = header.get("alg")
        if alg not in self._s.algorithms:
            allowed = ", ".join(sorted(self._s.algorithms))
            raise AuthError("bad_alg", f"token alg {str(alg)[:20]!r} is not allowed (allowed: {allowed})")
        if "crit" in header:
            raise AuthError("malformed", "token header has crit parameters, none of which are understood")
        kid = header.get("kid", "")
        return str(alg), kid if isinstance(kid, str) else ""

    def _key(self, keys: KeySet, alg: str, kid: str) -> Key:
        if kid:
            key = keys.keys.get(kid)
            if key is None:
                self._on_unknown_kid()
                raise AuthError("unknown_kid", f"token kid {kid[:64]!r} is not in the key set")
        else:
            usable = [k for k in keys.keys.values() if k.key_type == KEY_TYPES[alg]]
            if len(usable) != 1:
                raise AuthError(
                    "unknown_kid", "token has no kid, and no single key in the set fits its alg"
                )
            key = usable[0]
        if key.key_type != KEY_TYPES[alg]:
            raise AuthError("bad_alg", f"token alg {alg} does not fit key {kid!r} ({key.key_type})")
        return key

    def _check_claims(self, claims: Claims, now: float) -> tuple[float, float]:
        s = self._s
        leeway = s.leeway
        exp = claims.get("exp")
        if exp is None:
            if s.require_exp:
                raise AuthError("expired", "token has no exp claim")
            exp = float("inf")
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            raise AuthError("malformed", "token exp is not a number")
        if now > exp + leeway:
            raise AuthError("expired", f"token expired {now - exp:.0f} s ago (leeway {leeway:g} s)")
        nbf = claims.get("nbf", 0)
        if isinstance(nbf, bool) or not isinstance(nbf, int | float):
            raise AuthError("malformed", "token nbf is not a number")
        if now < nbf - leeway:
            raise AuthError(
                "not_yet_valid", f"token not valid for {nbf - now:.0f} s more (nbf; leeway {leeway:g} s)"
            )
        iss = claims.get("iss")
        if iss not in s.issuers:
            raise AuthError("bad_issuer", f"token iss {str(iss)[:100]!r} is not an accepted issuer")
        aud = claims.get("aud")
        auds = (
            {aud}
            if isinstance(aud, str)
            else {a for a in aud if isinstance(a, str)}
            if isinstance(aud, list)
            else set()
        )
        if not auds & s.audiences:
            raise AuthError(
                "bad_audience", f"token aud {str(aud)[:100]!r} names none of {sorted(s.audiences)}"
            )
        return float(exp), float(nbf)
