"""Should one model connection serve many clients? What the relay's 1:1 connections cost the model,
and what sharing one (stream remapping) would cost the relay per call.

The relay opens one model connection per client connection (sidecar/ingress/relay/): frames pass
in spans with their stream ids and HPACK blocks as they are. Sharing one upstream connection
between clients would save the model a connection per client, and cost the relay, on every call:
a new stream id in the header of every frame it passes (no span passes as it is any more), and
every header block re-encoded (request blocks into the shared connection's HPACK context, the
model's response headers and trailers back into each client's). This measures both sides:

1. the model: RSS, file descriptors and handshake time per open HTTP/2 connection (connections
   held idle after the preface and SETTINGS, as relayed client connections hold theirs), for the
   Python digits model (grpcio) and any other model given by --model-cmd;
2. the relay: the CPU per call of the work sharing adds, timed in this process on a typical
   ModelInfer call's frames (request HEADERS and DATA, response HEADERS, DATA and trailers).

    python bench/upstream_sharing.py                     # 500 connections, 3 repeats
    python bench/upstream_sharing.py --connections 1000 --repeat 5

Prints markdown tables (medians of the repeats) and writes a JSON record to bench/results/.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import socket
import statistics
import sys
import time
import timeit
from typing import Any

BENCH = pathlib.Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "examples" / "python"))

import hpack  # noqa: E402
import procstat  # noqa: E402

from local_stack import HOST, running, start_model  # noqa: E402
from sidecar.h2 import frames as f  # noqa: E402
from sidecar.h2.hpack_decoder import Decoder, Headers  # noqa: E402
from sidecar.h2.hpack_encoder import table_size_update  # noqa: E402

RESULTS = BENCH / "results"


class ClearingEncoder(hpack.Encoder):
    """An encoder whose first block empties the model's decoder table before using it (RFC 7541 6.3):
    what a shared upstream connection would need per client, as the relay once re-encoded."""

    def __init__(self, table_size: int) -> None:
        super().__init__()
        self.header_table_size = table_size
        self.table_size_changes: list[int] = []  # announced by hand, below
        self._size = table_size
        self._first = True

    def encode_fields(self, headers: Headers) -> bytes:
        block: bytes = self.encode([(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers])
        if self._first:
            self._first = False
            # Size updates to 0 (evicts the model's whole table) and back, then the fields.
            block = table_size_update(0) + table_size_update(self._size) + block
        return block

REQUEST = [
    (":method", "POST"), (":scheme", "http"), (":path", "/inference.GRPCInferenceService/ModelInfer"),
    (":authority", "digits.default.svc:8081"), ("content-type", "application/grpc"), ("te", "trailers"),
    ("grpc-accept-encoding", "identity,deflate,gzip"), ("user-agent", "grpc-python/1.66.1 grpc-c/43.0.0"),
    ("grpc-timeout", "999m"), ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
]  # fmt: skip
RESPONSE = [(":status", "200"), ("content-type", "application/grpc"), ("grpc-accept-encoding", "identity")]
TRAILERS = [("grpc-status", "0")]


# ---- 1. the model's side: what an open connection costs it ----


def _handshake(port: int) -> socket.socket:
    s = socket.create_connection((HOST, port))
    s.sendall(f.PREFACE + f.frame(f.SETTINGS, 0, 0))
    got = b""
    while True:  # the model's SETTINGS (the first frame a server sends)
        got += s.recv(65536)
        if len(got) >= f.HEADER_LEN:
            length, kind, _, _ = f.parse_header(got[: f.HEADER_LEN])
            if kind == f.SETTINGS and len(got) >= f.HEADER_LEN + length:
                break
    return s


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def model_side(pid: int, port: int, n: int) -> dict[str, float]:
    for s in [_handshake(port) for _ in range(20)]:  # warm: first connections allocate pools
        s.close()
    time.sleep(0.5)
    rss0, fds0 = procstat.rss_bytes(pid), _fds(pid)
    cpu0 = procstat.cpu_seconds(pid)
    start = time.perf_counter()
    socks = [_handshake(port) for _ in range(n)]
    took = time.perf_counter() - start
    time.sleep(1.0)  # the server's per-connection setup settles
    rss1, fds1 = procstat.rss_bytes(pid), _fds(pid)
    cpu1 = procstat.cpu_seconds(pid)
    time.sleep(5.0)  # held idle: what the model spends on connections that carry nothing
    cpu_idle = procstat.cpu_seconds(pid) - cpu1
    for s in socks:
        s.close()
    return {
        "rss_kib_per_connection": (rss1 - rss0) / n / 1024,
        "fds_per_connection": (fds1 - fds0) / n,
        "handshake_us": took / n * 1e6,
        "model_cpu_us_per_handshake": (cpu1 - cpu0) / n * 1e6,
        "model_cpu_ms_per_s_idle": cpu_idle / 5.0 * 1e3,
    }


# ---- 2. the relay's side: what sharing would add to every call ----


def _call_frames() -> tuple[bytes, bytes, list[bytes]]:
    client = hpack.Encoder()
    model = hpack.Encoder()
    request_block = client.encode(REQUEST)
    client.encode(REQUEST)  # a steady block: the second call on a connection
    steady = client.encode(REQUEST)
    model.encode(RESPONSE)
    response_frames = [
        f.frame(f.HEADERS, f.END_HEADERS, 1, model.encode(RESPONSE)),
        f.frame(f.DATA, 0, 1, bytes(5 + 60)),
        f.frame(f.HEADERS, f.END_HEADERS | f.END_STREAM, 1, model.encode(TRAILERS)),
    ]
    request_frames = [
        f.frame(f.HEADERS, f.END_HEADERS, 1, steady),
        f.frame(f.DATA, f.END_STREAM, 1, bytes(5 + 300)),
    ]
    del request_block
    return b"".join(request_frames), b"".join(response_frames), request_frames + response_frames


def _remap(span: bytes, new_sid: int) -> bytes:
    """Each frame of `span` with its stream id replaced: what a shared connection must do per frame."""
    out, pos, n = [], 0, len(span)
    sid = new_sid.to_bytes(4, "big")
    while pos < n:
        length = int.from_bytes(span[pos : pos + 3], "big")
        end = pos + f.HEADER_LEN + length
        out.append(span[pos : pos + 5])
        out.append(sid)
        out.append(span[pos + f.HEADER_LEN : end])
        pos = end
    return b"".join(out)


def relay_side(number: int) -> dict[str, float]:
    request_span, response_span, _ = _call_frames()
    decoded_request = Decoder().decode(hpack.Encoder().encode(REQUEST))
    upstream = ClearingEncoder(4096)
    upstream.encode_fields(decoded_request)
    per_client = ClearingEncoder(4096)
    per_client.encode_fields(RESPONSE)

    def reencode() -> None:
        # The client's request block (decoded already, for the filters) into the shared context;
        # the model's response headers and trailers (decoded already) into the client's.
        upstream.encode_fields(decoded_request)
        per_client.encode_fields(RESPONSE)
        per_client.encode_fields(TRAILERS)

    def remap() -> None:
        _remap(request_span, 7)
        _remap(response_span, 1)

    def passthrough() -> None:  # today: each direction's span passes as one slice
        request_span[0:]
        response_span[0:]

    out = {}
    for name, fn in (("reencode", reencode), ("remap", remap), ("passthrough", passthrough)):
        out[f"{name}_us_per_call"] = min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--connections", type=int, default=500, help="(default: %(default)s)")
    p.add_argument("--repeat", type=int, default=3, help="(default: %(default)s)")
    p.add_argument("--calls", type=int, default=20000, help="timed calls of the relay-side work")
    p.add_argument("--out-dir", type=pathlib.Path, default=RESULTS)
    args = p.parse_args()

    model_runs: list[dict[str, float]] = []
    for _ in range(args.repeat):
        with running(start_model()) as model:  # a fresh model per repeat: nothing left from the last
            model_runs.append(model_side(model.pid, model.ports["grpc"], args.connections))
    relay_runs = [relay_side(args.calls) for _ in range(args.repeat)]

    def med(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    n, repeat = args.connections, args.repeat
    print(f"\n**The model (Python digits, grpcio), {n} connections held, medians of {repeat}**\n")
    print("| RSS per connection | fds per connection | handshake | model CPU per handshake | CPU idle |")
    print("| --: | --: | --: | --: | --: |")
    print(
        f"| {med(model_runs, 'rss_kib_per_connection'):.1f} KiB | {med(model_runs, 'fds_per_connection'):.2f}"
        f" | {med(model_runs, 'handshake_us'):.0f} µs"
        f" | {med(model_runs, 'model_cpu_us_per_handshake'):.0f} µs"
        f" | {med(model_runs, 'model_cpu_ms_per_s_idle'):.2f} ms/s |"
    )
    print(f"\n**The relay: CPU per call that sharing would add, medians of {args.repeat}**\n")
    print("| HPACK re-encoding (request, response, trailers) | stream ids rewritten (5 frames) | as today |")
    print("| --: | --: | --: |")
    print(
        f"| {med(relay_runs, 'reencode_us_per_call'):.2f} µs | {med(relay_runs, 'remap_us_per_call'):.2f} µs"
        f" | {med(relay_runs, 'passthrough_us_per_call'):.2f} µs |"
    )
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    record: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "model": model_runs,
                              "relay": relay_runs}  # fmt: skip
    path = args.out_dir / f"upstream-sharing-{stamp}.json"
    path.write_text(json.dumps(record, indent=2))
    print(f"\nrecord: {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")


if __name__ == "__main__":
    main()
