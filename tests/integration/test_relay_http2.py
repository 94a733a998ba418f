"""HTTP/2 at its limits through the sidecar, on both data planes: 64 MiB messages, small and large
flow-control windows, header blocks split into CONTINUATIONs, SETTINGS changes, a client that
vanishes mid-stream; and the access log and metrics of the same calls equal on both planes.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import grpc
import grpc.aio
import hpack
import pytest

from inference import grpc_service_pb2 as pb
from inference import grpc_service_pb2_grpc as pb_grpc
from sidecar.h2 import frames as f
from tests.support import REPO
from tests.support.digits import images, raw_request
from tests.support.procs import HOST, Proc, http_get, running, start_listening, start_model, start_sidecar

pytestmark = pytest.mark.integration

BIG = [("grpc.max_receive_message_length", 128 << 20), ("grpc.max_send_message_length", 128 << 20)]


@pytest.fixture(scope="module")
def backend() -> Iterator[Proc]:
    argv = [sys.executable, str(REPO / "tests/support/stream_backend.py")]
    with running(start_listening(argv, name="streams", ready_prefix="stream backend listening on ")) as proc:
        yield proc


def _sidecar(backend: Proc, dataplane: str) -> Proc:
    return start_sidecar(backend.ports["grpc"], "--dataplane", dataplane, "--access-log", "on")


@pytest.fixture(scope="module")
def stack(backend: Proc, dataplane: str) -> Iterator[Proc]:
    with running(_sidecar(backend, dataplane)) as proc:
        yield proc


def _channel(proc: Proc, *options: tuple[str, int]) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(f"{HOST}:{proc.ports['grpc']}", options=[*BIG, *options])


async def test_64_mib_messages_cross_both_ways(stack):
    message = (bytes(range(256)) * (1 << 18))[:-6]  # the reply, with "unary:", is 64 MiB: the default limit
    async with _channel(stack) as ch:
        reply = await ch.unary_unary("/test.Streams/Unary")(message, timeout=60)
    assert len(reply) == len(message) + 6 and reply[6:] == message


@pytest.mark.parametrize("window", [65535, 8 << 20], ids=["64KiB", "8MiB"])
async def test_streams_flow_under_small_and_large_windows(stack, window):
    # lookahead_bytes is the window grpc announces; without BDP probing it stays there.
    options = (("grpc.http2.lookahead_bytes", window), ("grpc.http2.bdp_probe", 0))
    chunk = b"w" * (256 << 10)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(24):  # 6 MiB each way, many windows' worth at 64 KiB
            yield chunk[:-2] + bytes((i, 0))

    async with _channel(stack, *options) as ch:
        echoed = [m async for m in ch.stream_stream("/test.Streams/Bidi")(chunks(), timeout=60)]
        joined = await ch.stream_unary("/test.Streams/ClientStream")(chunks(), timeout=60)
    assert [m[-2] for m in echoed] == list(range(24)) and all(len(m) == len(chunk) + 5 for m in echoed)
    assert len(joined) == 24 * len(chunk) + 23


async def test_header_blocks_larger_than_a_frame_cross_as_continuations(stack, dataplane, request):
    if dataplane == "grpcio":
        reason = "grpcio's server refuses metadata over 16 KiB (grpc.max_metadata_size's hard limit)"
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
    big = "v" * 40_000  # > 16 KiB: HEADERS + CONTINUATIONs, from the client and back from the model
    async with _channel(stack, ("grpc.max_metadata_size", 1 << 20)) as ch:
        call = ch.unary_unary("/test.Streams/Unary")(b"x", metadata=[("x-echo-big", big)], timeout=10)
        assert await call == b"unary:x"
        assert dict(await call.initial_metadata())["x-echo-big"] == big


async def _raw_calls(port: int, settings: dict[int, int], calls: int) -> list[tuple[str, int, int]]:
    """Unary calls over one hand-driven connection: (grpc-status, response bytes, largest DATA frame)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    encoder, decoder = hpack.Encoder(), hpack.Decoder()
    decoder.max_allowed_table_size = settings.get(f.HEADER_TABLE_SIZE, 4096)
    payload = b"".join(k.to_bytes(2, "big") + v.to_bytes(4, "big") for k, v in settings.items())
    writer.write(f.PREFACE + f.frame(f.SETTINGS, 0, 0, payload) + f.window_update(0, 64 << 20))
    results = []
    try:
        async with asyncio.timeout(20):
            for i in range(calls):
                sid = 2 * i + 1
                block = encoder.encode(
                    [
                        (":method", "POST"),
                        (":scheme", "http"),
                        (":path", "/test.Streams/ServerStream"),
                        (":authority", "relay-test"),
                        ("content-type", "application/grpc"),
                        ("te", "trailers"),
                        (f"x-call-{i}", "v" * 50),  # a new table entry each call
                    ]
                )
                request = b"3000"
                message = b"\x00" + len(request).to_bytes(4, "big") + request
                writer.write(f.frame(f.HEADERS, f.END_HEADERS, sid, block))
                writer.write(f.frame(f.DATA, f.END_STREAM, sid, message))
                status, size, largest = "", 0, 0
                while not status:
                    length, kind, flags, got = f.parse_header(await reader.readexactly(9))
                    body = await reader.readexactly(length)
                    if kind == f.SETTINGS and not flags & f.ACK:
                        writer.write(f.settings_ack())
                    elif kind == f.PING and not flags & f.ACK:
                        writer.write(f.ping_ack(body))
                    elif kind == f.DATA and got == sid:
                        size += length
                        largest = max(largest, length)
                        writer.write(f.window_update(sid, length) if length else b"")
                    elif kind == f.HEADERS:
                        fields = {str(k): str(v) for k, v in decoder.decode(f.headers_fragment(flags, body))}
                        if flags & f.END_STREAM:
                            status = fields.get("grpc-status", "none")
                    elif kind in (f.GOAWAY, f.RST_STREAM):
                        raise AssertionError(f"frame {kind} with {body!r}")
                results.append((status, size, largest))
    finally:
        writer.close()
    return results


