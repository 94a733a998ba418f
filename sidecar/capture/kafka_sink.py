"""The Kafka sink: each event a record in CloudEvents' Kafka binary mode (`ce_` headers, the payload as
the value), keyed by the call's id so a call's request and response land in one partition, in order.

aiokafka's producer batches records per partition itself; a batch of events is handed to it at once
and its acknowledgements awaited together. A record that fails (the broker away past the request
timeout) is tried again by the dispatcher. Knows nothing about queues or retries' timing.
"""

from __future__ import annotations

import asyncio
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
        pending: list[asyncio.Future[Any] | BaseException] = []
        for event in events:
            try:
                pending.append(
                    await producer.send(
                        topic,
                        value=event.data,
                        key=event.attributes["id"].encode(),
                        headers=kafka_headers(event),
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
