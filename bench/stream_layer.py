"""The relay's stream layer alone, in this process: CPU per unary call, a call's frames both ways.

Drives sidecar/h2/streams.py as a relayed connection does (client HEADERS + DATA, then the
model's HEADERS, DATA and trailers), with writes going to an in-memory transport, no sockets and
no filters: what the frame, stream and HPACK layers cost a call, which is where issue 12's checks
sit. Prints the minimum over runs (the machine is shared; the minimum is the least disturbed).

    python bench/stream_layer.py                  # 7 runs of 5,000 calls
    python bench/stream_layer.py --calls 20000 --runs 9
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import hpack

from sidecar.h2 import frames as f
from sidecar.h2.limits import Limits
from sidecar.h2.outbox import Outbox
from sidecar.h2.streams import Streams

try:
    from sidecar.h2.stream_events import Stream
except ImportError:  # a tree from before stream_events.py, run to compare against
    from sidecar.h2.streams import Stream  # type: ignore[attr-defined,no-redef]

REQUEST = [
    (":method", "POST"), (":scheme", "http"), (":path", "/inference.GRPCInferenceService/ModelInfer"),
    (":authority", "digits"), ("content-type", "application/grpc"), ("te", "trailers"),
    ("grpc-timeout", "5S"), ("user-agent", "grpc-go/1.70.0"),
]  # fmt: skip


class _Sink:
    """A transport that keeps nothing."""

    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def set_write_buffer_limits(self, high: int) -> None:
        pass

    def is_reading(self) -> bool:
        return True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class _Relaying:
    """The layer above: every stream relayed at once, nothing observed."""

    streams: Streams[Stream]

    def opened(self, st: Stream, headers: object, end_stream: bool) -> bool:
        self.streams.admit(st, [], None)
        return True

    def trailers(self, st: Stream, headers: object) -> None:
        pass

    def reset(self, st: Stream, code: int, by_client: bool) -> None:
        pass

    def message(self, st: Stream, from_client: bool, message: bytes) -> None:
        pass

    def held(self, st: Stream) -> bool:
        return False

    def data(self, sid: int, payload: bytes) -> None:
        pass

    def ended(self, sid: int, reset: bool) -> bool:
        return False


def _run(calls: int) -> float:
    """Seconds of CPU for `calls` unary calls over one connection."""

    async def go() -> float:
        out = Outbox(asyncio.get_running_loop())
        out.attach_client(_Sink())  # type: ignore[arg-type]
        out.attach_model(_Sink())  # type: ignore[arg-type]

        def fail(e: f.ConnectionError_) -> None:
            raise SystemExit(f"connection error: {e}")

        events = _Relaying()
        streams: Streams[Stream] = Streams(out, events, Stream, Limits(), fail, fail)
        events.streams = streams
        streams.model = True
        streams.resume()
        streams.client_data(f.PREFACE + f.frame(f.SETTINGS, 0, 0, b""))
        client, model = hpack.Encoder(), hpack.Encoder()
        message = b"\x00\x00\x00\x03\x10" + b"x" * 1024
        frames = []
        for i in range(calls):
            sid = 2 * i + 1
            request = f.frame(f.HEADERS, f.END_HEADERS, sid, client.encode(REQUEST))
            request += f.frame(f.DATA, f.END_STREAM, sid, message)
            reply = f.frame(
                f.HEADERS,
                f.END_HEADERS,
                sid,
                model.encode([(":status", "200"), ("content-type", "application/grpc")]),
            )
            reply += f.frame(f.DATA, 0, sid, message)
            reply += f.frame(
                f.HEADERS, f.END_HEADERS | f.END_STREAM, sid, model.encode([("grpc-status", "0")])
            )
            frames.append((request, reply))
        start = time.process_time()
        for request, reply in frames:
            streams.client_data(request)
            streams.model_data(reply)
        return time.process_time() - start

    return asyncio.run(go())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    per_call = [_run(args.calls) / args.calls * 1e6 for _ in range(args.runs)]
    print(json.dumps({"min_us_per_call": round(min(per_call), 3),
                      "runs_us_per_call": [round(x, 3) for x in per_call]}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
