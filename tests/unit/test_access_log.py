"""The access log: line format, the filter's sampling, and a writer that never blocks the caller."""

import asyncio
import io
import json
import threading

from sidecar.core.call import Call, Outcome
from sidecar.core.status import Code
from sidecar.filters.access_log import AccessLogFilter
from sidecar.filters.chain import build_chain
from sidecar.telemetry.access_log import AccessLog, Record, line

INFER = "/inference.GRPCInferenceService/ModelInfer"


def test_a_line_is_one_json_object_without_unknown_fields():
    text = line(Record(1767268800.5, "ingress", "grpc", INFER, "", "OK", 0.0123456, "ipv4:10.0.0.1:5000"))
    assert text.endswith("\n") and text.count("\n") == 1
    assert json.loads(text) == {
        "time": "2026-01-01T12:00:00.500+00:00",
        "direction": "ingress",
        "protocol": "grpc",
        "method": INFER,
        "code": "OK",
        "duration_ms": 12.346,
        "peer": "ipv4:10.0.0.1:5000",
    }


def test_hostile_names_are_cut():
    text = line(Record(0.0, "ingress", "grpc", "/" + "m" * 10_000, "x" * 10_000, "OK", 0.0, ""))
    assert len(text) < 800


class Sink(io.RawIOBase):
    """A stdout that blocks each write until released, as a full pipe would."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.release = threading.Event()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.release.wait()
        self.data += bytes(b)
        return len(b)


def record(i: int) -> Record:
    return Record(0.0, "ingress", "grpc", f"/s/m{i}", "", "OK", 0.001, "")


async def test_a_blocked_stdout_drops_and_counts_lines_but_never_blocks_submit():
    sink = Sink()
    dropped: list[int] = []
    log = AccessLog(sink, capacity=100, on_drop=dropped.append)  # type: ignore[arg-type]
    log.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    for i in range(10_000):
        log.submit(record(i))
    assert loop.time() - started < 1.0  # nothing waited for the blocked writer
    # The writer holds one batch in its blocked write; the buffer holds 100; the rest was dropped.
    assert 10_000 - 100 - 256 <= sum(dropped) <= 10_000 - 100
    sink.release.set()
    await log.stop()
    lines = sink.data.decode().splitlines()
    assert len(lines) + sum(dropped) == 10_000
    assert json.loads(lines[0])["method"] == "/s/m0"


async def test_a_broken_stdout_counts_its_lines_as_dropped():
    class Broken(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, b) -> int:
            raise BrokenPipeError

    dropped: list[int] = []
    log = AccessLog(Broken(), on_drop=dropped.append)  # type: ignore[arg-type]
    log.start()
    for i in range(10):
        log.submit(record(i))
    await log.stop()
    assert sum(dropped) == 10


class Recorder:
    def __init__(self) -> None:
        self.records: list[Record] = []

    def submit(self, record: Record) -> None:
        self.records.append(record)


def make_call(metadata=(), protocol: str = "grpc") -> Call:
    return Call(
        method=INFER, metadata=list(metadata), deadline=None, protocol=protocol, peer="ipv4:1.2.3.4:5"
    )


async def run(filter_: AccessLogFilter, codes: list[Code], **call_kw) -> None:
    pending = list(codes)

    async def terminal(call: Call) -> Outcome:
        call.request_bytes, call.response_bytes = 10, 20
        return Outcome(pending.pop(0))

    chain = build_chain([filter_], terminal)
    for _ in codes:
        await chain(make_call(**call_kw))


async def test_the_filter_logs_every_call_with_ids_client_and_sizes():
    recorder = Recorder()
    f = AccessLogFilter(
        recorder,  # type: ignore[arg-type]
        direction="ingress",
        trace_ids=lambda call: ("t" * 32, "s" * 16),
        wall_clock=lambda: 100.0,
    )
    await run(f, [Code.OK, Code.UNAVAILABLE], metadata=[("x-client-id", "team-a")], protocol="http")
    assert [(r.code, r.http_status) for r in recorder.records] == [("OK", 200), ("UNAVAILABLE", 503)]
    r = recorder.records[0]
    assert (r.time, r.trace_id, r.span_id, r.client_id) == (100.0, "t" * 32, "s" * 16, "team-a")
    assert (r.request_bytes, r.response_bytes, r.peer, r.direction) == (10, 20, "ipv4:1.2.3.4:5", "ingress")


async def test_sampled_mode_keeps_every_failure_and_a_share_of_successes():
    recorder = Recorder()
    draws = iter([0.5, 0.05, 0.9, 0.01])
    f = AccessLogFilter(
        recorder,  # type: ignore[arg-type]
        direction="ingress",
        trace_ids=lambda call: None,
        sample_ratio=0.1,
        rng=lambda: next(draws),
    )
    await run(f, [Code.OK, Code.OK, Code.INTERNAL, Code.OK, Code.OK])
    assert [r.code for r in recorder.records] == ["OK", "INTERNAL", "OK"]
    assert recorder.records[0].trace_id is None


async def test_governance_fields_come_from_the_call():
    recorder = Recorder()
    f = AccessLogFilter(recorder, direction="ingress", trace_ids=lambda call: None)  # type: ignore[arg-type]

    async def refused(call: Call) -> Outcome:
        call.client_id, call.client_class = "checkout", "gold"
        call.governance = "rate limit: client 'checkout' is over 5 calls/s"
        return Outcome(Code.RESOURCE_EXHAUSTED)

    c = Call(method=INFER, metadata=[("x-client-id", "spoofed")], deadline=None, protocol="grpc")
    await build_chain([f], refused)(c)
    r = recorder.records[0]
    assert (r.client_id, r.client_class) == ("checkout", "gold")
    fields = json.loads(line(r))
    assert fields["governance"].startswith("rate limit") and fields["client_class"] == "gold"
