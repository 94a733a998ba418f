"""Flow control per stream through the egress proxy: a stream nobody reads stalls only itself.

One hand-driven client connection to a real sidecar's egress opens a server stream that floods
(the stream backend's Flood: 64 KiB messages, many MB) and never credits that stream's window,
while it credits the connection for every byte and reads every other stream. The egress holds
what it cannot send, stops crediting the instance's stream once its own window is spent, and so
the instance's relay and backend stop too; unary calls on the same client connection, to the
same instance over the same pooled upstream connection, still finish at once. Crediting the
blocked stream afterwards lets it finish with every byte, in order.

This fails if the proxy's flow control were per connection only: one proxy-wide queue towards
the client, or a stream window as large as the upstream connection's (a stream that floods then
spends the whole upstream connection's window and every other call on it waits).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import hpack
import pytest

from sidecar.h2 import frames as f
from tests.support import REPO
from tests.support.procs import HOST, running, start_listening, start_sidecar

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

SERVICE = "flood-svc"
FLOOD = 512  # messages of 64 KiB: 32 MiB, twice the proxy's upstream connection window
CLIENT_WINDOW = 65535  # the client's SETTINGS_INITIAL_WINDOW_SIZE: the default


@pytest.fixture(scope="module")
def egress_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    argv = [sys.executable, str(REPO / "tests/support/stream_backend.py")]
    ready = "stream backend listening on "
    with (
        running(start_listening(argv, name="streams", ready_prefix=ready)) as backend,
        running(start_sidecar(backend.ports["grpc"], app_name=SERVICE)) as instance,
    ):
        entry = {"host": HOST, "http_port": instance.ports["http"], "grpc_port": instance.ports["grpc"],
                 "instance_id": "flood-0"}  # fmt: skip
        tmp = tmp_path_factory.mktemp("flow")
        (tmp / "registry.yaml").write_text(json.dumps({"apps": {SERVICE: [entry]}}))  # JSON is YAML
        argv = ["--registry-file", str(tmp / "registry.yaml")]
        with running(start_sidecar(backend.ports["grpc"], *argv, app_name="client")) as client:
            yield client.ports["egress_grpc"]


@dataclass
class Stream:
    data: bytearray = field(default_factory=bytearray)
    status: str = ""
    done: asyncio.Event = field(default_factory=asyncio.Event)
    filled: asyncio.Event = field(default_factory=asyncio.Event)  # CLIENT_WINDOW bytes came


class Client:
    """One HTTP/2 connection, frames by hand: every stream credited as it reads but `unread`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.encoder, self.decoder = hpack.Encoder(), hpack.Decoder()
        self.streams: dict[int, Stream] = {}
        self.unread: set[int] = set()
        self.next_sid = 1
        self.task = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection(HOST, port)
        settings = f.frame(f.SETTINGS, 0, 0, (0x4).to_bytes(2, "big") + CLIENT_WINDOW.to_bytes(4, "big"))
        writer.write(f.PREFACE + settings + f.window_update(0, 64 << 20))
        return cls(reader, writer)

    def call(self, method: str, request: bytes) -> tuple[int, Stream]:
        sid, self.next_sid = self.next_sid, self.next_sid + 2
        block = self.encoder.encode([(":method", "POST"), (":scheme", "http"), (":path", method),
                                     (":authority", f"{SERVICE}:15001"), ("content-type", "application/grpc"),
                                     ("te", "trailers")])  # fmt: skip
        message = b"\x00" + len(request).to_bytes(4, "big") + request
        self.streams[sid] = stream = Stream()
        self.writer.write(
            f.frame(f.HEADERS, f.END_HEADERS, sid, block) + f.frame(f.DATA, f.END_STREAM, sid, message)
        )
        return sid, stream

    def read_on(self, sid: int) -> None:
        """Start reading `sid`: credit what it already received, and all it receives from now on."""
        self.unread.discard(sid)
        self.writer.write(f.window_update(sid, 1 << 30))

    async def _read(self) -> None:
        while True:
            length, kind, flags, sid = f.parse_header(await self.reader.readexactly(9))
            body = await self.reader.readexactly(length)
            if kind == f.SETTINGS and not flags & f.ACK:
                self.writer.write(f.settings_ack())
            elif kind == f.PING and not flags & f.ACK:
                self.writer.write(f.ping_ack(body))
            elif kind == f.DATA and length:
                stream = self.streams[sid]
                stream.data += f.unpad(flags, body)
                if len(stream.data) >= CLIENT_WINDOW:
                    stream.filled.set()
                credit = f.window_update(0, length)
                if sid not in self.unread:
                    credit += f.window_update(sid, length)
                self.writer.write(credit)
            elif kind == f.HEADERS:
                fields = {str(k): str(v) for k, v in self.decoder.decode(f.headers_fragment(flags, body))}
                self.streams[sid].status = fields.get("grpc-status", self.streams[sid].status)
            elif kind in (f.GOAWAY, f.RST_STREAM):
                raise AssertionError(f"frame {kind} on stream {sid}: {body!r}")
            if flags & f.END_STREAM and kind in (f.DATA, f.HEADERS):
                self.streams[sid].done.set()

    async def close(self) -> None:
        self.task.cancel()
        self.writer.close()


