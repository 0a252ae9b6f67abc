"""The API's Kafka producer, started on first write: reads never depend on the broker."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.kit.kafka import create_producer, stop_client
from services.kit.publish import BrokerUnavailable
from services.kit.settings import CommonSettings


class LazyProducer:
    def __init__(self, settings: CommonSettings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = create_producer(self._settings)
                try:
                    await producer.start()
                except KafkaError as error:
                    await producer.stop()
                    raise BrokerUnavailable(type(error).__name__) from error
                self._producer = producer
            return self._producer

    async def close(self) -> None:
        if self._producer is not None:
            await stop_client(self._producer, "API producer")
