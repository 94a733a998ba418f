"""The JWT battery: every bad token is refused with the right code and none reaches the model.

Real sidecars (relay and grpcio planes, and REST) verify tokens against a JWKS file; the model's
own call counter (read from the model, not the sidecar) shows that no refused call reached it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import pathlib
import urllib.error
import urllib.request
from collections.abc import Iterator

import grpc
import grpc.aio
import pytest

from tests.support.governance import (
    AUDIENCE,
    INFER,
    ISSUER,
    Keys,
    infer_request,
    model_counters,
    start_governed_model,
)
from tests.support.procs import HOST, Proc, running, start_sidecar

pytestmark = pytest.mark.integration

POLICY = f"""
version: auth-1
jwt:
  issuers: [{ISSUER}]
  audiences: [{AUDIENCE}]
  leeway: 5s
  forward_claims: {{sub: x-auth-sub, roles: x-auth-roles}}
rbac:
  rules:
    - {{name: everyone-digits, action: allow, models: [digits]}}
    - {{name: ops-only, action: allow, principals: {{roles: [ops]}}, models: [ops-model]}}
"""


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture(scope="module")
def model() -> Iterator[Proc]:
    with running(start_governed_model()) as proc:
        yield proc


@pytest.fixture(scope="module", params=["relay", "grpcio"])
def sidecar(request: pytest.FixtureRequest, model: Proc, keys: Keys, tmp_path_factory) -> Iterator[Proc]:
    d: pathlib.Path = tmp_path_factory.mktemp("auth")
    (d / "policy.yaml").write_text(POLICY)
    keys.write(d / "jwks.json")
    flags = (
        "--dataplane",
        request.param,
        "--policy-file",
        str(d / "policy.yaml"),
        "--jwks-file",
        str(d / "jwks.json"),
    )
    with running(start_sidecar(model.ports["grpc"], *flags)) as proc:
        yield proc


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forged(header: dict[str, object], claims: dict[str, object], key: bytes | None) -> str:
    signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if key is None:
        return signing + "."
    return signing + "." + _b64(hmac.new(key, signing.encode(), hashlib.sha256).digest())


def _claims() -> dict[str, object]:
    import time

    now = int(time.time())
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory", "exp": now + 300, "nbf": now}


def _tamper_payload(token: str) -> str:
    head, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "admin"
    return f"{head}.{_b64(json.dumps(claims).encode())}.{sig}"


def _tamper_header(token: str) -> str:
    head, payload, sig = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=="))
    header["typ"] = "JOSE"
    return f"{_b64(json.dumps(header).encode())}.{payload}.{sig}"


def battery(keys: Keys) -> list[tuple[str, list[tuple[str, str]]]]:
    public_pem = keys.rsa.as_pem(private=False)

    def bearer(token: str) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {token}")]

    good = keys.token()
    return [
        ("alg none", bearer(_forged({"alg": "none", "kid": "rsa-1"}, _claims(), None))),
        (
            "HS256 with the RSA public key",
            bearer(_forged({"alg": "HS256", "kid": "rsa-1"}, _claims(), public_pem)),
        ),
        ("expired", bearer(keys.token(lifetime=-60))),
        ("nbf in the future", bearer(keys.token(nbf=int(__import__("time").time()) + 600))),
        ("wrong aud", bearer(keys.token(aud="someone-else"))),
        ("wrong iss", bearer(keys.token(iss="https://evil.test"))),
        ("unknown kid", bearer(keys.token(kid="rsa-404"))),
        ("tampered payload", bearer(_tamper_payload(good))),
        ("tampered header", bearer(_tamper_header(good))),
        ("missing token", []),
        (
            "two authorization headers",
            [("authorization", f"Bearer {good}"), ("authorization", f"Bearer {good}")],
        ),
        ("a claim header without a token", [("x-auth-sub", "admin")]),
    ]


async def _grpc_code(
    port: int, metadata: list[tuple[str, str]], path: str = INFER, model: str = "digits"
) -> tuple[str, str]:
    async with grpc.aio.insecure_channel(f"{HOST}:{port}") as ch:
        try:
            await ch.unary_unary(path)(infer_request(model), metadata=tuple(metadata), timeout=5)
        except grpc.aio.AioRpcError as e:
            return str(e.code().name), e.details() or ""
    return "OK", ""


async def test_every_bad_token_is_refused_and_none_reaches_the_model(sidecar: Proc, model: Proc, keys: Keys):
    before = (await model_counters(model))["calls"]
    for name, metadata in battery(keys):
        code, details = await _grpc_code(sidecar.ports["grpc"], metadata)
        assert code == "UNAUTHENTICATED", f"{name}: {code} {details}"
        assert details, f"{name}: the refusal says why"
    # A token in the query string is never read: the path is not a method, and no token came.
    code, _ = await _grpc_code(sidecar.ports["grpc"], [], f"{INFER}?access_token={keys.token()}")
    assert code == "UNAUTHENTICATED"
    # A 1 MB token: refused before it gets anywhere near the model, at the transport's header limit
    # or the verifier's size limit.
    code, _ = await _grpc_code(sidecar.ports["grpc"], [("authorization", "Bearer " + "a" * (1 << 20))])
    assert code in ("UNAUTHENTICATED", "RESOURCE_EXHAUSTED", "INTERNAL", "UNAVAILABLE"), code
    assert (await model_counters(model))["calls"] == before, "a refused call reached the model"
    # The control: a good token of each algorithm reaches it, exactly once each.
    for alg in ("RS256", "ES256", "EdDSA"):
        code, details = await _grpc_code(
            sidecar.ports["grpc"], [("authorization", f"Bearer {keys.token(alg)}")]
        )
        assert code == "OK", f"{alg}: {details}"
    assert (await model_counters(model))["calls"] == before + 3


async def test_claims_reach_the_model_and_client_sent_claim_headers_never_do(
    sidecar: Proc, model: Proc, keys: Keys
):
    token = keys.token(sub="alice", roles=["reader", "ops"])
    metadata = [("authorization", f"Bearer {token}"), ("x-auth-sub", "admin"), ("x-auth-roles", "root")]
    assert (await _grpc_code(sidecar.ports["grpc"], metadata))[0] == "OK"
    seen = (await model_counters(model))["last_metadata"]
    assert seen.get("x-auth-sub") == "alice"
    assert seen.get("x-auth-roles") == "reader,ops"
    assert "authorization" not in seen, "the token is stripped unless forward_token is set"


async def test_unknown_kid_message_names_it(sidecar: Proc, keys: Keys):
    _, details = await _grpc_code(
        sidecar.ports["grpc"], [("authorization", f"Bearer {keys.token(kid='rsa-404')}")]
    )
    assert "rsa-404" in details


def _rest(port: int, headers: dict[str, str], query: str = "", model: str = "digits") -> int:
    body = json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}).encode()
    req = urllib.request.Request(
        f"http://{HOST}:{port}/v2/models/{model}/infer{query}", data=body, headers=headers
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return e.code


async def test_rest_battery(sidecar: Proc, model: Proc, keys: Keys):
    before = (await model_counters(model))["calls"]
    for name, metadata in battery(keys):
        if len(metadata) > 1:
            continue  # two headers: _rest_twice below
        assert _rest(sidecar.ports["http"], dict(metadata)) == 401, name
    assert _rest(sidecar.ports["http"], {}, f"?access_token={keys.token()}") == 401
    assert _rest_twice(sidecar.ports["http"], f"Bearer {keys.token()}") == 401
    assert _rest(sidecar.ports["http"], {"authorization": "Bearer " + "a" * (1 << 20)}) in (400, 401, 431)
    assert (await model_counters(model))["calls"] == before
    assert _rest(sidecar.ports["http"], {"authorization": f"Bearer {keys.token()}"}) == 200
    assert (await model_counters(model))["calls"] == before + 1


async def test_rbac_by_model_and_claims_on_grpc_and_rest(sidecar: Proc, model: Proc, keys: Keys):
    port, http = sidecar.ports["grpc"], sidecar.ports["http"]
    reader = [("authorization", f"Bearer {keys.token(roles=['reader'])}")]
    ops = [("authorization", f"Bearer {keys.token(roles=['ops'])}")]
    before = (await model_counters(model))["calls"]
    code, details = await _grpc_code(port, reader, model="ops-model")
    assert code == "PERMISSION_DENIED" and 'model "ops-model"' in details and "default deny" in details
    code, _ = await _grpc_code(port, reader, model="")
    assert code == "PERMISSION_DENIED", "a request naming no model matches no rule that lists models"
    assert _rest(http, dict(reader), model="ops-model") == 403
    assert (await model_counters(model))["calls"] == before, "a denied call reached the model"
    assert (await _grpc_code(port, ops, model="ops-model"))[0] == "OK"
    assert _rest(http, dict(ops), model="ops-model") == 200
    assert (await _grpc_code(port, reader))[0] == "OK"
    assert (await model_counters(model))["calls"] == before + 3


def _rest_twice(port: int, authorization: str) -> int:
    """A REST call with two Authorization headers (urllib folds repeats; http.client does not)."""
    import http.client

    body = json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}).encode()
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.putrequest("POST", "/v2/models/digits/infer")
        conn.putheader("Authorization", authorization)
        conn.putheader("Authorization", authorization)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        return conn.getresponse().status
    finally:
        conn.close()
