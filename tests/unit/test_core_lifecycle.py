"""Parts start in order and stop in reverse; a failed start or stop still releases what was reached."""

import pytest

from sidecar.core.lifecycle import Lifecycle, Part


def recorded(events: list[str], name: str, *, fail_start: bool = False, fail_stop: bool = False) -> Part:
    async def start() -> None:
        events.append(f"start {name}")
        if fail_start:
            raise OSError(f"{name} cannot start")

    async def stop() -> None:
        events.append(f"stop {name}")
        if fail_stop:
            raise RuntimeError(f"{name} cannot stop")

    return Part(name, start, stop)


async def test_parts_start_in_order_and_stop_in_reverse_once():
    events: list[str] = []
    life = Lifecycle(recorded(events, n) for n in "abc")
    assert life.names == ("a", "b", "c")
    await life.start()
    await life.stop()
    await life.stop()
    assert events == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]


async def test_a_failed_start_stops_what_it_reached_and_not_the_rest():
    events: list[str] = []
    life = Lifecycle([recorded(events, "a"), recorded(events, "b", fail_start=True), recorded(events, "c")])
    with pytest.raises(OSError, match="b cannot start"):
        await life.start()
    await life.stop()
    # b is stopped too: it may be half up.
    assert events == ["start a", "start b", "stop b", "stop a"]


async def test_a_failed_stop_is_raised_after_the_rest_stopped():
    events: list[str] = []
    life = Lifecycle([recorded(events, "a"), recorded(events, "b", fail_stop=True), recorded(events, "c")])
    await life.start()
    with pytest.raises(RuntimeError, match="b cannot stop"):
        await life.stop()
    assert events[3:] == ["stop c", "stop b", "stop a"]


async def test_a_part_without_a_start_or_a_stop():
    life = Lifecycle([Part("built ready")])
    await life.start()
    await life.stop()
