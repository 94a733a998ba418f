"""The JWKS from a URL: refetched for an unknown kid at most once per cooldown, the last good set kept
when a fetch fails, and readiness held while there has never been a key set."""

from __future__ import annotations

import asyncio
import json
import pathlib
import time

import grpc.aio
import pytest
from aiohttp import web

from tests.support.governance import AUDIENCE, INFER, ISSUER, Keys, infer_request, start_governed_model
from tests.support.procs import HOST, free_port, http_get, running, start_sidecar

pytestmark = pytest.mark.integration

POLICY = f"jwt: {{issuers: [{ISSUER}], audiences: [{AUDIENCE}]}}\n"


class JwksServer:
    def __init__(self) -> None:
        self.body = '{"keys": []}'
        self.status = 200
        self.fetches = 0
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def jwks(request: web.Request) -> web.Response:
            self.fetches += 1
            return web.Response(status=self.status, text=self.body, content_type="application/json")

        app = web.Application()
        app.router.add_get("/jwks.json", jwks)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, HOST, self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/jwks.json"


def only(keys: Keys, *kids: str) -> str:
    doc = json.loads(keys.jwks())
    return json.dumps({"keys": [k for k in doc["keys"] if k["kid"] in kids]})


async def code(port: int, token: str) -> str:
    async with grpc.aio.insecure_channel(f"{HOST}:{port}") as ch:
        try:
            await ch.unary_unary(INFER)(
                infer_request(), metadata=(("authorization", f"Bearer {token}"),), timeout=5
            )
        except grpc.aio.AioRpcError as e:
            return str(e.code().name)
    return "OK"


async def eventually(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.1)


async def test_rotation_cooldown_stale_keys_and_readiness(tmp_path: pathlib.Path):
    keys = Keys()
    server = JwksServer()
    server.status = 503  # no key set at first: the sidecar must not report ready
    await server.start()
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    try:
        with (
            running(start_governed_model()) as model,
            running(
                start_sidecar(
                    model.ports["grpc"],
                    "--policy-file",
                    str(policy),
                    "--jwks-url",
                    server.url,
                    "--jwks-cooldown",
                    "2s",
                    "--jwks-refresh-interval",
                    "1h",
                    wait_ready=False,
                )
            ) as sidecar,
        ):
            await eventually(lambda: server.fetches >= 1)
            status, body = http_get(sidecar.ports["http"], "/readyz")
            assert status == 503 and b"jwks" in body, body
            server.status, server.body = 200, only(keys, "rsa-1")
            await eventually(lambda: http_get(sidecar.ports["http"], "/readyz")[0] == 200)
            port = sidecar.ports["grpc"]
            assert await code(port, keys.token("RS256")) == "OK"

            # Rotation: the issuer starts signing with a key the sidecar has not fetched yet.
            server.body = only(keys, "rsa-1", "ec-1")
            await asyncio.sleep(2.2)  # past the cooldown of the last refresh
            before = server.fetches
            results = [await code(port, keys.token("ES256")) for _ in range(20)]
            assert results[0] == "UNAUTHENTICATED"
            await eventually(lambda: server.fetches > before)
            await eventually(
                lambda: (
                    json.loads(http_get(sidecar.ports["admin"], "/policy")[1])["jwks"]["keys"]
                    == ["ec-1", "rsa-1"]
                )
            )
            assert await code(port, keys.token("ES256")) == "OK"
            assert server.fetches - before == 1
            # A flood of made-up kids: one refetch per cooldown (2 s) at most, however many arrive.
            flood = server.fetches
            started = time.monotonic()
            for i in range(40):
                assert await code(port, keys.token("RS256", kid=f"made-up-{i}")) == "UNAUTHENTICATED"
            await asyncio.sleep(0.3)  # a refetch asked for last would have happened by now
            allowed = 1 + int((time.monotonic() - started) / 2.0)
            assert server.fetches - flood <= allowed, (server.fetches - flood, allowed)

            # The issuer's endpoint fails: the last good set stays, marked stale; still ready.
            server.status = 500
            await asyncio.sleep(2.2)  # past the cooldown: an unknown kid asks for a refetch, which fails
            assert await code(port, keys.token("RS256", kid="rsa-2")) == "UNAUTHENTICATED"
            await eventually(
                lambda: json.loads(http_get(sidecar.ports["admin"], "/policy")[1])["jwks"]["state"] == "stale"
            )
            assert await code(port, keys.token("RS256")) == "OK"
            assert http_get(sidecar.ports["http"], "/readyz")[0] == 200
            metrics = http_get(sidecar.ports["http"], "/metrics")[1].decode()
            assert 'ai_sidecar_jwks_state{state="stale"} 1.0' in metrics
            assert 'ai_sidecar_auth_failures_total{reason="unknown_kid"}' in metrics
    finally:
        await server.stop()
