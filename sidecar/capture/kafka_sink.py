"""The Kafka sink: each event a record in CloudEvents' Kafka binary mode (`ce_` headers, the payload as
the value), keyed by the call's id, and a call's request and response put in one partition, in order.
The partition is the id's CRC-32 modulo the topic's partitions: aiokafka's own choice for a keyed
record is murmur2 in pure Python, about 28 µs a record here.

aiokafka's producer batches records per partition itself; a batch of events is handed to it at once
and its acknowledgements awaited together. A record that fails (the broker away past the request
timeout) is tried again by the dispatcher. Knows nothing about queues or retries' timing.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Sequence
from typing import Any

from sidecar.capture.dispatch import Delivery
from sidecar.capture.events import CloudEvent, kafka_headers
from sidecar.capture.policy import KafkaSinkSettings


class KafkaSink:
    name = "kafka"

    def __init__(self, settings: KafkaSinkSettings, *, max_request_bytes: int) -> None:
        self._settings = settings
        self._max_request = max_request_bytes
        self._producer: Any = None

    async def start(self) -> None:
        # Imported here: only a sidecar that sends to Kafka loads aiokafka.
        from aiokafka import AIOKafkaProducer

        s = self._settings
        timeout_ms = int(s.timeout * 1000)
        producer = AIOKafkaProducer(
            bootstrap_servers=list(s.bootstrap_servers),
            client_id=s.client_id,
            acks=s.acks if s.acks == "all" else int(s.acks),
            request_timeout_ms=timeout_ms,
            max_request_size=self._max_request,
            linger_ms=5,
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer

    async def send(self, events: Sequence[CloudEvent]) -> Delivery:
        producer, topic = self._producer, self._settings.topic
        partitions = sorted(await producer.partitions_for(topic))  # from the producer's metadata cache
        pending: list[asyncio.Future[Any] | BaseException] = []
        for event in events:
            key = event.attributes["id"].encode()
            try:
                pending.append(
                    await producer.send(
                        topic,
                        value=event.data,
                        key=key,
                        headers=kafka_headers(event),
                        partition=partitions[zlib.crc32(key) % len(partitions)],
                    )
                )
            except Exception as e:  # the accumulator is full past the timeout, or the producer stopped
                pending.append(e)
        results = await asyncio.gather(
            *(p for p in pending if not isinstance(p, BaseException)), return_exceptions=True
        )
        done = iter(results)
        retry = []
        for i, p in enumerate(pending):
            outcome = p if isinstance(p, BaseException) else next(done)
            if isinstance(outcome, BaseException):
                retry.append(i)
        return Delivery(retry=retry)

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
