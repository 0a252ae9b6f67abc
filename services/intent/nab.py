r"""The NAB scorer (Numenta Anomaly Benchmark), exactly as ``shared/nab/README.md`` states it.

Pure apart from reading the benchmark's files (``load_corpus``, ``load_scores``): no clock.

Scaled sigmoid ``sigma(y) = 2 / (1 + e^(5y)) - 1`` (and -1 for y > 3): +1 far left of
zero, 0 at zero, -1 far right. For one file of ``n`` rows:

1. Probation: rows ``i < min(floor(0.15 n), 750)`` are not scored.
2. Weight ``s_i`` of a row. Inside window ``[L, R]`` (width ``w``), with
   ``p = -(R - i + 1) / w``: ``s_i = A_TP * sigma(p) / sigma(-1)`` (1 at the left edge,
   towards 0 at the right: an early detection is worth more). Outside every window: before
   any window has ended ``s_i = -A_FP``; after, with ``R'``, ``w'`` the last window that
   ended, ``s_i = A_FP * sigma(|R' - i| / (w' - 1))`` (a false positive just after a
   window costs little, one far from it costs ``A_FP``).
3. At threshold ``t`` (row detected when its score >= t): raw = sum over windows of
   ``max(-A_FN, largest s_j of its detected rows)`` + sum of ``s_j`` of detected rows
   outside windows.
4. One threshold for all files: pool the scored rows, sort by score descending, sweep
   from ``t = 1.1`` (nothing detected) adding rows; record ``(t, raw)`` at each distinct
   score; keep the best raw, the highest ``t`` on ties.
5. ``score = 100 * (raw - raw_null) / (raw_perfect - raw_null)`` with
   ``raw_perfect = A_TP * windows`` and ``raw_null = -A_FN * windows``.

The sweep is incremental: adding a row changes raw by its own weight (outside windows) or
by the rise of its window's best weight, so all thresholds cost one sort.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

DEFAULT_NAB_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "nab"
PUBLISHED = ("numenta", "windowedGaussian")


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    a_tp: float
    a_fp: float
    a_fn: float


PROFILES = (
    Profile("standard", 1.0, 0.11, 1.0),
    Profile("reward_low_FP_rate", 1.0, 0.22, 1.0),
    Profile("reward_low_FN_rate", 1.0, 0.11, 2.0),
)


@dataclass(frozen=True, slots=True)
class LabelledSeries:
    """One benchmark file: its rows and its anomaly windows as row indices (inclusive)."""

    name: str
    timestamps: tuple[str, ...]
    values: tuple[float, ...]
    windows: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class ProfileResult:
    profile: str
    score: float
    threshold: float
    raw: float


def sigma(y: float) -> float:
    """NAB's scaled sigmoid."""
    if y > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def probation(rows: int) -> int:
    return min(math.floor(0.15 * rows), 750)


def row_weights(rows: int, windows: Sequence[tuple[int, int]], profile: Profile) -> list[float]:
    """``s_i`` for every row (probation rows included; the caller skips them)."""
    weights = [-profile.a_fp] * rows
    last: tuple[int, int] | None = None
    ordered = sorted(windows)
    k = 0
    for i in range(rows):
        while k < len(ordered) and ordered[k][1] < i:
            last = ordered[k]
            k += 1
        if k < len(ordered) and ordered[k][0] <= i:
            left, right = ordered[k]
            width = right - left + 1
            weights[i] = profile.a_tp * sigma(-(right - i + 1) / width) / sigma(-1.0)
        elif last is not None:
            left, right = last
            weights[i] = profile.a_fp * sigma(abs(right - i) / (right - left))
    return weights


def window_of(rows: int, windows: Sequence[tuple[int, int]]) -> list[int]:
    """Index of the window each row is in, -1 outside every window."""
    owner = [-1] * rows
    for w, (left, right) in enumerate(windows):
        for i in range(left, right + 1):
            owner[i] = w
    return owner


def score_profile(
    corpus: Sequence[LabelledSeries], scores: Mapping[str, Sequence[float]], profile: Profile
) -> ProfileResult:
    """Best normalised score over the pooled threshold sweep (see the module docstring)."""
    pooled: list[tuple[float, float, int]] = []  # (anomaly score, weight, global window)
    windows = 0
    for series in corpus:
        rows = len(series.values)
        detector = scores[series.name]
        if len(detector) != rows:
            raise ValueError(f"{series.name}: {len(detector)} scores for {rows} rows")
        weights = row_weights(rows, series.windows, profile)
        owner = window_of(rows, series.windows)
        for i in range(probation(rows), rows):
            window = owner[i] + windows if owner[i] >= 0 else -1
            pooled.append((float(detector[i]), weights[i], window))
        windows += len(series.windows)
    threshold, raw = sweep(pooled, windows, profile)
    null, perfect = -profile.a_fn * windows, profile.a_tp * windows
    return ProfileResult(profile.name, 100 * (raw - null) / (perfect - null), threshold, raw)


def sweep(
    pooled: list[tuple[float, float, int]], windows: int, profile: Profile
) -> tuple[float, float]:
    """``(t, raw)`` of the best threshold; rows are (score, weight, window or -1)."""
    best_window = [-profile.a_fn] * windows
    raw = -profile.a_fn * windows
    best_t, best_raw = 1.1, raw
    ordered = sorted(pooled, key=lambda row: -row[0])
    for n, (score, weight, window) in enumerate(ordered):
        if window < 0:
            raw += weight
        elif weight > best_window[window]:
            raw += weight - best_window[window]
            best_window[window] = weight
        last_of_value = n + 1 == len(ordered) or ordered[n + 1][0] != score
        if last_of_value and raw > best_raw:
            best_t, best_raw = score, raw
    return best_t, best_raw


# --- reading the benchmark's files --------------------------------------------------------


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.strip())


def read_rows(path: Path, column: str) -> tuple[list[str], list[float]]:
    """``(timestamps, values of column)`` of a NAB-style CSV."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [r["timestamp"] for r in rows], [float(r[column]) for r in rows]


def load_corpus(nab_dir: Path = DEFAULT_NAB_DIR) -> list[LabelledSeries]:
    """Every labelled file of ``windows.json``, in name order."""
    labels = json.loads((nab_dir / "windows.json").read_text(encoding="utf-8"))
    corpus = []
    for name in sorted(labels):
        timestamps, values = read_rows(nab_dir / name, "value")
        index = {_parse_time(t): i for i, t in enumerate(timestamps)}
        windows = tuple(
            (index[_parse_time(start)], index[_parse_time(end)]) for start, end in labels[name]
        )
        corpus.append(LabelledSeries(name, tuple(timestamps), tuple(values), windows))
    return corpus


def load_scores(
    nab_dir: Path, detector: str, corpus: Sequence[LabelledSeries]
) -> dict[str, list[float]]:
    """A published detector's per-row ``anomaly_score`` for each file of ``corpus``."""
    return {
        s.name: read_rows(nab_dir / "published" / detector / Path(s.name).name, "anomaly_score")[1]
        for s in corpus
    }


def score_all(
    corpus: Sequence[LabelledSeries], scores: Mapping[str, Sequence[float]]
) -> list[ProfileResult]:
    return [score_profile(corpus, scores, profile) for profile in PROFILES]
