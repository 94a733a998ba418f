"""What payload capture costs per call, in CPU time (and instructions, under callgrind), in-process.

Two halves, each timed over N calls (median of repeats), driven by hand with no event loop, so
nothing but the code under test is on the clock:

- **call path**: the filter chain around a terminal that answers at once on the grpcio plane's own
  exchange (transport/grpc_server.py's UnaryExchange: the request delivered when observed, the
  response when set), without the capture filter (`chain`), and with it at ratios 0, 0.01 and 1
  (`ratio=R`); the records go into a real SinkQueue, emptied between runs;
- **sink task**: the delivery loop's work per event off the call path: event built, payload (no
  redaction), CloudEvents HTTP headers (`http`) or Kafka headers (`kafka`), to a sink that accepts
  at once: everything but the sink's own I/O.

Added CPU per call at ratio R = (ratio=R - chain) + R x 2 events x sink task per event. The sink's
I/O (an aiohttp POST, an aiokafka send) is on top; bench/capture_e2e.py measures it whole.

    python bench/capture_cost.py                 # 10^5 calls, 5 repeats
    python bench/capture_cost.py --callgrind     # plus instructions per call (a few minutes)
    python bench/capture_cost.py --calls 10000 --repeat 1
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this tree's sidecar, whatever the editable install points at

from inference import grpc_service_pb2 as pb  # noqa: E402
from sidecar.capture import events as ev  # noqa: E402
from sidecar.capture.dispatch import Delivery, Dispatcher  # noqa: E402
from sidecar.capture.policy import CaptureSettings, read_capture  # noqa: E402
from sidecar.capture.queue import SinkQueue  # noqa: E402
from sidecar.config_section import Section  # noqa: E402
from sidecar.core.call import Call, Outcome  # noqa: E402
from sidecar.core.status import Code  # noqa: E402
from sidecar.filters.capture import CaptureFilter  # noqa: E402
from sidecar.filters.chain import Filter, build_chain  # noqa: E402
from sidecar.oip import contract  # noqa: E402
from sidecar.transport.grpc_server import UnaryExchange  # noqa: E402

CALL_PATHS = ("chain", "ratio=0", "ratio=0.01", "ratio=1")
SINK_PATHS = ("http", "kafka")
PATHS = CALL_PATHS + SINK_PATHS
REQUEST = pb.ModelInferRequest(
    model_name="digits",
    inputs=[pb.ModelInferRequest.InferInputTensor(name="INPUT0", datatype="FP32", shape=[4, 64])],
    raw_input_contents=[bytes(4 * 64 * 4)],
).SerializeToString()  # 1,055 bytes, bench/ingress.py's request
RESPONSE = bytes(200)
METADATA = [("x-client-id", "bench"), ("traceparent", "00-" + "1" * 32 + "-" + "2" * 16 + "-01")]


def _settings(ratio: float) -> CaptureSettings:
    doc = {"sinks": [{"http": {"url": "http://collector/"}}], "rules": [{"model": "digits", "ratio": ratio}]}
    return read_capture(Section(doc, "capture"), app_name="digits", http_port=8080)


class _Sink:
    name = "bench"

    def __init__(self, headers: Callable[[ev.CloudEvent], object]) -> None:
        self._headers = headers

    async def start(self) -> None:
        pass

    async def send(self, events: Any) -> Delivery:
        for e in events:
            self._headers(e)
        return Delivery()

    async def close(self) -> None:
        pass


def _drive(coro: Any) -> None:
    try:
        coro.send(None)
    except StopIteration:
        return
    raise AssertionError("nothing here may suspend")


def _runner(path: str) -> Callable[[int], None]:
    """A function doing `n` units of `path` (calls, or events for the sink paths); set-up done."""
    queue = SinkQueue("bench", max_events=10**9, max_bytes=2**62)
    if path in SINK_PATHS:
        settings = _settings(1.0)
        headers = ev.http_headers if path == "http" else ev.kafka_headers
        dispatcher = Dispatcher(queue, _Sink(headers), settings, id_prefix="0123abcd-0123-4567-89ab-")
        capture = CaptureFilter(settings, queue.put)
        template = _call(UnaryExchange(None, REQUEST))

        def run_sink(n: int) -> None:
            queue.clear()
            for _ in range((n + 1) // 2):  # two records per call: request and response
                exchange = UnaryExchange(None, REQUEST)
                _drive(capture(_call(exchange, template.metadata), _answer))
            batch = queue.take_now(n)
            started = time.process_time_ns()
            for i in range(0, len(batch), 100):
                _drive(dispatcher.deliver(batch[i : i + 100]))
            run_sink.ns = time.process_time_ns() - started  # type: ignore[attr-defined]

        run_sink.ns = 0  # type: ignore[attr-defined]
        return run_sink
    filters: list[Filter] = []
    if path != "chain":
        filters.append(CaptureFilter(_settings(float(path.removeprefix("ratio="))), queue.put))
    chain = build_chain(filters, _answer)

    def run_chain(n: int) -> None:
        for _ in range(n):
            exchange = UnaryExchange(None, REQUEST)
            _drive(chain(_call(exchange)))
        queue.clear()

    return run_chain


def _call(exchange: UnaryExchange, metadata: list[Any] | None = None) -> Call:
    return Call(
        method=contract.MODEL_INFER, metadata=metadata or list(METADATA), deadline=None, protocol="grpc",
        exchange=exchange,
    )  # fmt: skip


async def _answer(call: Call) -> Outcome:
    exchange = call.exchange
    assert isinstance(exchange, UnaryExchange)
    exchange.respond(RESPONSE)
    return Outcome(Code.OK)


def cpu_ns_per_unit(path: str, n: int, repeat: int) -> float:
    run = _runner(path)
    run(max(n // 10, 100))  # warm-up
    samples = []
    for _ in range(repeat):
        started = time.process_time_ns()
        run(n)
        spent = getattr(run, "ns", 0) or time.process_time_ns() - started
        samples.append(spent / n)
    return statistics.median(samples)


def instructions_per_unit(path: str, n: int) -> float:
    def collected(k: int) -> int:
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run(
                ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out",
                 sys.executable, __file__, "--inner", path, "--calls", str(k)],
                capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"},
            )  # fmt: skip
        found = re.search(r"Collected : (\d+)", out.stderr)
        if found is None:
            raise RuntimeError(f"no callgrind total in: {out.stderr[-500:]}")
        return int(found.group(1))

    return (collected(n) - collected(0)) / n


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=100_000, help="calls (events) per timed run [100000]")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per path; the median is shown [5]")
    parser.add_argument("--callgrind", action="store_true", help="also count instructions per call")
    parser.add_argument("--callgrind-calls", type=int, default=10_000, help="calls per callgrind run [10000]")
    parser.add_argument("--inner", choices=PATHS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        run = _runner(args.inner)
        run(200)
        run(args.calls) if args.calls else None
        return
    cpu = {path: cpu_ns_per_unit(path, args.calls, args.repeat) for path in PATHS}
    instr = (
        {path: instructions_per_unit(path, args.callgrind_calls) for path in PATHS} if args.callgrind else {}
    )
    print(f"{args.calls} calls x {args.repeat} repeats, median CPU per call (sink: per event); {REPO}")
    print("| path | CPU ns | " + ("instructions |" if instr else ""))
    print("| --- | ---: |" + (" ---: |" if instr else ""))
    for path in PATHS:
        unit = "per event" if path in SINK_PATHS else "per call"
        print(f"| {path} ({unit}) | {cpu[path]:.0f} |" + (f" {instr[path]:.0f} |" if instr else ""))
    print()
    print("| ratio | added on the call path ns | sink task ns (HTTP) | added CPU per call, µs |")
    print("| --- | ---: | ---: | ---: |")
    for ratio in (0.01, 1.0):
        path = f"ratio={ratio:g}"
        on_path = cpu[path] - cpu["chain"]
        sink = ratio * 2 * cpu["http"]
        print(f"| {ratio:g} | {on_path:.0f} | {sink:.0f} | {(on_path + sink) / 1000:.2f} |")


if __name__ == "__main__":
    main()
