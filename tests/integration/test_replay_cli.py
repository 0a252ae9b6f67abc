"""`abm replay` from the real topics, compared with the live database; with surges, one
history whatever the fetch order, from the topics or an exported file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from schemas import topics
from schemas.events import InboundEvent, SurgeEnded, SurgeStarted
from services.funnel import repository
from services.funnel.cache import StateCache
from services.funnel.config import FunnelConfig
from services.funnel.processing import apply_events
from services.funnel.replay import compare, dump_states, read_event_file, replay
from services.funnel.replay_cli import (
    FUNNEL_TABLES,
    ReplayTargetNotEmpty,
    live_state,
    read_records,
    read_topics,
    run_replay,
)
from services.funnel.replay_order import file_records, in_replay_order, locate
from services.kit import db
from services.kit.broker import EmbeddedBroker
from services.kit.publish import event_record, send_records
from services.kit.settings import CommonSettings
from services.kit.tables import account_transitions
from tests.harness import PostgresCluster, Stack, produce, table_rows, wait_for_progress
from tests.streams import generate, generate_full
from tests.unit.test_replay_order import CONFIG, history, tier_history

pytestmark = pytest.mark.integration


async def test_replay_from_the_topics_rebuilds_the_live_state(
    broker: EmbeddedBroker, pg_url: str
) -> None:
    events = generate(accounts=50, events_per_account=10, seed=8)
    await produce(broker.bootstrap, events)
    unique = list({e.event_id: e for e in events}.values())
    states, _ = apply_events({}, unique, FunnelConfig())
    engine = db.create_engine(url=pg_url)
    async with db.create_sessionmaker(engine)() as session, session.begin():
        await repository.save_accounts(session, states.values(), StateCache(10))
    await engine.dispose()

    records = await read_topics(broker.bootstrap)
    assert len(records) == len(events)
    result = await asyncio.to_thread(replay, records, FunnelConfig())
    assert result.states == states
    comparison = compare(result.states, await live_state(pg_url))
    assert (
        comparison.accounts == 50 and not comparison.stage_changes and not comparison.tier_changes
    )


async def test_replay_of_events_and_surges_is_one_history_from_topics_or_file(
    broker: EmbeddedBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events, surges = history(accounts=40, seed=21)
    await _produce(broker.bootstrap, [*events, *surges])

    first = await read_records(broker.bootstrap)
    second = await read_records(broker.bootstrap)
    assert len(first) == len(second) == len(events) + len(surges)
    assert all(locate(r.value, r.offset) == r for r in first), "a file locates as the broker"
    runs = [
        await asyncio.to_thread(replay, in_replay_order(fetched), CONFIG, history=True)
        for fetched in (first, second, first[::-1])
    ]
    # An exported file: each topic dumped in turn, surges first.
    file = tmp_path / "export.jsonl"
    by_topic = sorted(first, key=lambda r: (r.topic != topics.SURGES.name, r.partition, r.offset))
    file.write_bytes(b"".join(r.value + b"\n" for r in by_topic))
    runs.append(
        await asyncio.to_thread(
            replay, in_replay_order(file_records(read_event_file(file))), CONFIG, history=True
        )
    )
    for run in runs[1:]:
        assert run.states == runs[0].states
        assert tier_history(run) == tier_history(runs[0]) and run.outputs == runs[0].outputs

    # ... and it is the pure core's over the records in the merge order.
    merged = [e for e in in_replay_order(second) if not isinstance(e, bytes)]
    unique = list({e.event_id: e for e in merged}.values())
    states, outputs = apply_events({}, unique, CONFIG)
    assert (runs[0].states, runs[0].outputs) == (states, outputs)
    without = replay(in_replay_order(r for r in first if r.topic == topics.EVENTS.name), CONFIG)
    assert without.states != states, "the surges change the accounts"

    # Applied as fetched (the old reading), the same records give two tier histories.
    surges_late = sorted(first, key=lambda r: r.topic == topics.SURGES.name)
    surges_early = sorted(first, key=lambda r: r.topic != topics.SURGES.name)
    late, early = (
        replay([r.value for r in fetched], CONFIG, history=True)
        for fetched in (surges_late, surges_early)
    )
    assert tier_history(late) != tier_history(early)

    # `abm replay`, from the topics and from the file: the same states written.
    config = tmp_path / "funnel.json"
    config.write_text(CONFIG.model_dump_json())
    settings = CommonSettings(kafka_bootstrap=broker.bootstrap)
    for source, out in ((None, tmp_path / "topics.jsonl"), (file, tmp_path / "file.jsonl")):
        await asyncio.to_thread(run_replay, settings, source, config, out, False)
    expected = tmp_path / "expected.jsonl"
    dump_states(states, expected)
    assert (tmp_path / "topics.jsonl").read_text() == (tmp_path / "file.jsonl").read_text()
    assert (tmp_path / "topics.jsonl").read_text() == expected.read_text()
    assert capsys.readouterr().out.count('"applied": ') == 2


async def _produce(bootstrap: str, events: list[InboundEvent | SurgeStarted | SurgeEnded]) -> None:
    """Events on the events topic, surges on the surges topic, keyed by account."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        records = [event_record(e, _topic(e)) for e in events]
        await send_records(producer, records)
    finally:
        await producer.stop()


