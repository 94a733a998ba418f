"""Batched writes and held connection credit (sidecar/h2/outbox.py)."""

import asyncio

from sidecar.h2 import frames as f
from sidecar.h2.limits import CREDIT_HELD
from sidecar.h2.outbox import Outbox


class _Transport:
    """Records writes; reading can be paused as a real transport's can."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.reading = True

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def set_write_buffer_limits(self, high: int) -> None:
        pass

    def is_reading(self) -> bool:
        return self.reading

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


def _outbox(delay: float = 60.0) -> tuple[Outbox, _Transport, _Transport]:
    out = Outbox(asyncio.get_running_loop(), credit_delay=delay)
    down, up = _Transport(), _Transport()
    out.attach_client(down)  # type: ignore[arg-type]
    out.attach_model(up)  # type: ignore[arg-type]
    return out, down, up


async def test_what_one_callback_queues_goes_out_in_one_write_per_side():
    out, down, up = _outbox()
    out.begin()
    out.to_model(b"a")
    out.to_model(b"b")
    out.to_client(b"c")
    assert up.writes == [] and down.writes == []
    out.end()
    assert up.writes == [b"ab"] and down.writes == [b"c"]


async def test_connection_credit_rides_with_the_next_write_and_costs_none_of_its_own():
    out, _, up = _outbox()
    out.credit_model(1000)
    out.credit_model(24)
    out.flush()
    assert up.writes == []  # held: nothing to ride on yet
    out.begin()
    out.to_model(b"request")
    out.end()
    assert up.writes == [b"request" + f.window_update(0, 1024)]
    out.close()


async def test_credit_past_the_bound_goes_at_once_and_small_credit_at_the_latest_after_the_delay():
    out, down, _ = _outbox()
    out.credit_client(CREDIT_HELD)
    await asyncio.sleep(0)  # the flush it scheduled
    assert down.writes == [f.window_update(0, CREDIT_HELD)]
    out.close()
    out, _, up = _outbox(delay=0.0)
    out.credit_model(10)
    for _ in range(3):
        await asyncio.sleep(0)
    assert up.writes == [f.window_update(0, 10)]


async def test_reading_from_the_client_pauses_while_any_reason_holds():
    out, down, _ = _outbox()
    out.hold_client("held", True)
    out.hold_client("model-full", True)
    out.hold_client("held", False)
    assert not down.reading
    out.hold_client("model-full", False)
    assert down.reading
