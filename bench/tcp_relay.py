"""The floor for any relay in Python: bytes copied between two sockets, no HTTP/2 awareness.

Each accepted connection gets its own connection to the target; whatever one side sends is
written to the other as it arrives, on uvloop, as the sidecar runs. Used by ingress.py to
show what the relay costs beyond moving bytes. Knows nothing about HTTP/2 or gRPC.

    python bench/tcp_relay.py --port 0 --target 127.0.0.1:5000
"""

from __future__ import annotations

import argparse
import asyncio
from typing import cast

import uvloop


class _Pipe(asyncio.Protocol):
    """One side of a relayed connection: what it reads goes to its peer's transport."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Pipe | None = None
        self.early: list[bytes] = []  # bytes that arrived before the peer connected

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)
        else:
            self.early.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


async def serve(port: int, target: tuple[str, int]) -> None:
    loop = asyncio.get_running_loop()
    connecting: set[asyncio.Task[None]] = set()

    def accept() -> _Pipe:
        down = _Pipe()

        async def connect() -> None:
            try:
                _, up = await loop.create_connection(_Pipe, *target)
            except OSError:
                if down.transport is not None:
                    down.transport.close()
                return
            up.peer, down.peer = down, up
            assert up.transport is not None
            for data in down.early:
                up.transport.write(data)
            down.early.clear()

        task = loop.create_task(connect())
        connecting.add(task)
        task.add_done_callback(connecting.discard)
        return down

    server = await loop.create_server(accept, "127.0.0.1", port)
    print(f"tcp relay listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--target", required=True, help="host:port")
    args = p.parse_args()
    host, _, port = args.target.rpartition(":")
    uvloop.run(serve(args.port, (host, int(port))))


if __name__ == "__main__":
    main()
