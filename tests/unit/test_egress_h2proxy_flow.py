"""The egress proxy's flow control: per-stream queues under both windows, credit only for bytes gone on."""

import pytest

from sidecar.egress.h2proxy.flow import DEFAULT_WINDOW, RecvFlow, SendFlow
from sidecar.h2 import frames as f


class Peer:
    """What a SendFlow wrote, frame by frame, and which bytes it reported sent."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, int, int, bytes]] = []
        self.sent: list[tuple[int, int]] = []
        self.finished: list[int] = []
        self.flow = SendFlow(self.write, lambda sid, n: self.sent.append((sid, n)), self.finished.append)

    def write(self, data: bytes) -> None:
        while data:
            length, kind, flags, sid = f.parse_header(data[: f.HEADER_LEN])
            self.frames.append((kind, flags, sid, data[f.HEADER_LEN : f.HEADER_LEN + length]))
            data = data[f.HEADER_LEN + length :]

    def data_bytes(self, sid: int) -> int:
        return sum(len(p) for k, _, s, p in self.frames if k == f.DATA and s == sid)


def test_a_stream_out_of_window_waits_while_another_stream_goes_on():
    peer = Peer()
    flow = peer.flow
    flow.connection = 10 * DEFAULT_WINDOW
    flow.open(1)
    flow.open(3)
    flow.data(1, b"a" * (DEFAULT_WINDOW + 100), False)  # more than stream 1's window
    flow.data(3, b"b" * 1000, False)
    assert peer.data_bytes(1) == DEFAULT_WINDOW
    assert peer.data_bytes(3) == 1000  # not held behind stream 1
    flow.credit(1, 100)
    assert peer.data_bytes(1) == DEFAULT_WINDOW + 100
    assert sum(n for sid, n in peer.sent if sid == 1) == DEFAULT_WINDOW + 100


def test_frames_respect_the_peers_max_frame_size_and_the_connection_window():
    peer = Peer()
    flow = peer.flow
    flow.initial_window(1 << 20)
    flow.open(1)
    flow.data(1, b"x" * 70000, True)
    sizes = [len(p) for k, _, s, p in peer.frames if k == f.DATA]
    assert sizes == [16384, 16384, 16384, DEFAULT_WINDOW - 3 * 16384]  # the connection window ran out
    assert peer.frames[-1][1] == 0 and peer.finished == []
    flow.credit(0, 1 << 20)
    assert peer.data_bytes(1) == 70000 and peer.frames[-1][1] & f.END_STREAM
    assert peer.finished == [1]


def test_trailers_wait_for_the_data_before_them_and_are_encoded_when_they_go():
    peer = Peer()
    flow = peer.flow
    flow.open(1)
    flow.data(1, b"y" * (DEFAULT_WINDOW + 1), False)
    encoded: list[int] = []

    def trailers() -> bytes:
        encoded.append(1)
        return b"\x88"

    flow.trailers(1, trailers, f.rst_stream(1, f.NO_ERROR))
    assert encoded == [] and peer.frames[-1][0] == f.DATA
    flow.credit(0, 10)
    flow.credit(1, 10)
    kinds = [k for k, _, _, _ in peer.frames]
    assert kinds[-2:] == [f.HEADERS, f.RST_STREAM] and encoded == [1]
    assert peer.frames[-2][1] & f.END_STREAM and peer.finished == [1]


def test_a_paused_socket_holds_everything_until_it_drains():
    peer = Peer()
    flow = peer.flow
    flow.open(1)
    flow.paused = True
    flow.data(1, b"z" * 10, False)
    assert peer.frames == []
    flow.resume()
    assert peer.data_bytes(1) == 10


def test_window_overflow_is_a_flow_control_error():
    flow = Peer().flow
    flow.open(1)
    with pytest.raises(f.StreamError):
        flow.credit(1, 2**31 - 1)
    with pytest.raises(f.ConnectionError_):
        flow.credit(0, 2**31 - 1)


def test_a_smaller_initial_window_can_send_a_stream_negative():
    peer = Peer()
    flow = peer.flow
    flow.open(1)
    flow.initial_window(0)  # RFC 9113 6.9.2: every open stream's window moves by the change
    flow.data(1, b"q" * 5, False)
    assert peer.frames == []
    flow.initial_window(5)
    assert peer.data_bytes(1) == 5


def test_recv_credits_back_only_what_left_and_only_a_quarter_window_at_a_time():
    out: list[bytes] = []
    recv = RecvFlow(window=1000, connection=4000)
    recv.open(1)
    recv.received(1, 600)
    recv.consumed(1, 200, out.append)
    assert out == []  # under a quarter window owed
    recv.consumed(1, 100, out.append)
    updates = [(f.parse_header(u[:9])[3], f.window_increment(u[9:])) for u in out]
    assert updates == [(1, 300), (0, 300)]


def test_recv_refuses_data_beyond_a_window():
    recv = RecvFlow(window=100, connection=150)
    recv.open(1)
    recv.open(3)
    with pytest.raises(f.StreamError):
        recv.received(1, 101)
    recv2 = RecvFlow(window=100, connection=150)
    recv2.open(1)
    recv2.open(3)
    recv2.received(1, 100)
    with pytest.raises(f.ConnectionError_):
        recv2.received(3, 51)


def test_a_reset_stream_reports_what_it_dropped_as_sent_so_its_source_is_credited():
    peer = Peer()
    flow = peer.flow
    flow.open(1)
    flow.open(3)
    flow.data(1, b"a" * (DEFAULT_WINDOW + 100), False)  # 100 bytes wait for window
    flow.data(1, b"b" * 50, False)
    flow.data(3, b"c" * (DEFAULT_WINDOW - 1), False)  # stream 3 waits for the connection
    flow.close(1)
    assert peer.sent[-1] == (1, 150)  # what stream 1 held goes back, though never written
    assert sum(n for sid, n in peer.sent if sid == 1) == DEFAULT_WINDOW + 150
    flow.close_all()
    assert sum(n for sid, n in peer.sent if sid == 3) == DEFAULT_WINDOW - 1
    assert not flow.sending(3)
    flow.close(1)  # already gone: nothing more
    assert sum(n for sid, n in peer.sent if sid == 1) == DEFAULT_WINDOW + 150