@pytest.mark.parametrize(
    "settings",
    [
        {f.HEADER_TABLE_SIZE: 0},
        {f.HEADER_TABLE_SIZE: 256, f.MAX_FRAME_SIZE: 1 << 20, 0x4: 8 << 20},
    ],
    ids=["no-table", "small-table-big-frames"],
)
async def test_a_clients_settings_reach_the_model_and_the_relay_follows_them(stack, settings):
    results = await _raw_calls(stack.ports["grpc"], settings, calls=4)
    # 3000 messages "item-N" of 6-9 bytes, each with its 5-byte prefix.
    expected = sum(len(f"item-{i}") + 5 for i in range(3000))
    assert [(status, size) for status, size, _ in results] == [("0", expected)] * 4


async def test_a_client_vanishing_mid_stream_leaves_nothing_behind(stack):
    block = hpack.Encoder().encode(
        [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/test.Streams/ClientStream"),
            (":authority", "x"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
    )
    for _ in range(10):
        _, writer = await asyncio.open_connection(HOST, stack.ports["grpc"])
        writer.write(f.PREFACE + f.frame(f.SETTINGS, 0, 0) + f.frame(f.HEADERS, f.END_HEADERS, 1, block))
        writer.write(f.frame(f.DATA, 0, 1, b"\x00\x00\x00\x01\x00" + b"half"))  # a message cut short
        await writer.drain()
        writer.transport.abort()
    async with _channel(stack) as ch:
        assert await ch.unary_unary("/test.Streams/Unary")(b"after", timeout=5) == b"unary:after"
    deadline = time.monotonic() + 5
    while _in_flight(stack) != 0 and time.monotonic() < deadline:  # noqa: ASYNC110 (another process)
        await asyncio.sleep(0.05)
    assert _in_flight(stack) == 0


def _in_flight(proc: Proc) -> float:
    _, body = http_get(proc.ports["http"], "/metrics")
    match = re.search(r'^ai_sidecar_requests_in_flight\{direction="ingress"\} (\S+)$', body.decode(), re.M)
    assert match is not None
    return float(match.group(1))


# ---- the same calls on both data planes: equal access log records and request counts ----

_PARITY_RUNS: dict[str, tuple[Counter[tuple[str, ...]], Counter[tuple[str, str, str]]]] = {}


async def _parity_calls(proc: Proc) -> None:
    async with _channel(proc) as ch:
        stub = pb_grpc.GRPCInferenceServiceStub(ch)
        for rows in (1, 7):
            assert (await stub.ModelInfer(raw_request(images()[0][:rows]), timeout=5)).outputs
        assert (await stub.ServerReady(pb.ServerReadyRequest(), timeout=5)).ready
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.ModelMetadata(pb.ModelMetadataRequest(name="nope"), timeout=5)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND


def _records(proc: Proc) -> list[dict[str, object]]:
    return [json.loads(line) for line in proc.log().splitlines() if line.startswith('{"time"')]


async def test_access_log_and_metrics_record_the_same_calls_alike(dataplane):
    with running(start_model()) as model, running(_sidecar(model, dataplane)) as proc:
        await _parity_calls(proc)
        await asyncio.sleep(0.3)  # the access log is written by a thread
        records = _records(proc)
        _, text = http_get(proc.ports["http"], "/metrics")
    counted = _request_counts(text.decode())
    keys = ("method", "code", "protocol")
    # Byte counts are compared for the contract's calls: grpcio's handlers count only those.
    logged: Counter[tuple[str, ...]] = Counter()
    for r in records:
        unary = str(r["method"]).startswith("/inference.")
        sizes = (str(r.get("request_bytes")), str(r.get("response_bytes"))) if unary else ()
        logged[(*(str(r[k]) for k in keys), *sizes)] += 1
    _PARITY_RUNS[dataplane] = (logged, counted)
    assert sum(logged.values()) == 4 and sum(counted.values()) == 4
    assert sum(n for key, n in logged.items() if key[-1] not in ("None", "0")) == 3
    if len(_PARITY_RUNS) == 2:
        assert _PARITY_RUNS["grpcio"] == _PARITY_RUNS["relay"]


def _request_counts(text: str) -> Counter[tuple[str, str, str]]:
    out: Counter[tuple[str, str, str]] = Counter()
    for line in text.splitlines():
        if line.startswith("ai_sidecar_requests_total{") and 'direction="ingress"' in line:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            out[(labels["service"], labels["method"], labels["code"])] += int(float(line.rsplit(" ", 1)[1]))
    return out
