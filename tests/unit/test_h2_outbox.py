"""Batched writes and held connection credit (sidecar/h2/outbox.py)."""

import asyncio

from sidecar.h2 import frames as f
from sidecar.h2.limits import CREDIT_HELD
from sidecar.h2.outbox import Hold, Outbox


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
    client, model = _Transport(), _Transport()
    out.attach_client(client)  # type: ignore[arg-type]
    out.attach_model(model)  # type: ignore[arg-type]
    return out, client, model


async def test_what_one_callback_queues_goes_out_in_one_write_per_side():
    out, client, model = _outbox()
    out.begin()
    out.to_model(b"a")
    out.to_model(b"b")
    out.to_client(b"c")
    assert model.writes == [] and client.writes == []
    out.end()
    assert model.writes == [b"ab"] and client.writes == [b"c"]


async def test_connection_credit_rides_with_the_next_write_and_costs_none_of_its_own():
    out, _, model = _outbox()
    out.credit_model(1000)
    out.credit_model(24)
    out.flush()
    assert model.writes == []  # held: nothing to ride on yet
    out.begin()
    out.to_model(b"request")
    out.end()
    assert model.writes == [b"request" + f.window_update(0, 1024)]
    out.close()


async def test_credit_past_the_bound_goes_at_once_and_small_credit_at_the_latest_after_the_delay():
    out, client, _ = _outbox()
    out.credit_client(CREDIT_HELD)
    await asyncio.sleep(0)  # the flush it scheduled
    assert client.writes == [f.window_update(0, CREDIT_HELD)]
    out.close()
    out, _, model = _outbox(delay=0.0)
    out.credit_model(10)
    for _ in range(3):
        await asyncio.sleep(0)
    assert model.writes == [f.window_update(0, 10)]


async def test_reading_from_the_client_pauses_while_any_reason_holds():
    out, client, _ = _outbox()
    out.hold_client(Hold.AWAITING, True)
    out.hold_client(Hold.MODEL_FULL, True)
    out.hold_client(Hold.AWAITING, False)
    assert not client.reading
    out.hold_client(Hold.MODEL_FULL, False)
    assert client.reading