def messages(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        n = int.from_bytes(data[pos + 1 : pos + 5], "big")
        out.append(data[pos + 5 : pos + 5 + n])
        pos += 5 + n
    return out


async def test_streams_of_a_client_that_vanished_give_the_upstream_window_back(egress_port):
    """What the proxy held for a stream nobody will read is credited upstream when the stream goes:
    twice 12 unread floods, their client gone mid-stream (some 22 MiB held in all, more than the
    upstream connection's window), and calls on the same upstream connection still pass. (Runs
    before the 24-unread case below, which leaves that connection's window spent for good.)"""
    for _ in range(2):
        client = await Client.connect(egress_port)
        floods = []
        for _ in range(12):
            client.unread.add(client.next_sid)
            floods.append(client.call("/test.Streams/Flood", str(FLOOD).encode())[1])
        async with asyncio.timeout(20):
            for flood in floods:
                await flood.filled.wait()
        await asyncio.sleep(1.0)  # room for the proxy to take each stream's window from upstream
        await client.close()
    client = await Client.connect(egress_port)
    try:
        for i in range(5):
            _, unary = client.call("/test.Streams/Unary", f"v{i}".encode())
            async with asyncio.timeout(5):
                await unary.done.wait()
            assert (unary.status, messages(bytes(unary.data))) == ("0", [f"unary:v{i}".encode()])
    finally:
        await client.close()


# Streams left unread at once. Each may hold up to the proxy's stream window (1 MiB) of the upstream
# connection's window (16 MiB), credited back only as the client reads. With 24 unread floods on
# one connection the unary calls on it stall (the same client straight at the instance's relay
# passes), and the upstream connection's window stays spent after that client left: known limits.
ISOLATED = pytest.param(1, id="one-unread")
TOO_MANY = pytest.param(24, id="24-unread", marks=pytest.mark.xfail(strict=True, raises=TimeoutError, reason=(
    "known limit: 24 unread floods hold more than the upstream connection's window, so every call "
    "on it waits (not so straight at the instance's relay); it stays spent after they left")))  # fmt: skip


@pytest.mark.parametrize("unread", [ISOLATED, TOO_MANY])
async def test_a_stream_its_client_does_not_read_stalls_no_other_call_on_its_connection(egress_port, unread):
    client = await Client.connect(egress_port)
    try:
        floods = []
        for _ in range(unread):
            client.unread.add(client.next_sid)
            floods.append(client.call("/test.Streams/Flood", str(FLOOD).encode()))
        _, flood = floods[0]
        # The flood fills the client's window for it, and then everything between stops.
        async with asyncio.timeout(20):
            await flood.filled.wait()
        await asyncio.sleep(1.0)  # room for anything more to (wrongly) arrive
        assert len(flood.data) == CLIENT_WINDOW and not flood.done.is_set()

        took = []
        for i in range(20):  # on the same connection, to the same instance, while the flood waits
            start = time.monotonic()
            _, unary = client.call("/test.Streams/Unary", f"u{i}".encode())
            async with asyncio.timeout(5):
                await unary.done.wait()
            took.append(time.monotonic() - start)
            assert (unary.status, messages(bytes(unary.data))) == ("0", [f"unary:u{i}".encode()])
        assert max(took) < 1.0, took
        assert len(flood.data) == CLIENT_WINDOW and not flood.done.is_set()  # still blocked

        for sid, _ in floods:
            client.read_on(sid)
        async with asyncio.timeout(60):
            await flood.done.wait()
        got = messages(bytes(flood.data))
        assert flood.status == "0" and len(got) == FLOOD
        assert [int.from_bytes(m[:4], "big") for m in got] == list(range(FLOOD))
        assert all(len(m) == 64 << 10 for m in got)
    finally:
        await client.close()
