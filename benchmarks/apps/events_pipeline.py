"""Events through outbox -> relay -> broker -> consumer -> ack, timed; run in a rendered service.

    python events_pipeline.py {stack|direct} BROKER DATABASE_URL BROKER_URL COUNT

Both modes do the same work with the same guarantees, from the same
pre-filled outbox: a relay takes pending rows in order (`FOR UPDATE SKIP
LOCKED`), publishes each one durably and marks the batch sent in its
transaction; a consumer in a consumer group records each message id as
processed in a transaction of its own, then acknowledges the message.

- `stack`: the service's own `OutboxRelay`, `Publisher`, `Consumer` and
  `first_delivery`, as `relay` and `worker` run them.
- `direct`: a minimal loop of each, written directly against the broker's
  client and SQLAlchemy Core.

Prints one JSON line: {"mode", "broker", "events", "seconds", "events_per_second"}.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from orders_api.platform.broker import create_broker
from orders_api.platform.db import Database, utc_now
from orders_api.platform.events import Event, EventRegistry, Message
from orders_api.platform.logging import configure_logging
from orders_api.platform.messaging import Consumer, MessagingMetrics, Publisher, RetryPolicy
from orders_api.platform.outbox import (
    Outbox,
    OutboxMessage,
    OutboxRelay,
    ProcessedMessage,
    first_delivery,
)
from orders_api.settings import Settings
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

# Run from the service's folder: its tests package holds the broker's cleanup helper.
sys.path.insert(0, str(Path.cwd()))
from tests.broker_support import remove_namespace

TOPIC = "bench.ping"
GROUP = "bench"
BATCH = 100


class Ping(Event):
    type = TOPIC
    version = 1

    n: int


async def fill_outbox(database: Database, registry: EventRegistry, count: int) -> None:
    async with database.sessions() as session:
        outbox = Outbox(session, registry)
        for n in range(count):
            outbox.add(Ping(n=n))
        await session.commit()


async def until(done: Callable[[], bool], stop: asyncio.Event) -> None:
    while not done():
        await asyncio.sleep(0.005)
    stop.set()


async def run_stack(
    settings: Settings, database: Database, registry: EventRegistry, count: int
) -> None:
    broker = create_broker(settings)
    processed = 0

    async def handle(message: Message[Ping]) -> None:
        nonlocal processed
        async with database.sessions() as session:
            await first_delivery(session, GROUP, message.id)
            await session.commit()
        processed += 1

    consumer = Consumer(
        broker, registry, GROUP, RetryPolicy.from_settings(settings), MessagingMetrics()
    )
    consumer.on(Ping, handle)
    relay = OutboxRelay(database, Publisher(broker, registry, MessagingMetrics()), batch_size=BATCH)
    stop = asyncio.Event()
    await broker.declare([TOPIC], GROUP)
    try:
        await asyncio.gather(
            consumer.run(stop), relay.run(stop), until(lambda: processed >= count, stop)
        )
    finally:
        await broker.close()
        url = settings.broker_url.get_secret_value()
        await remove_namespace(url, settings.events_namespace, GROUP)


# The direct loops: a relay and a consumer per broker, on the client alone.

Publish = Callable[[str, bytes], Awaitable[None]]


async def direct_relay(database: Database, publish: Publish, stop: asyncio.Event) -> None:
    while not stop.is_set():
        async with database.sessions() as session:
            rows = (
                await session.execute(
                    select(OutboxMessage.position, OutboxMessage.message_id, OutboxMessage.body)
                    .where(OutboxMessage.sent_at.is_(None))
                    .order_by(OutboxMessage.position)
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for _, message_id, body in rows:
                await publish(message_id, body)
            if rows:
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.position.in_([row[0] for row in rows]))
                    .values(sent_at=utc_now())
                )
            await session.commit()
        if len(rows) < BATCH:
            await asyncio.sleep(0.2)


async def record(database: Database, message_id: str) -> None:
    async with database.sessions() as session:
        await session.execute(
            pg_insert(ProcessedMessage)
            .values(consumer=GROUP, message_id=message_id, processed_at=utc_now())
            .on_conflict_do_nothing()
        )
        await session.commit()


async def run_direct_redis(url: str, database: Database, count: int) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(url)
    stream = f"bench-direct-{uuid.uuid4().hex[:8]}"
    await redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
    processed = 0
    stop = asyncio.Event()

    async def publish(message_id: str, body: bytes) -> None:
        await redis.xadd(stream, {"id": message_id, "body": body})

    async def consume() -> None:
        nonlocal processed
        while not stop.is_set():
            response: Any = await redis.xreadgroup(
                GROUP, "c1", {stream: ">"}, count=BATCH, block=100
            )
            for _, entries in response or []:
                for entry_id, fields in entries:
                    await record(database, fields[b"id"].decode())
                    await redis.xack(stream, GROUP, entry_id)
                    processed += 1

    try:
        await asyncio.gather(
            direct_relay(database, publish, stop),
            consume(),
            until(lambda: processed >= count, stop),
        )
    finally:
        await redis.delete(stream)
        await redis.aclose()


async def run_direct_rabbitmq(url: str, database: Database, count: int) -> None:
    import aio_pika

    connection = await aio_pika.connect(url)
    channel = await connection.channel(publisher_confirms=True)
    await channel.set_qos(prefetch_count=BATCH)
    name = f"bench-direct-{uuid.uuid4().hex[:8]}"
    exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
    await queue.bind(exchange, routing_key=TOPIC)
    processed = 0
    stop = asyncio.Event()

    async def publish(message_id: str, body: bytes) -> None:
        message = aio_pika.Message(
            body, message_id=message_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
        )
        await exchange.publish(message, routing_key=TOPIC)

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal processed
        await record(database, str(message.message_id))
        await message.ack()
        processed += 1

    tag = await queue.consume(on_message)
    try:
        await asyncio.gather(
            direct_relay(database, publish, stop), until(lambda: processed >= count, stop)
        )
    finally:
        await queue.cancel(tag)
        await queue.delete(if_unused=False, if_empty=False)
        await exchange.delete()
        await connection.close()


async def run_direct_nats(url: str, database: Database, count: int) -> None:
    import nats

    client = await nats.connect(url)
    js = client.jetstream()
    name = f"bench-direct-{uuid.uuid4().hex[:8]}"
    await js.add_stream(name=name, subjects=[f"{name}.>"])
    subject = f"{name}.{TOPIC}"
    subscription = await js.pull_subscribe(subject, durable=GROUP, stream=name)
    processed = 0
    stop = asyncio.Event()

    async def publish(message_id: str, body: bytes) -> None:
        await js.publish(subject, body, headers={"Nats-Msg-Id": message_id})

    async def consume() -> None:
        nonlocal processed
        while not stop.is_set():
            try:
                messages = await subscription.fetch(BATCH, timeout=0.1)
            except nats.errors.TimeoutError:
                continue
            for message in messages:
                await record(database, (message.headers or {})["Nats-Msg-Id"])
                await message.ack()
                processed += 1

    try:
        await asyncio.gather(
            direct_relay(database, publish, stop),
            consume(),
            until(lambda: processed >= count, stop),
        )
    finally:
        await js.delete_stream(name)
        await client.close()


DIRECT = {"redis": run_direct_redis, "rabbitmq": run_direct_rabbitmq, "nats": run_direct_nats}


async def main(mode: str, broker: str, database_url: str, broker_url: str, count: int) -> None:
    settings = Settings(
        _env_file=None,
        environment="production",
        log_level="WARNING",
        database_url=database_url,
        broker_url=broker_url,
        events_namespace=f"bench-{uuid.uuid4().hex[:8]}",
    )
    configure_logging(settings.log_level)
    registry = EventRegistry()
    registry.publishes(Ping)
    registry.consumes(Ping)
    database = Database(database_url)
    async with database.sessions() as session:
        await session.execute(OutboxMessage.__table__.delete())
        await session.execute(ProcessedMessage.__table__.delete())
        await session.commit()
    await fill_outbox(database, registry, count)
    started = time.perf_counter()
    if mode == "stack":
        await run_stack(settings, database, registry, count)
    else:
        await DIRECT[broker](broker_url, database, count)
    seconds = time.perf_counter() - started
    await database.close()
    print(
        json.dumps(
            {
                "mode": mode,
                "broker": broker,
                "events": count,
                "seconds": round(seconds, 3),
                "events_per_second": round(count / seconds, 1),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])))
