"""What an attack is and reports, how its answer is judged, and the numbers the suite assumes.

An attack runs against one target (host, port, its process and the model's) for a bounded time on
loopback and returns what it saw as checks: the answer the spec expects (`holds=False`: the exact
form, which reference proxies may give differently) and whether the target defended itself at
all (`holds=True`, with the class's own effects such as "the model was not dialled"). What every
class shares (survival, memory, a legitimate client, readiness) is judged by the harness. Knows
nothing about pytest, how targets are started or how results are printed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from inference import grpc_service_pb2 as pb
from tests.attacks import h2
from tests.attacks.h2 import Answer

# ---- Knobs: the one place where the suite assumes a number rather than reading it from the target ----
ATTACK_S: Final = 2.5  # how long each flood lasts
SETTLE_S: Final = 0.5  # how long a reading attacker reads on after its flood, for the answer
STALL_S: Final = 1.0  # a write blocked this long: the target stopped reading from the attacker (throttled)
# A connection that sends no preface must be closed within this. linkerd2-proxy's protocol detection
# waits 10 s; a relay with a lower default makes the suite faster (the test ends as soon as every
# such connection is closed), and one configured lower for speed gets its flag in SIDECAR_FLAGS
# (tests/attacks/test_attacks.py) and its value here.
PREFACE_TIMEOUT_S: Final = 10.0
# An advertised SETTINGS_MAX_CONCURRENT_STREAMS above this is no limit (nginx and Envoy's edge
# guidance: 128 and 100; Go's net/http2: 250). Without one, this many streams are opened.
MAX_SENSIBLE_STREAMS: Final = 1024
EXTRA_STREAMS: Final = 50  # streams opened past the advertised limit
# The connection flood: connections that send no byte, half a preface, a preface and then nothing.
SILENT, PARTIAL, IDLE = 800, 100, 100
BOMB_BLOCK: Final = 768 << 10  # the HPACK bomb's block, sent as 16 KiB frames
SINGLE_FRAME: Final = 3 << 19  # the single HEADERS frame (1.5 MiB), or the target's MAX_FRAME_SIZE if lower
PIPELINED: Final = 20  # calls of each kind left waiting behind a zero window

INFER: Final = "/inference.GRPCInferenceService/ModelInfer"
METADATA: Final = "/inference.GRPCInferenceService/ModelMetadata"
CHECK: Final = "/grpc.health.v1.Health/Check"
WATCH: Final = "/grpc.health.v1.Health/Watch"


@dataclass(frozen=True)
class Target:
    """Where an attack goes and whose processes it may look at."""

    name: str
    host: str
    port: int  # gRPC, HTTP/2 without TLS
    http_port: int | None  # the sidecar's REST port, for GET /readyz; None for nginx
    pid: int  # the front door's process (nginx: its master): survival and RSS
    model_pid: int  # the model behind it: its connections
    alive: Callable[[], bool]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    holds: bool = True  # part of "held"; False: the exact answer the spec asks of the relay


@dataclass(frozen=True)
class Result:
    summary: str  # what the attacker saw, in a few words
    checks: tuple[Check, ...]


@dataclass(frozen=True)
class Attack:
    name: str
    title: str
    reference: str  # the CVE or document naming the class
    expected: str  # the spec's answer, in words
    run: Callable[[Target], Result]


def infer_body(rows: int = 1) -> bytes:
    tensor = pb.ModelInferRequest.InferInputTensor(name="INPUT0", datatype="FP32", shape=[rows, 64])
    request = pb.ModelInferRequest(
        model_name="digits", inputs=[tensor], raw_input_contents=[bytes(256 * rows)]
    )
    return h2.grpc_message(request.SerializeToString())


METADATA_BODY: Final = h2.grpc_message(pb.ModelMetadataRequest(name="digits").SerializeToString())
HEALTH_BODY: Final = h2.grpc_message(b"")  # HealthCheckRequest{service: ""}


# ---- judging an answer ----


def defended(a: Answer) -> Check:
    ok = bool(a.goaways or a.resets or a.closed or a.stalled_s >= STALL_S)
    return Check("defended", ok, a.summary() if ok else f"neither closed nor throttled: {a.summary()}")


def goaway(a: Answer, code: int) -> Check:
    want = h2.error_name(code)
    ok = any(c == code for c, _ in a.goaways)  # a graceful GOAWAY(NO_ERROR) may come first
    return Check("answer", ok, f"GOAWAY({want}) expected; got {a.summary()}", holds=False)


def answered(a: Answer, expected: Check) -> Result:
    return Result(a.summary(), (expected, defended(a)))


def closed_or_throttled(a: Answer) -> Result:
    """For an attacker that does not read: it may never see a GOAWAY, so being cut off is the answer."""
    cut = bool(a.closed) or a.stalled_s >= STALL_S
    answer = Check(
        "answer", cut, f"closed, or writes stalled >= {STALL_S:g}s; got {a.summary()}", holds=False
    )
    # Told to calm down counts as a defence, though only being cut off or paused is what the spec asks.
    told = any(code == h2.ENHANCE_YOUR_CALM for code, _ in a.goaways)
    return Result(a.summary(), (answer, Check("defended", cut or told, a.summary())))


def until(seconds: float = ATTACK_S) -> float:
    return time.monotonic() + seconds
