"""The read budget (sidecar/ingress/relay/pacing.py): slices, deferred turns, the pause, on a fake clock."""

from collections.abc import Callable

from sidecar.h2.limits import LimitHits
from sidecar.ingress.relay.pacing import ReadBudget


class _Loop:
    """call_soon held until a test runs it: a loop turn is a `turn()`."""

    def __init__(self) -> None:
        self.soon: list[Callable[[], None]] = []

    def call_soon(self, callback: Callable[[], None]) -> None:
        self.soon.append(callback)

    def turn(self) -> None:
        ready, self.soon = self.soon, []
        for callback in ready:
            callback()


class _Clock:
    """Each look at it moves it on by `step` seconds: a slice handled takes that long."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def _budget(
    step: float, handled: list[bytes], **kw: object
) -> tuple[ReadBudget, _Loop, list[bool], LimitHits]:
    loop, paused, hits = _Loop(), list[bool](), LimitHits()
    reads = ReadBudget(
        loop,  # type: ignore[arg-type]
        handle=handled.append,
        budget=kw.pop("budget", 1.0),  # type: ignore[arg-type]
        size=4,
        clock=_Clock(step),
        pause=paused.append,
        hits=hits,
        failed=kw.pop("failed", lambda: None),  # type: ignore[arg-type]
    )
    return reads, loop, paused, hits


def test_a_read_no_larger_than_a_slice_goes_straight_to_the_handler():
    handled = list[bytes]()
    reads, loop, paused, hits = _budget(10.0, handled)
    reads.feed(b"abcd")
    assert handled == [b"abcd"] and not loop.soon and not paused and not hits.counts


def test_a_large_read_within_the_budget_is_handled_in_slices_in_one_turn():
    handled = list[bytes]()
    reads, loop, paused, hits = _budget(0.1, handled)
    reads.feed(b"abcdefghij")
    assert handled == [b"abcd", b"efgh", b"ij"] and not loop.soon and not paused and not hits.counts


def test_past_the_budget_the_rest_waits_for_later_turns_with_reading_paused_counted_once():
    handled = list[bytes]()
    reads, loop, paused, hits = _budget(1.0, handled)  # a slice takes the whole budget: one a turn
    reads.feed(b"abcdefghij")
    assert handled == [b"abcd"] and paused == [True] and hits.counts == {"read_budget": 1}
    reads.feed(b"k")  # under way as reading paused: it waits behind the rest
    loop.turn()
    assert handled == [b"abcd", b"efgh"] and paused == [True] and len(loop.soon) == 1
    loop.turn()
    loop.turn()
    assert handled == [b"abcd", b"efgh", b"ij", b"k"]
    assert paused == [True, False] and hits.counts == {"read_budget": 1} and not loop.soon


def test_the_handler_is_looked_up_for_each_slice():
    first, then = list[bytes](), list[bytes]()
    reads, *_ = _budget(0.1, first)

    def switch(data: bytes) -> None:
        first.append(data)
        reads.handle = then.append

    reads.handle = switch
    reads.feed(b"abcdefgh")
    assert first == [b"abcd"] and then == [b"efgh"]


def test_once_stopped_no_slice_is_handled_and_reading_is_let_go():
    handled = list[bytes]()
    reads, loop, paused, _ = _budget(1.0, handled)
    reads.feed(b"abcdefghij")
    reads.stop()
    loop.turn()
    assert handled == [b"abcd"] and paused == [True, False] and not loop.soon


def test_a_slice_that_raises_in_a_later_turn_fails_the_connection():
    failures = list[str]()
    reads, loop, *_ = _budget(1.0, [], failed=lambda: failures.append("failed"))
    reads.feed(b"abcdefgh")

    def boom(data: bytes) -> None:
        raise RuntimeError("bug")

    reads.handle = boom
    loop.turn()
    assert failures == ["failed"]
