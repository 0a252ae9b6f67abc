"""The detector over whole files: ``abm intent score`` and ``abm intent evaluate``.

A NAB-style file is one series of ``timestamp,value`` rows, one row per bucket. Each row
is one closed bucket of the same model the service runs (``model.step``), from a fresh
state, in one pass, no look-ahead; its anomaly score is the onset score / 100 (0 while the
series is refractory after an onset). Only the bucket size differs from production: NAB's
rows are 5-minute buckets.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from services.intent import model, nab
from services.intent.config import IntentConfig

NAB_BUCKET_MINUTES = 5


def nab_config() -> IntentConfig:
    """The production defaults with NAB's bucket size."""
    return IntentConfig(bucket_minutes=NAB_BUCKET_MINUTES)


def minute_of(timestamp: str) -> int:
    """Minutes since the Unix epoch of a timestamp (naive ones are UTC)."""
    at = datetime.fromisoformat(timestamp.strip())
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return int(at.timestamp() // 60)


def anomaly_scores(
    timestamps: Sequence[str], values: Sequence[float], config: IntentConfig
) -> list[float]:
    """One anomaly score in [0, 1] per row, in order."""
    p = config.model_params
    state = model.EMPTY
    scores = []
    for timestamp, value in zip(timestamps, values, strict=True):
        state, onset = model.step(p, state, max(float(value), 0.0), minute_of(timestamp))
        scores.append(min(max(onset / 100.0, 0.0), 1.0))
    return scores


def score_file(source: Path, target: Path, config: IntentConfig) -> int:
    """Write ``timestamp,anomaly_score`` for every row of ``source``; the number of rows."""
    timestamps, values = nab.read_rows(source, "value")
    scores = anomaly_scores(timestamps, values, config)
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "anomaly_score"])
        writer.writerows(zip(timestamps, (repr(s) for s in scores), strict=True))
    return len(scores)


def evaluate(
    nab_dir: Path, config: IntentConfig, published: Sequence[str] = ()
) -> dict[str, list[nab.ProfileResult]]:
    """Profile scores of this detector (and of the ``published`` ones) on the corpus."""
    corpus = nab.load_corpus(nab_dir)
    ours = {s.name: anomaly_scores(s.timestamps, s.values, config) for s in corpus}
    results = {config.detector_version: nab.score_all(corpus, ours)}
    for name in published:
        results[name] = nab.score_all(corpus, nab.load_scores(nab_dir, name, corpus))
    return results


def render(results: dict[str, list[nab.ProfileResult]]) -> str:
    """A small table: detector, then standard / low FP / low FN (threshold in brackets)."""
    lines = [f"{'detector':<24}" + "".join(f"{p.name:>26}" for p in nab.PROFILES)]
    for name, profiles in results.items():
        cells = "".join(f"{r.score:>18.1f} (t={r.threshold:.3f})" for r in profiles)
        lines.append(f"{name:<24}{cells}")
    return "\n".join(lines)
