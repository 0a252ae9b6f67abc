"""Intent: updates/s of the pure surge model and bytes of state per series.

Each figure has a baseline measured in the same run: a bare loop doing one float EWMA
update per count (the least any online detector does), and, for bytes, one float64.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.intent import model
from services.intent.config import IntentConfig
from services.intent.detector import SeriesState, bucket_index, observe

SERIES = 1_000
BUCKETS = 300  # per series: 300,000 updates in all


@dataclass(frozen=True, slots=True)
class IntentResult:
    updates: int
    rate: float
    baseline_rate: float
    event_rate: float
    packed_bytes: int
    json_bytes: int
    json_bytes_with_triggers: int


def _counts(seed: int) -> list[list[float]]:
    """Per series: Poisson-ish counts from sparse (0.05) to busy (200) with rare bursts."""
    rng = random.Random(seed)
    series = []
    for _ in range(SERIES):
        rate = math.exp(rng.uniform(math.log(0.05), math.log(200)))
        counts = [float(round(rng.expovariate(1 / rate))) for _ in range(BUCKETS)]
        if rng.random() < 0.2:
            counts[rng.randrange(BUCKETS)] *= 20
        series.append(counts)
    return series


def measure_model(data: list[list[float]]) -> float:
    """model.step updates per second, one series after another (5-minute buckets)."""
    p = model.params(5)
    step = model.step
    started = time.perf_counter()
    for counts in data:
        state, minute = model.EMPTY, 28_000_000
        for x in counts:
            state, _ = step(p, state, x, minute)
            minute += 5
    return len(data) * BUCKETS / (time.perf_counter() - started)


def measure_baseline(data: list[list[float]]) -> float:
    """A bare EWMA: ``m += a * (x - m)`` per count."""
    a = 0.01
    started = time.perf_counter()
    for counts in data:
        m = 0.0
        for x in counts:
            m += a * (x - m)
    return len(data) * BUCKETS / (time.perf_counter() - started)


def measure_events(events: int = 20_000) -> float:
    """``detector.observe`` per event, pydantic state included (the service's per-event path)."""
    config = IntentConfig()
    at = datetime(2026, 1, 5, tzinfo=UTC)
    state = SeriesState.empty(bucket_index(at, config), model.silent(500))
    started = time.perf_counter()
    for i in range(events):
        state, _ = observe(state, at + timedelta(minutes=7 * i), 1.0, f"e{i}", config)
    return events / (time.perf_counter() - started)


def state_sizes() -> tuple[int, int, int]:
    """(packed model, JSON document idle, JSON with three trigger ids) in bytes."""
    p = model.params(60)
    stats = model.EMPTY
    for hour in range(500):
        stats, _ = model.step(p, stats, float(hour % 9), 28_000_000 + hour * 60)
    state = SeriesState.empty(466_667, stats).model_copy(update={"count": 3.0, "score": 41.5})
    ids = tuple(f"{i:08x}-0000-5000-8000-000000000000" for i in range(3))
    busy = state.model_copy(update={"triggers": ids})
    return len(model.pack(stats)), len(state.to_json()), len(busy.to_json())


def measure_intent() -> IntentResult:
    data = _counts(seed=11)
    measure_model(data[:50])  # warm-up
    rate = max(measure_model(data) for _ in range(3))
    baseline = max(measure_baseline(data) for _ in range(3))
    packed, idle, busy = state_sizes()
    return IntentResult(SERIES * BUCKETS, rate, baseline, measure_events(), packed, idle, busy)


def render_intent(result: IntentResult) -> str:
    """The docs/benchmarks.md section."""
    ratio = result.rate / result.baseline_rate
    lines = [
        "",
        "## Intent: the pure surge model, one process",
        "",
        "| path | updates | updates/s |",
        "| --- | ---: | ---: |",
        f"| bare float EWMA, one update per count (baseline) | {result.updates:,} "
        f"| {result.baseline_rate:,.0f} |",
        f"| `model.step`: seasonal NB baseline, tail, refractory (target 200,000) "
        f"| {result.updates:,} | {result.rate:,.0f} |",
        f"| `detector.observe` per event, pydantic state (the service's path) | 20,000 "
        f"| {result.event_rate:,.0f} |",
        "",
        f"Ratio model / bare EWMA: **{ratio:.3f}** ({SERIES:,} series from sparse to busy).",
        "",
        "| state per series | bytes |",
        "| --- | ---: |",
        "| one float64 (baseline) | 8 |",
        f"| packed model state (target 256) | {result.packed_bytes} |",
        f"| stored JSON document, bucket closed | {result.json_bytes} |",
        f"| stored JSON document with three trigger ids | {result.json_bytes_with_triggers} |",
        "",
    ]
    return "\n".join(lines)
