"""The readiness gate filter alone: refuses at once while the model cannot take calls, else steps aside."""

from __future__ import annotations

from sidecar.core.call import Call, Outcome
from sidecar.core.status import Code
from sidecar.filters.readiness import ReadinessGate
from sidecar.health.readiness import Readiness

INFER = "/inference.GRPCInferenceService/ModelInfer"
OK = Outcome(Code.OK)


class Model:
    """The rest of the chain: records each call that got past the gate and answers with `outcome`."""

    def __init__(self, outcome: Outcome = OK) -> None:
        self.outcome = outcome
        self.calls: list[Call] = []

    async def __call__(self, call: Call) -> Outcome:
        self.calls.append(call)
        return self.outcome


def make_call(method: str = INFER) -> Call:
    return Call(method=method, metadata=[("x-keep", "1")], deadline=None, protocol="grpc")


def readiness() -> Readiness:
    return Readiness(failure_threshold=1, success_threshold=1)


async def test_before_the_first_probe_a_call_is_refused_unavailable_naming_method_and_reason():
    model = Model()
    outcome = await ReadinessGate(readiness())(make_call(), model)
    assert outcome == Outcome(Code.UNAVAILABLE, f"{INFER}: model not probed yet")
    assert model.calls == []


async def test_a_model_that_is_down_is_named_with_why_the_probe_failed():
    r = readiness()
    r.record(False, "connection refused")
    model = Model()
    outcome = await ReadinessGate(r)(make_call("/inference.GRPCInferenceService/ModelMetadata"), model)
    assert outcome.code is Code.UNAVAILABLE
    assert outcome.message == (
        "/inference.GRPCInferenceService/ModelMetadata: model not ready: connection refused"
    )
    assert model.calls == []


async def test_a_ready_model_gets_the_call_untouched_and_its_answer_goes_back_as_it_is():
    r = readiness()
    r.record(True)
    answer = Outcome(Code.NOT_FOUND, 'model "nope" is not served', [("x-why", "unknown model")])
    model = Model(answer)
    call = make_call()
    outcome = await ReadinessGate(r)(call, model)
    assert outcome is answer
    assert model.calls == [call] and model.calls[0] is call
    assert call.metadata == [("x-keep", "1")]


async def test_the_gate_reads_readiness_at_each_call():
    r = readiness()
    gate = ReadinessGate(r)  # built once, as chains are
    model = Model()
    codes = []
    for ok in (True, False, True):
        r.record(ok, "" if ok else "deadline exceeded")
        codes.append((await gate(make_call(), model)).code)
    assert codes == [Code.OK, Code.UNAVAILABLE, Code.OK]
    assert len(model.calls) == 2


async def test_while_draining_calls_are_served_as_long_as_the_model_is_ready():
    r = readiness()
    r.record(True)
    r.drain()
    assert not r.current.ready  # probes and registries are told "not ready"...
    model = Model()
    assert (await ReadinessGate(r)(make_call(), model)).ok  # ...callers who have not noticed are served
    assert len(model.calls) == 1
    r.record(False, "gone")
    outcome = await ReadinessGate(r)(make_call(), model)
    assert outcome == Outcome(Code.UNAVAILABLE, f"{INFER}: sidecar draining")
    assert len(model.calls) == 1
