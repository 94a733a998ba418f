"""The batcher and the batching filter, with timers fired by hand and a fake model: flush by size and
by latency, the limit at the model, deadlines and callers leaving, errors, pass-through reasons."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from inference import grpc_service_pb2 as pb
from sidecar.batching import merge
from sidecar.batching.batcher import LATENCY, SIZE, Batcher, Sender
from sidecar.batching.policy import BatchingRule, read_batching
from sidecar.config_section import Section
from sidecar.core.call import Call, Outcome
from sidecar.core.clock import FakeClock
from sidecar.core.deadline import Deadline
from sidecar.core.errors import ConfigError
from sidecar.core.status import Code
from sidecar.filters.batching import BatchingFilter
from sidecar.oip import contract


class Timers:
    """call_later by hand: `fire()` runs what is due at the fake clock's time."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.pending: list[list[Any]] = []

    def __call__(self, delay, callback, *args):
        entry = [self.clock() + delay, callback, args, False]
        self.pending.append(entry)

        class Handle:
            def cancel(self_inner) -> None:
                entry[3] = True

        return Handle()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        for entry in sorted(self.pending, key=lambda e: e[0]):
            if entry[0] <= self.clock() and not entry[3]:
                entry[3] = True
                entry[1](*entry[2])


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


# ---- the batcher


class HarnessBatcher(Batcher):
    """A batcher with the sender its tests use: it records each batch and holds it until released."""

    sender: Sender
    release: asyncio.Event


def batcher(**kw) -> tuple[HarnessBatcher, Timers, list[Any]]:
    clock = FakeClock()
    timers = Timers(clock)
    rule = BatchingRule("m", **{"max_batch_size": 4, "max_latency": 0.005, **kw})
    sent: list[Any] = []
    release = asyncio.Event()

    async def sender(members):
        sent.append([m.context for m in members])
        try:
            await release.wait()
        except asyncio.CancelledError:
            sent.append("cancelled")
            raise
        for m in members:
            if not m.future.done():
                m.future.set_result("done")

    b = HarnessBatcher(rule, clock=clock, timers=timers)
    b.release = release
    b.sender = sender
    return b, timers, sent


async def test_a_full_batch_goes_at_once_and_a_lone_call_after_max_latency():
    b, timers, sent = batcher(max_concurrent_batches=2)
    for i in range(4):
        b.add(b"k", 1, f"a{i}", None, b.sender)
    await settle()
    assert sent == [["a0", "a1", "a2", "a3"]] and b.stats.flushes[SIZE] == 1
    b.add(b"k", 1, "lone", None, b.sender)
    await settle()
    assert len(sent) == 1
    timers.advance(0.005)
    await settle()
    assert sent[1] == ["lone"] and b.stats.flushes[LATENCY] == 1
    assert b.stats.sizes.counts[b.stats.sizes.bounds.index(4)] == 1


async def test_rows_that_would_overflow_start_a_new_batch_and_keys_never_mix():
    b, timers, sent = batcher(max_concurrent_batches=5)
    b.add(b"k", 3, "k3", None, b.sender)
    b.add(b"other", 1, "o1", None, b.sender)
    b.add(b"k", 2, "k2", None, b.sender)  # 3 + 2 > 4: k3's batch closes, full
    await settle()
    assert sent == [["k3"]]
    timers.advance(0.005)
    await settle()
    assert sorted(map(tuple, sent[1:])) == [("k2",), ("o1",)]


async def test_while_the_model_is_busy_a_due_batch_keeps_filling():
    b, timers, sent = batcher(max_concurrent_batches=1)
    b.add(b"k", 1, "first", None, b.sender)
    timers.advance(0.005)
    await settle()
    assert sent == [["first"]]
    b.add(b"k", 1, "x1", None, b.sender)
    timers.advance(0.005)  # due, but the one slot is taken
    b.add(b"k", 1, "x2", None, b.sender)
    await settle()
    assert len(sent) == 1
    b.release.set()
    await settle()
    assert sent[1] == ["x1", "x2"]


async def test_a_deadline_ends_one_callers_wait_and_its_rows_leave_the_batch():
    b, timers, sent = batcher()
    clock = timers.clock
    m1 = b.add(b"k", 2, "short", Deadline.after(0.001, clock), b.sender)
    m2 = b.add(b"k", 1, "long", Deadline.after(10, clock), b.sender)
    timers.advance(0.001)
    await settle()
    result = m1.future.result()  # type: ignore[union-attr]
    assert isinstance(result, Outcome) and result.code is Code.DEADLINE_EXCEEDED
    # The short call's rows are out: three more fit before the batch of 4 is full.
    for i in range(3):
        b.add(b"k", 1, f"n{i}", None, b.sender)
    await settle()
    assert sent == [["long", "n0", "n1", "n2"]] and not m2.future.done()  # type: ignore[union-attr]


async def test_callers_leaving_do_not_fail_the_batch_and_a_batch_nobody_waits_for_is_cancelled():
    b, timers, sent = batcher()
    gone = b.add(b"k", 1, "gone", None, b.sender)
    gone.future.cancel()  # type: ignore[union-attr]
    await settle()
    timers.advance(0.005)
    await settle()
    assert sent == []  # nobody left in it: never sent
    ms = [b.add(b"k", 1, f"c{i}", None, b.sender) for i in range(4)]
    await settle()
    assert len(sent) == 1
    ms[0].future.cancel()  # type: ignore[union-attr]
    await settle()
    assert not ms[1].future.done()  # type: ignore[union-attr]
    assert sent[-1] != "cancelled"  # three callers still wait
    for m in ms[1:]:
        m.future.cancel()  # type: ignore[union-attr]
    await settle()
    assert sent[-1] == "cancelled"


