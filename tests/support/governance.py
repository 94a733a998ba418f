"""Helpers for the governance tests: the counting model, JWTs and a JWKS, load at a fixed rate."""

from __future__ import annotations

import asyncio
import json
import pathlib
import sys
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
from joserfc import jwk, jwt
from joserfc.errors import SecurityWarning

from tests.support import REPO
from tests.support.procs import Proc, start_listening

MODEL = REPO / "tests" / "support" / "governed_model.py"
ISSUER = "https://id.test"
AUDIENCE = "digits"
ALGORITHMS = ["RS256", "ES256", "EdDSA", "HS256", "none"]


def start_governed_model(*, delay: float = 0.0, capacity: int = 1000) -> Proc:
    argv = [sys.executable, str(MODEL), "--port", "0", "--delay", str(delay), "--capacity", str(capacity)]
    return start_listening(argv, name="governed-model", ready_prefix="governed model listening on ")


async def model_counters(model: Proc) -> dict[str, Any]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{model.ports['grpc']}") as ch:
        raw = await ch.unary_unary("/test.Counters/Get")(b"", timeout=5)
    result: dict[str, Any] = json.loads(raw)
    return result


async def reset_model(model: Proc) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{model.ports['grpc']}") as ch:
        await ch.unary_unary("/test.Counters/Reset")(b"", timeout=5)


@dataclass
class Keys:
    rsa: Any = field(default_factory=lambda: jwk.RSAKey.generate_key(2048, parameters={"kid": "rsa-1"}))
    ec: Any = field(default_factory=lambda: jwk.ECKey.generate_key("P-256", parameters={"kid": "ec-1"}))
    ed: Any = field(default_factory=lambda: jwk.OKPKey.generate_key("Ed25519", parameters={"kid": "ed-1"}))

    def jwks(self) -> str:
        return json.dumps(jwk.KeySet([self.rsa, self.ec, self.ed]).as_dict(private=False))

    def write(self, path: pathlib.Path) -> pathlib.Path:
        path.write_text(self.jwks())
        return path

    def token(
        self, alg: str = "RS256", *, kid: str | None = None, lifetime: float = 300, **claims: Any
    ) -> str:
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "alice",
            "exp": now + lifetime,
            "nbf": now,
        }
        body.update(claims)
        key = {"RS256": self.rsa, "ES256": self.ec, "EdDSA": self.ed}[alg]
        header = {"alg": alg, "kid": kid if kid is not None else key.kid}
        with warnings.catch_warnings():  # EdDSA is Ed25519 since RFC 9864; joserfc warns on each use
            warnings.simplefilter("ignore", SecurityWarning)
            return jwt.encode(
                header, {k: v for k, v in body.items() if v is not None}, key, algorithms=ALGORITHMS
            )


def infer_request(model: str = "digits") -> bytes:
    from inference import grpc_service_pb2 as pb

    return pb.ModelInferRequest(model_name=model, id="1").SerializeToString()


INFER = "/inference.GRPCInferenceService/ModelInfer"


@dataclass
class Tally:
    codes: dict[str, int] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    sent: int = 0
    started: float = 0.0
    ended: float = 0.0
    # When each call was really sent (loop time): a client starved of CPU sends in bursts.
    send_times: list[float] = field(default_factory=list)

    def add(self, code: str, seconds: float) -> None:
        self.codes[code] = self.codes.get(code, 0) + 1
        self.latencies.setdefault(code, []).append(seconds)


async def open_loop(rate: float, duration: float, call: Callable[[], Awaitable[str]]) -> Tally:
    """Start `call` at `rate` per second for `duration` seconds, whatever the replies; count the codes."""
    tally = Tally()
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    async def one() -> None:
        started = loop.time()
        code = await call()
        tally.add(code, loop.time() - started)

    tally.started = start = loop.time()
    n = int(rate * duration)
    for i in range(n):
        wait = start + i / rate - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        tally.send_times.append(loop.time())
        task = loop.create_task(one())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        tally.sent += 1
    tally.ended = loop.time()
    if tasks:
        await asyncio.wait(tasks, timeout=30)
    return tally


def grpc_caller(channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...], timeout: float = 5.0,
                request: bytes | None = None) -> Callable[[], Awaitable[str]]:  # fmt: skip
    mc = channel.unary_unary(INFER)
    body = request if request is not None else infer_request()

    async def call() -> str:
        try:
            await mc(body, metadata=metadata, timeout=timeout)
        except grpc.aio.AioRpcError as e:
            return str(e.code().name)
        return "OK"

    return call


def ideal_admitted(send_times: list[float], rate: float, burst: float) -> int:
    """What a perfect token bucket admits of calls arriving at `send_times`: the most any limiter
    can admit of the load as it was really offered (arrivals that pause for longer than
    burst / rate offer less than the limit for that time, and no bucket makes it up). Written
    here, apart from sidecar/ratelimit, so that it is an independent oracle."""
    admitted = 0
    tokens, last = float(burst), send_times[0] if send_times else 0.0
    for t in send_times:
        tokens = min(float(burst), tokens + (t - last) * rate)
        last = t
        if tokens >= 1.0:
            tokens -= 1.0
            admitted += 1
    return admitted
