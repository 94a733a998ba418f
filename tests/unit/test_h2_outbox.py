"""Batched writes and held connection credit (sidecar/h2/outbox.py)."""

import asyncio
from collections.abc import Callable

from sidecar.h2 import frames as f
from sidecar.h2.limits import CREDIT_HELD
from sidecar.h2.outbox import Hold, Outbox


class _Transport:
    """Records writes; reading can be paused as a real transport's can."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.reading = True
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def get_write_buffer_size(self) -> int:
        return sum(map(len, self.writes))  # nothing is ever read: all of it waits

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

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


def _bounded(write_max: int = 1 << 20) -> tuple[Outbox, _Transport, _Transport, list[str]]:
    dropped: list[str] = []
    out = Outbox(asyncio.get_running_loop(), write_max=write_max, drop=dropped.append)
    client, model = _Transport(), _Transport()
    out.attach_client(client)  # type: ignore[arg-type]
    out.attach_model(model)  # type: ignore[arg-type]
    return out, client, model, dropped


async def test_a_client_whose_socket_is_full_is_read_no_more_nor_is_the_model_for_it():
    out, client, model, dropped = _bounded()
    out.client_full(True)
    assert not client.reading and not model.reading
    out.hold_client(Hold.AWAITING, False)  # another reason going does not resume it
    assert not client.reading
    out.client_full(False)
    assert client.reading and model.reading and not dropped
    out.close()


async def test_a_client_that_reads_nothing_is_dropped_past_the_hard_cap():
    out, _, _, dropped = _bounded(write_max=100)
    out.to_client(b"x" * 200)
    out.flush()
    assert not dropped  # past the cap, but its socket never said it was full: it is being read
    out.client_full(True)
    out.to_client(b"ping ack")
    out.flush()
    assert dropped == ["write_buffer"]
    out.close()


class _Timer:
    def __init__(self, delay: float, callback: Callable[[], None]) -> None:
        self.delay, self.callback, self.cancelled = delay, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class _Loop:
    """The two calls an Outbox makes of its loop, held until a test runs them: no real time passes."""

    def __init__(self) -> None:
        self.timers: list[_Timer] = []

    def call_soon(self, callback: Callable[[], None]) -> None:
        pass

    def call_later(self, delay: float, callback: Callable[[], None]) -> _Timer:
        self.timers.append(_Timer(delay, callback))
        return self.timers[-1]


def test_a_client_paused_for_the_stall_time_is_dropped_and_one_that_reads_again_is_not():
    loop, dropped = _Loop(), list[str]()
    out = Outbox(loop, write_stall=30.0, drop=dropped.append)  # type: ignore[arg-type]
    out.attach_client(_Transport())  # type: ignore[arg-type]
    out.client_full(True)
    out.client_full(False)  # it read in time
    assert [(t.delay, t.cancelled) for t in loop.timers] == [(30.0, True)]
    out.client_full(True)
    out.client_full(True)  # still full: the clock is not restarted
    assert len(loop.timers) == 2 and not dropped
    loop.timers[1].callback()  # 30 s paused
    assert dropped == ["write_stall"]


async def test_a_model_attached_while_the_client_is_full_is_not_read():
    out = Outbox(asyncio.get_running_loop())
    client, model = _Transport(), _Transport()
    out.attach_client(client)  # type: ignore[arg-type]
    out.client_full(True)
    out.attach_model(model)  # type: ignore[arg-type]
    assert not model.reading
    out.close()
