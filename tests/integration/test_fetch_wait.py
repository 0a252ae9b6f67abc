"""How long an event waits between its topic and a caught-up consumer.

Tansu answers a fetch that found nothing only when the fetch's wait runs out (Kafka answers
as soon as a record arrives), so on the embedded broker the consumers' fetch wait
(``ABM_KAFKA_FETCH_MAX_WAIT_MS``) is the latency of every hop. Measured against a consumer
left at a long wait, in the same run: ratios, not absolute times.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from services.kit.broker import EmbeddedBroker
from services.kit.kafka import create_consumer, create_producer
from services.kit.settings import CommonSettings

TOPIC = "abm.events.v1"
SAMPLES = 12


async def _hop_ms(bootstrap: str, fetch_max_wait_ms: int, group: str) -> float:
    """The median time from a record's acknowledgement to a caught-up member receiving it."""
    settings = CommonSettings(kafka_bootstrap=bootstrap, kafka_fetch_max_wait_ms=fetch_max_wait_ms)
    consumer = create_consumer(settings, group, max_records=100)
    producer = create_producer(settings)
    await consumer.start()
    await producer.start()
    try:
        consumer.subscribe([TOPIC])
        while not consumer.assignment():  # joined the group; records are told by value
            await consumer.getmany(timeout_ms=100)
        hops = []
        for i in range(SAMPLES):
            await asyncio.sleep(0.05 + 0.037 * i)  # land anywhere within a parked fetch
            value = f"{group}-{i}".encode()
            await producer.send_and_wait(TOPIC, value, key=value)
            acknowledged = time.monotonic()
            received = False
            while not received:
                batch = await consumer.getmany(timeout_ms=5_000)
                received = any(r.value == value for records in batch.values() for r in records)
            hops.append((time.monotonic() - acknowledged) * 1000)
        return statistics.median(hops)
    finally:
        await producer.stop()
        await consumer.stop()


async def test_the_fetch_wait_setting_bounds_each_hop(broker: EmbeddedBroker) -> None:
    default = CommonSettings().kafka_fetch_max_wait_ms
    ours = await _hop_ms(broker.bootstrap, default, "hop-default")
    kafkas = await _hop_ms(broker.bootstrap, 1_000, "hop-long-wait")
    # A parked fetch answers at the end of its wait: the hop is a fraction of it.
    assert ours <= default + 50, (ours, kafkas)
    assert ours * 3 < kafkas, (ours, kafkas)
