from sidecar.core.call import Call, Outcome
from sidecar.core.status import Code
from sidecar.filters.chain import Next, build_chain


def make_call() -> Call:
    return Call(method="/m", metadata=[], deadline=None, protocol="grpc")


class Tag:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    async def __call__(self, call: Call, next: Next) -> Outcome:
        self.log.append(f"{self.name} in")
        call.metadata.append(("x-seen-by", self.name))
        outcome = await next(call)
        self.log.append(f"{self.name} out {outcome.code.name}")
        return outcome


class Reject:
    async def __call__(self, call: Call, next: Next) -> Outcome:
        return Outcome(Code.PERMISSION_DENIED, "no")


async def test_filters_run_in_order_around_the_terminal():
    log: list[str] = []

    async def terminal(call: Call) -> Outcome:
        log.append(f"terminal sees {[v for _, v in call.metadata]}")
        return Outcome(Code.OK)

    chain = build_chain([Tag("a", log), Tag("b", log)], terminal)
    assert (await chain(make_call())).ok
    assert log == ["a in", "b in", "terminal sees ['a', 'b']", "b out OK", "a out OK"]


async def test_a_filter_can_stop_the_call_before_the_terminal():
    reached = []

    async def terminal(call: Call) -> Outcome:
        reached.append(call)
        return Outcome(Code.OK)

    log: list[str] = []
    chain = build_chain([Tag("a", log), Reject()], terminal)
    outcome = await chain(make_call())
    assert outcome.code is Code.PERMISSION_DENIED
    assert reached == []
    assert log == ["a in", "a out PERMISSION_DENIED"]