async def test_the_queue_is_bounded():
    b, _, _ = batcher(max_queued=2)
    assert b.add(b"k", 1, "a", None, b.sender) and b.add(b"k", 1, "b", None, b.sender)
    assert b.add(b"k", 1, "c", None, b.sender) is None and b.stats.queue_full == 1


def test_rules_are_read_and_checked():
    rules = read_batching([Section({"model": "m", "max_latency": "2ms", "max_batch_size": 8}, "batching[0]")])
    assert rules["m"].max_latency == 0.002 and rules["m"].max_batch_size == 8
    with pytest.raises(ConfigError, match=r"batching\[0\]: unknown key 'max_batch'"):
        read_batching([Section({"model": "m", "max_batch": 8}, "batching[0]")])
    with pytest.raises(ConfigError, match="two batching rules"):
        read_batching([Section({"model": "m"}, "batching[0]"), Section({"model": "m"}, "batching[1]")])


# ---- the filter, over a fake exchange and a fake model


class FakeExchange:
    def __init__(self, request: pb.ModelInferRequest) -> None:
        self.request = request
        self.response: pb.ModelInferResponse | None = None
        self.initial: list[Any] = []
        self.waited = False

    def waits(self) -> None:
        self.waited = True

    def infer_request(self) -> pb.ModelInferRequest:
        return self.request

    def detached(self, request: pb.ModelInferRequest) -> FakeExchange:
        return FakeExchange(request)

    def infer_response(self):
        assert self.response is not None
        return self.response, [("x-model", "m")]

    async def respond_infer(self, response, initial) -> None:
        self.response, self.initial = response, initial


class FakeModel:
    """Doubles INPUT0 into OUT0; `mode` makes it fail or answer the wrong rows."""

    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.calls: list[int] = []

    async def __call__(self, call: Call) -> Outcome:
        ex = call.exchange
        assert isinstance(ex, FakeExchange)
        req = ex.request
        x = np.frombuffer(req.raw_input_contents[0], dtype="<f4").reshape(list(req.inputs[0].shape))
        self.calls.append(x.shape[0])
        if self.mode == "error":
            return Outcome(Code.INVALID_ARGUMENT, 'input "INPUT0" is bad')
        if self.mode == "mismatch" and x.shape[0] > 1:
            x = x[:1]
        ex.response = pb.ModelInferResponse(model_name="m", model_version="1")
        ex.response.outputs.add(name="OUT0", datatype="FP32", shape=list(x.shape))
        ex.response.raw_output_contents.append((x * 2).astype("<f4").tobytes())
        return Outcome(Code.OK, "", [("x-trailer", "t")])


def request(x: np.ndarray, **kw) -> pb.ModelInferRequest:
    return pb.ModelInferRequest(
        model_name="m",
        inputs=[pb.ModelInferRequest.InferInputTensor(name="INPUT0", datatype="FP32", shape=list(x.shape))],
        raw_input_contents=[x.astype("<f4").tobytes()],
        **kw,
    )


def call(req: pb.ModelInferRequest) -> Call:
    return Call(
        method=contract.MODEL_INFER, metadata=[], deadline=None, protocol="grpc", exchange=FakeExchange(req)
    )


def batching_filter(**kw) -> BatchingFilter:
    return BatchingFilter({"m": BatchingRule("m", **{"max_batch_size": 6, **kw})}, timers=Timers(FakeClock()))


async def test_concurrent_calls_share_one_model_call_and_each_gets_its_own_rows():
    f, model = batching_filter(), FakeModel()
    xs = [np.full((n, 2), i, dtype=np.float32) for i, n in enumerate((1, 2, 3))]
    calls = [call(request(x, id=f"id{i}")) for i, x in enumerate(xs)]
    outcomes = await asyncio.gather(*(f(c, model) for c in calls))
    assert model.calls == [6]
    for x, c, o in zip(xs, calls, outcomes, strict=True):
        assert o.ok and o.trailing_metadata == [("x-trailer", "t")]
        ex = c.exchange
        assert isinstance(ex, FakeExchange) and ex.response is not None
        resp = ex.response
        assert resp.id == ex.request.id and ex.initial == [("x-model", "m")]
        got = np.frombuffer(resp.raw_output_contents[0], dtype="<f4").reshape(list(resp.outputs[0].shape))
        np.testing.assert_array_equal(got, x * 2)


async def test_a_model_error_fails_the_batchs_calls_with_its_message():
    f, model = batching_filter(max_batch_size=2), FakeModel("error")
    outcomes = await asyncio.gather(*(f(call(request(np.zeros((1, 2)))), model) for _ in range(2)))
    assert model.calls == [2]
    assert all(o.code is Code.INVALID_ARGUMENT and o.message == 'input "INPUT0" is bad' for o in outcomes)


async def test_a_reply_with_other_rows_sends_each_call_on_its_own():
    f, model = batching_filter(max_batch_size=2), FakeModel("mismatch")
    outcomes = await asyncio.gather(*(f(call(request(np.zeros((1, 2)))), model) for _ in range(2)))
    assert model.calls == [2, 1, 1] and all(o.ok for o in outcomes)
    assert f.batchers["m"].stats.passed_through == {merge.REPLY_MISMATCH: 2}


async def test_what_does_not_fit_passes_through_counted_by_reason():
    f, model = batching_filter(), FakeModel()
    assert (await f(call(request(np.zeros((9, 2)))), model)).ok  # more rows than max_batch_size
    other = call(pb.ModelInferRequest(model_name="unbatched"))
    assert (await f(other, lambda c: asyncio.sleep(0, Outcome(Code.OK)))).ok  # no rule: untouched
    assert model.calls == [9] and f.batchers["m"].stats.passed_through == {merge.TOO_LARGE: 1}
