"""gRPC message bytes counted in DATA (sidecar/h2/messages.py), in both builds (tests/support/twins.py)."""

from __future__ import annotations

import inspect
import random
from types import ModuleType

import pytest

from sidecar.h2 import frames as f
from sidecar.h2.limits import EXACT_MESSAGES
from tests.support import twins

messages = twins.both("messages")


def test_message_bytes_leave_out_each_prefix_wherever_frames_split_it(messages: ModuleType):
    stream = b"".join(b"\x00" + len(m).to_bytes(4, "big") + m for m in (b"", b"abc", b"x" * 300))
    for step in (1, 2, 4, 7, len(stream)):
        counter = messages.MessageBytes()
        for i in range(0, len(stream), step):
            counter.add(stream, i, min(i + step, len(stream)))
        assert (counter.total, counter.messages, counter.counted) == (303, 3, 303)
    assert messages.MessageBytes().counted is None  # no message at all, as grpcio reports it


def test_a_flood_of_empty_messages_is_counted_by_its_bytes_past_the_bound(messages: ModuleType):
    flood = b"\x00\x00\x00\x00\x00" * (EXACT_MESSAGES + 100)
    counter = messages.MessageBytes()
    counter.add(flood, 0, len(flood) // 2)
    counter.add(flood, len(flood) // 2, len(flood))
    assert counter.messages == EXACT_MESSAGES
    assert counter.total == len(flood) - EXACT_MESSAGES * 5


def _messages(*bodies: bytes) -> bytes:
    return b"".join(b"\x00" + len(m).to_bytes(4, "big") + m for m in bodies)


def test_a_data_frame_is_counted_without_its_padding_as_its_payload_would_be(messages: ModuleType):
    stream = _messages(b"", b"abc", b"x" * 300, b"yz")
    for step in (1, 3, 5, 6, 8, 300, len(stream)):
        by_frame, by_payload = messages.MessageBytes(), messages.MessageBytes()
        for i in range(0, len(stream), step):
            chunk = stream[i : i + step]
            padded = f.frame(f.DATA, f.PADDED, 1, bytes([2]) + chunk + b"\x00\x00")
            by_frame.frame(padded, 0, len(padded))
            by_payload.add(chunk, 0, len(chunk))
        assert (by_frame.total, by_frame.messages) == (by_payload.total, by_payload.messages) == (305, 4)


def test_an_observer_is_handed_each_message_whole_wherever_data_frames_split_it(messages: ModuleType):
    bodies = (b"", b"abc", b"x" * 300, b"yz")
    stream = _messages(*bodies)
    for step in (1, 2, 4, 5, 7, 305, len(stream)):
        seen: list[bytes] = []
        observer = messages.MessageObserver(seen.append)
        for i in range(0, len(stream), step):
            frame = f.frame(f.DATA, 0, 1, stream[i : i + step])
            observer.frame(frame, 0, len(frame))
        assert seen == [_messages(b) for b in bodies], step
        assert (observer.total, observer.messages) == (305, 4)


def test_an_observer_is_handed_a_message_past_its_bound_cut_short_with_its_prefix_intact(
    messages: ModuleType,
):
    seen: list[bytes] = []
    observer = messages.MessageObserver(seen.append, max_message=10)
    stream = _messages(b"a" * 25, b"ok")
    for i in range(0, len(stream), 4):
        observer.add(stream, i, min(i + 4, len(stream)))
    assert seen == [_messages(b"a" * 25)[:15], _messages(b"ok")]
    assert int.from_bytes(seen[0][1:5], "big") == 25 and observer.total == 27


def test_both_builds_have_one_api():
    pure, compiled = (twins.load("messages", kind) for kind in twins.BUILDS)
    for name in ("MessageBytes", "MessageObserver"):
        a, b = getattr(pure, name), getattr(compiled, name)
        assert {n for n in dir(a) if not n.startswith("_")} == {n for n in dir(b) if not n.startswith("_")}
        for method in ("frame", "add"):
            assert [*inspect.signature(getattr(a, method)).parameters] == [
                *inspect.signature(getattr(b, method)).parameters
            ], (name, method)
    assert issubclass(compiled.MessageObserver, compiled.MessageBytes)


def _state(counter) -> tuple[int, int, int | None]:
    return counter.total, counter.messages, counter.counted


def _random_stream(rng: random.Random) -> bytes:
    bodies = [rng.randbytes(rng.choice((0, 1, 3, 4, 5, 17, 300, 2000))) for _ in range(rng.randint(0, 12))]
    stream = _messages(*bodies)
    if rng.random() < 0.2:  # a prefix that claims more than follows, or a stray byte or two
        stream += rng.randbytes(rng.randint(1, 9))
    return stream


def _random_frames(rng: random.Random, stream: bytes) -> list[tuple[bytes, int, int, bool]]:
    """DATA frames (some padded, some with more padding than payload) or bare payloads, each
    as (buffer, start, end, is_frame), inside buffers with bytes before and after."""
    out, i = [], 0
    while i < len(stream):
        step = rng.choice((1, 2, 4, 5, 6, 9, 64, 700, len(stream)))
        chunk = stream[i : i + step]
        i += step
        before, after = rng.randbytes(rng.randint(0, 3)), rng.randbytes(rng.randint(0, 3))
        if rng.random() < 0.5:
            out.append((before + chunk + after, len(before), len(before) + len(chunk), False))
            continue
        if rng.random() < 0.3:
            pad = rng.randint(0, 4) if rng.random() < 0.8 else rng.randint(0, 255)
            frame = f.frame(f.DATA, f.PADDED, 1, bytes([pad]) + chunk + b"\x00" * min(pad, 4))
        else:
            frame = f.frame(f.DATA, rng.choice((0, f.END_STREAM)), 1, chunk)
        out.append((before + frame + after, len(before), len(before) + len(frame), True))
    return out


def test_the_compiled_twin_counts_and_hands_up_as_the_pure_one_does():
    # The fuzz target (tests/fuzz_native) does this with sanitizers and coverage; this is its
    # seeded smoke: random streams, split anyhow, through both builds side by side.
    pure, compiled = (twins.load("messages", kind) for kind in twins.BUILDS)
    rng = random.Random(16)
    for case in range(400):
        stream = _random_stream(rng)
        seen: dict[str, list[bytes]] = {"pure": [], "compiled": []}

        def deliver(kind: str, seen: dict[str, list[bytes]] = seen):
            def take(message: bytes) -> None:
                seen[kind].append(message)
                if len(message) % 7 == 3:
                    raise RuntimeError("the layer above failed")  # the state left must agree too

            return take

        bound = rng.choice((0, 1, 5, 10, 300, 1 << 22, -1))
        counters = [
            (pure.MessageBytes(), compiled.MessageBytes()),
            (
                pure.MessageObserver(deliver("pure"), bound),
                compiled.MessageObserver(deliver("compiled"), bound),
            ),
        ]
        for buf, start, end, is_frame in _random_frames(rng, stream):
            for a, b in counters:
                results: list[str | None] = []
                for counter in (a, b):
                    try:
                        (counter.frame if is_frame else counter.add)(buf, start, end)
                        results.append(None)
                    except RuntimeError as e:
                        results.append(str(e))
                assert results[0] == results[1], case
                assert _state(a) == _state(b), (case, type(a).__name__)
        assert seen["pure"] == seen["compiled"], case


def test_the_compiled_twin_refuses_a_range_outside_its_buffer():
    # Python's slicing would clip or wrap these; the compiled twin reads through a pointer.
    compiled = twins.load("messages", "compiled")
    frame = f.frame(f.DATA, 0, 1, _messages(b"abc"))
    for counter in (compiled.MessageBytes(), compiled.MessageObserver(lambda m: None)):
        for pos, end in (
            (-1, len(frame)),
            (0, len(frame) + 1),
            (0, f.HEADER_LEN - 1),
            (len(frame) - 5, len(frame)),
        ):
            with pytest.raises(IndexError):
                counter.frame(frame, pos, end)
        for start, end in ((-1, 3), (0, len(frame) + 1)):
            with pytest.raises(IndexError):
                counter.add(frame, start, end)
        with pytest.raises(TypeError):
            counter.add(None, 0, 0)
        with pytest.raises(TypeError):
            counter.frame(bytearray(frame), 0, len(frame))
        assert _state(counter) == (0, 0, None)
