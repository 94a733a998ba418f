"""The JWT verifier with a fake wall clock: allow-list, claims with leeway, the cache, unknown kids."""

import dataclasses
from typing import Any

import pytest

from sidecar.auth.keys import KeySet, from_jwks
from sidecar.auth.verifier import AuthError, Verifier
from sidecar.policy.document import Jwt
from tests.support.governance import AUDIENCE, ISSUER, Keys

NOW = 1_700_000_000.0
SETTINGS = Jwt(issuers=frozenset({ISSUER}), audiences=frozenset({AUDIENCE}), leeway=30.0)


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


def verifier(
    keys: Keys, clock: list[float], settings: Jwt = SETTINGS, refetches: list[int] | None = None
) -> Verifier:
    key_set = from_jwks(keys.jwks(), 1, "test")
    return Verifier(
        settings, lambda: key_set, wall_clock=lambda: clock[0],
        on_unknown_kid=lambda: refetches.append(1) if refetches is not None else None,
    )  # fmt: skip


def token(keys: Keys, kid: str | None = None, **claims: object) -> str:
    base: dict[str, Any] = {"exp": int(NOW) + 300, "nbf": int(NOW)}
    base.update(claims)
    return keys.token("RS256", kid=kid, **base)


def reason(v: Verifier, t: str) -> str:
    with pytest.raises(AuthError) as e:
        v.verify(t)
    return e.value.reason


def test_each_allowed_algorithm_verifies(keys: Keys):
    v = verifier(keys, [NOW])
    for alg in ("RS256", "ES256", "EdDSA"):
        assert v.verify(keys.token(alg, exp=int(NOW) + 60, nbf=int(NOW)))["sub"] == "alice"


def test_exp_and_nbf_have_leeway(keys: Keys):
    clock = [NOW]
    v = verifier(keys, clock, dataclasses.replace(SETTINGS, cache_size=0))
    t = token(keys, exp=int(NOW) - 20, nbf=int(NOW) + 20)
    assert v.verify(t)  # both within the 30 s leeway
    clock[0] = NOW + 11
    assert reason(v, t) == "expired"
    clock[0] = NOW - 11
    assert reason(v, t) == "not_yet_valid"


def test_issuer_audience_and_algorithm_allow_list(keys: Keys):
    v = verifier(keys, [NOW], dataclasses.replace(SETTINGS, algorithms=frozenset({"ES256"})))
    assert reason(v, token(keys)) == "bad_alg"  # RS256 not on this allow-list
    v = verifier(keys, [NOW])
    assert reason(v, token(keys, iss="https://other")) == "bad_issuer"
    assert reason(v, token(keys, aud=["x", "y"])) == "bad_audience"
    assert v.verify(token(keys, aud=["x", AUDIENCE]))


def test_a_kid_of_another_key_type_is_refused(keys: Keys):
    v = verifier(keys, [NOW])
    assert reason(v, keys.token("RS256", kid="ec-1", exp=int(NOW) + 60)) in ("bad_alg", "bad_signature")


def test_unknown_kid_asks_for_a_refetch_and_is_refused_now(keys: Keys):
    refetches: list[int] = []
    v = verifier(keys, [NOW], refetches=refetches)
    assert reason(v, token(keys, kid="nope")) == "unknown_kid"
    assert refetches == [1]


def test_the_cache_answers_until_exp_and_forgets_on_a_new_key_set(keys: Keys):
    clock = [NOW]
    sets = [from_jwks(keys.jwks(), 1, "t")]
    v = Verifier(SETTINGS, lambda: sets[0], wall_clock=lambda: clock[0])
    t = token(keys, exp=int(NOW) + 10)
    v.verify(t)
    v.verify(t)
    assert (v.verified, v.cache_hits) == (1, 1)
    clock[0] = NOW + 41  # past exp + leeway: the cached entry is no longer good
    assert reason(v, t) == "expired"
    clock[0] = NOW
    sets[0] = KeySet(sets[0].keys, 2, "ok")  # a new key set: verified again
    v.verify(t)
    assert v.verified == 2


def test_oversized_and_malformed_tokens(keys: Keys):
    v = verifier(keys, [NOW])
    assert reason(v, "a" * 9000) == "too_large"
    assert reason(v, "not-a-jwt") == "malformed"
    assert reason(v, "e30.e30.") in ("bad_alg", "malformed")


def test_a_jwks_keeps_only_public_asymmetric_signing_keys(keys: Keys):
    import json

    doc = json.loads(keys.jwks())
    doc["keys"].append({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"})
    doc["keys"].append({**doc["keys"][0], "kid": "enc", "use": "enc"})
    key_set = from_jwks(json.dumps(doc), 1, "t")
    assert sorted(key_set.keys) == ["ec-1", "ed-1", "rsa-1"]
