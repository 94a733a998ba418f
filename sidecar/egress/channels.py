"""Pooled gRPC channels to instances of other services: one per address, closed when the instance leaves."""

from __future__ import annotations

import asyncio
import logging

import grpc
import grpc.aio

from sidecar.discovery.endpoint import Snapshot

log = logging.getLogger(__name__)


class ChannelPool:
    def __init__(self, max_message_bytes: int, drain_grace: float = 5.0) -> None:
        self._options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.enable_http_proxy", 0),
            ("grpc.enable_retries", 0),  # retries are the router's, within its budget
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
        ]
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._drain_grace = drain_grace

    def get(self, address: str) -> grpc.aio.Channel:
        channel = self._channels.get(address)
        if channel is None:
            channel = grpc.aio.insecure_channel(address, options=self._options)
            self._channels[address] = channel
        return channel

    def retain(self, snapshot: Snapshot) -> None:
        """Close, after a grace for calls in flight, the channels of instances no longer discovered."""
        live = {e.grpc_address for eps in snapshot.apps.values() for e in eps}
        for address in [a for a in self._channels if a not in live]:
            channel = self._channels.pop(address)
            log.info("egress: closing the channel to %s (left discovery)", address)
            task = asyncio.get_running_loop().create_task(channel.close(self._drain_grace))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        await asyncio.gather(*(c.close(1.0) for c in channels), *self._closing, return_exceptions=True)
