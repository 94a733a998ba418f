"""gRPC message bytes counted in DATA (sidecar/h2/messages.py)."""

from sidecar.h2 import frames as f
from sidecar.h2.limits import EXACT_MESSAGES
from sidecar.h2.messages import MessageBytes, MessageObserver


def test_message_bytes_leave_out_each_prefix_wherever_frames_split_it():
    stream = b"".join(b"\x00" + len(m).to_bytes(4, "big") + m for m in (b"", b"abc", b"x" * 300))
    for step in (1, 2, 4, 7, len(stream)):
        counter = MessageBytes()
        for i in range(0, len(stream), step):
            counter.add(stream, i, min(i + step, len(stream)))
        assert (counter.total, counter.messages, counter.counted) == (303, 3, 303)
    assert MessageBytes().counted is None  # no message at all, as grpcio reports it


def test_a_flood_of_empty_messages_is_counted_by_its_bytes_past_the_bound():
    flood = b"\x00\x00\x00\x00\x00" * (EXACT_MESSAGES + 100)
    counter = MessageBytes()
    counter.add(flood, 0, len(flood) // 2)
    counter.add(flood, len(flood) // 2, len(flood))
    assert counter.messages == EXACT_MESSAGES
    assert counter.total == len(flood) - EXACT_MESSAGES * 5


def _messages(*bodies: bytes) -> bytes:
    return b"".join(b"\x00" + len(m).to_bytes(4, "big") + m for m in bodies)


def test_a_data_frame_is_counted_without_its_padding_as_its_payload_would_be():
    stream = _messages(b"", b"abc", b"x" * 300, b"yz")
    for step in (1, 3, 5, 6, 8, 300, len(stream)):
        by_frame, by_payload = MessageBytes(), MessageBytes()
        for i in range(0, len(stream), step):
            chunk = stream[i : i + step]
            padded = f.frame(f.DATA, f.PADDED, 1, bytes([2]) + chunk + b"\x00\x00")
            by_frame.frame(padded, 0, len(padded))
            by_payload.add(chunk, 0, len(chunk))
        assert (by_frame.total, by_frame.messages) == (by_payload.total, by_payload.messages) == (305, 4)


def test_an_observer_is_handed_each_message_whole_wherever_data_frames_split_it():
    bodies = (b"", b"abc", b"x" * 300, b"yz")
    stream = _messages(*bodies)
    for step in (1, 2, 4, 5, 7, 305, len(stream)):
        seen: list[bytes] = []
        observer = MessageObserver(seen.append)
        for i in range(0, len(stream), step):
            frame = f.frame(f.DATA, 0, 1, stream[i : i + step])
            observer.frame(frame, 0, len(frame))
        assert seen == [_messages(b) for b in bodies], step
        assert (observer.total, observer.messages) == (305, 4)


def test_an_observer_is_handed_a_message_past_its_bound_cut_short_with_its_prefix_intact():
    seen: list[bytes] = []
    observer = MessageObserver(seen.append, max_message=10)
    stream = _messages(b"a" * 25, b"ok")
    for i in range(0, len(stream), 4):
        observer.add(stream, i, min(i + 4, len(stream)))
    assert seen == [_messages(b"a" * 25)[:15], _messages(b"ok")]
    assert int.from_bytes(seen[0][1:5], "big") == 25 and observer.total == 27