def _topic(event: InboundEvent | SurgeStarted | SurgeEnded) -> topics.Topic:
    return topics.SURGES if isinstance(event, SurgeStarted | SurgeEnded) else topics.EVENTS


async def test_replay_into_a_database_writes_what_the_live_funnel_wrote(
    services: Stack,
    broker: EmbeddedBroker,
    pg_url: str,
    postgres: PostgresCluster,
    tmp_path: Path,
) -> None:
    """`abm replay --into` rebuilds every table the funnel keeps (states, history, KPI
    facts, change feed, timeline) as the live consumer wrote them; it refuses a database
    that holds funnel state already; and it back-tests another configuration."""
    stream = generate_full(accounts=60, events_per_account=25, seed=31, tick_every=300)
    events = [*stream.events, *stream.tail]  # one topic: the live order is the replay's
    await produce(broker.bootstrap, events)
    services.env["ABM_FUNNEL_TIMELINE_DAYS"] = "100000"
    funnel = services.start("funnel")
    progress = 0
    while progress < len(events):
        progress = await wait_for_progress(pg_url, progress, timeout_s=60)
    assert funnel.terminate() == 0

    settings = CommonSettings(kafka_bootstrap=broker.bootstrap, database_url=pg_url)
    replayed = postgres.url(await postgres.create_database())
    await asyncio.to_thread(run_replay, settings, None, None, None, False, replayed, 100_000)
    live, rebuilt = await table_rows(pg_url), await table_rows(replayed)
    for table in FUNNEL_TABLES:
        assert live[table.name], f"the stream wrote no {table.name}"
        assert rebuilt[table.name] == live[table.name], table.name

    with pytest.raises(ReplayTargetNotEmpty, match="accounts is not empty"):
        await asyncio.to_thread(run_replay, settings, None, None, None, False, replayed)

    stricter = tmp_path / "strict.json"
    stricter.write_text(FunnelConfig(fit_threshold=95, version="strict").model_dump_json())
    backtest = postgres.url(await postgres.create_database())
    await asyncio.to_thread(run_replay, settings, None, stricter, None, False, backtest)
    history = (await table_rows(backtest))[account_transitions.name]
    assert {row["config_version"] for row in history} == {"strict"}
    below_fit = [
        [row for row in rows if row["rule"] == "tier3_below_fit"]
        for rows in (live[account_transitions.name], history)
    ]
    assert len(below_fit[1]) > len(below_fit[0])
