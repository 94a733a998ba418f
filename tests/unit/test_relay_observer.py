"""The relay's per-call observers (sidecar/ingress/relay/observer.py): a tap, two joined, none."""

from __future__ import annotations

from sidecar.core.call import Outcome
from sidecar.core.status import Code
from sidecar.ingress.relay.observer import NO_OBSERVER, joined, tap


class _Recorder:
    def __init__(self, name: str, log: list[tuple[str, object]]) -> None:
        self.name = name
        self.log = log

    def on_message(self, call: object, from_client: bool, message: bytes) -> None:
        self.log.append((self.name, (from_client, message)))

    def on_end(self, call: object, outcome: Outcome) -> None:
        self.log.append((self.name, outcome.code))


def test_the_first_observer_stands_alone_and_a_second_is_told_after_it():
    log: list[tuple[str, object]] = []
    first = _Recorder("a", log)
    assert joined(NO_OBSERVER, first) is first
    both = joined(first, _Recorder("b", log))
    both.on_message(None, True, b"m")
    both.on_end(None, Outcome(Code.OK))
    assert log == [("a", (True, b"m")), ("b", (True, b"m")), ("a", Code.OK), ("b", Code.OK)]


def test_a_tap_hands_messages_to_its_callback_and_ignores_the_end():
    seen: list[tuple[bool, bytes]] = []
    observer = tap(lambda from_client, data: seen.append((from_client, data)))
    observer.on_message(None, False, b"r")
    observer.on_end(None, Outcome(Code.CANCELLED))
    NO_OBSERVER.on_message(None, True, b"x")
    NO_OBSERVER.on_end(None, Outcome(Code.OK))
    assert seen == [(False, b"r")]
