"""gRPC message bytes counted in DATA (sidecar/h2/messages.py)."""

from sidecar.h2.limits import EXACT_MESSAGES
from sidecar.h2.messages import MessageBytes


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
