"""A JWKS as an immutable snapshot: its keys by kid, its generation and its state. No I/O.

`from_jwks(document)` imports the asymmetric public keys of a JWKS (RFC 7517); keys that are
private, symmetric ("oct") or unusable are left out, so an HS* token can never meet a key it
could be checked with. Knows nothing about where the document came from.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from joserfc import jwk
from joserfc.errors import JoseError

# Key types an allowed algorithm can use (RS256: RSA, ES256: EC P-256, EdDSA/Ed25519: OKP).
KEY_TYPES: Final = {"RS256": "RSA", "ES256": "EC", "EdDSA": "OKP", "Ed25519": "OKP"}
# A JWKS document larger than this, or with more keys, is refused: it comes from outside.
MAX_JWKS_BYTES: Final = 1 << 20
MAX_KEYS: Final = 100

Key = Any  # joserfc's key classes


class JwksError(ValueError):
    """A JWKS document that cannot be used; the text says why."""


@dataclass(frozen=True, slots=True)
class KeySet:
    keys: Mapping[str, Key] = field(default_factory=lambda: MappingProxyType({}))
    generation: int = 0
    # "ok", "stale" (the last fetch failed; these keys are the last good set) or "none".
    state: str = "none"
    detail: str = "no key set loaded yet"

    def describe(self) -> dict[str, object]:
        return {"state": self.state, "keys": sorted(self.keys), "detail": self.detail}


NO_KEYS: Final = KeySet()


def from_jwks(document: bytes | str, generation: int, where: str) -> KeySet:
    if len(document) > MAX_JWKS_BYTES:
        raise JwksError(f"{where}: {len(document)} bytes, more than the {MAX_JWKS_BYTES} allowed")
    try:
        doc = json.loads(document)
    except ValueError as e:
        raise JwksError(f"{where}: not JSON: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise JwksError(f'{where}: not a JWKS (no "keys" list)')
    if len(doc["keys"]) > MAX_KEYS:
        raise JwksError(f"{where}: {len(doc['keys'])} keys, more than the {MAX_KEYS} allowed")
    keys: dict[str, Key] = {}
    for i, entry in enumerate(doc["keys"]):
        if not isinstance(entry, dict) or entry.get("kty") not in ("RSA", "EC", "OKP"):
            continue
        if "d" in entry or entry.get("use", "sig") != "sig":
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid:
            kid = f"#{i}"
        try:
            keys[kid] = jwk.import_key(entry)
        except (JoseError, ValueError, TypeError):
            continue
    if not keys:
        raise JwksError(f"{where}: no usable public signing key (RSA, EC P-256 or Ed25519)")
    return KeySet(MappingProxyType(keys), generation, "ok", f"{len(keys)} keys from {where}")
