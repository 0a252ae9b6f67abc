"""The NAB scorer: its pieces on tiny hand-made files, and the published numbers on the
development half in ``../shared/nab`` (skipped, with the reason, when that is absent)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from services.intent import nab, replay
from services.intent.nab import PROFILES, LabelledSeries, Profile

STANDARD, LOW_FP, LOW_FN = PROFILES
NAB_DIR = nab.DEFAULT_NAB_DIR
needs_nab = pytest.mark.skipif(
    not (NAB_DIR / "windows.json").exists(),
    reason=f"NAB development data not found at {NAB_DIR} (shared/ beside the clone)",
)


def series(rows: int, windows: tuple[tuple[int, int], ...], name: str = "f.csv") -> LabelledSeries:
    return LabelledSeries(name, tuple(str(i) for i in range(rows)), (0.0,) * rows, windows)


def test_scaled_sigmoid() -> None:
    assert nab.sigma(0.0) == 0.0
    assert nab.sigma(-1.0) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert nab.sigma(3.0) > -1.0
    assert nab.sigma(3.0001) == -1.0


def test_probation() -> None:
    assert nab.probation(1000) == 150
    assert nab.probation(15902) == 750


def test_row_weights_inside_before_and_after_windows() -> None:
    weights = nab.row_weights(30, [(10, 19)], STANDARD)
    assert weights[:10] == [-0.11] * 10
    assert weights[10] == pytest.approx(1.0)
    assert weights[10] > weights[15] > weights[19] > 0
    assert weights[19] == pytest.approx(nab.sigma(-1 / 10) / nab.sigma(-1))
    assert weights[20] == pytest.approx(0.11 * nab.sigma(1 / 9))  # |R'-i| / (w'-1)
    assert -0.11 <= weights[29] < weights[20] < 0


def test_window_counts_once_at_its_earliest_detection_and_fps_each() -> None:
    corpus = [series(200, ((100, 119),))]
    scores = [0.0] * 200
    scores[105] = scores[110] = 0.9  # two detections in the window: counted once
    scores[50] = scores[60] = 0.95  # two false positives before the window, scored higher
    result = nab.score_profile(corpus, {"f.csv": scores}, STANDARD)
    weights = nab.row_weights(200, [(100, 119)], STANDARD)
    raw = weights[105] + weights[50] + weights[60]
    assert result.threshold == 0.9
    assert result.raw == pytest.approx(raw)
    assert result.score == pytest.approx(100 * (raw + 1) / 2)


def test_sweep_keeps_the_highest_threshold_on_ties() -> None:
    corpus = [series(200, ((100, 119),))]
    scores = [0.0] * 200
    scores[100] = 0.7
    scores[160] = 0.5
    scores[161] = 0.3  # the two far FPs cost the same as ... nothing gained below 0.7
    result = nab.score_profile(corpus, {"f.csv": scores}, LOW_FP)
    assert result.threshold == 0.7
    assert result.score == pytest.approx(100.0)


def test_null_detector_scores_zero_and_probation_is_ignored() -> None:
    corpus = [series(1000, ((500, 599),))]
    scores = [0.0] * 1000
    scores[10] = 1.0  # inside probation: not scored
    for profile in PROFILES:
        assert nab.score_profile(corpus, {"f.csv": scores}, profile).score == 0.0


def test_a_missed_window_costs_a_fn() -> None:
    corpus = [series(400, ((100, 119), (300, 319)))]
    scores = [0.0] * 400
    scores[100] = 1.0
    result = nab.score_profile(corpus, {"f.csv": scores}, LOW_FN)
    assert result.raw == pytest.approx(1.0 - 2.0)


def test_profiles_are_the_readmes() -> None:
    assert (
        Profile("standard", 1.0, 0.11, 1.0),
        Profile("reward_low_FP_rate", 1.0, 0.22, 1.0),
        Profile("reward_low_FN_rate", 1.0, 0.11, 2.0),
    ) == PROFILES


@needs_nab
@pytest.mark.parametrize(
    ("detector", "published"),
    [("numenta", (72.8, 63.8, 77.4)), ("windowedGaussian", (59.1, 29.9, 70.5))],
)
def test_reproduces_the_published_scores(detector: str, published: tuple[float, ...]) -> None:
    corpus = nab.load_corpus(NAB_DIR)
    assert len(corpus) == 5
    assert sum(len(s.windows) for s in corpus) == 15
    results = nab.score_all(corpus, nab.load_scores(NAB_DIR, detector, corpus))
    assert [r.score for r in results] == pytest.approx(published, abs=0.1)


@needs_nab
def test_our_detector_beats_the_published_ones_in_every_profile() -> None:
    results = replay.evaluate(NAB_DIR, replay.nab_config(), nab.PUBLISHED)
    ours = results.pop(replay.nab_config().detector_version)
    for other in results.values():
        for mine, theirs in zip(ours, other, strict=True):
            assert mine.score > theirs.score, (mine, theirs)


@needs_nab
def test_score_command_writes_one_score_per_row(tmp_path: Path) -> None:
    source = NAB_DIR / "realTweets" / "Twitter_volume_PFE.csv"
    target = tmp_path / "out.csv"
    rows = replay.score_file(source, target, replay.nab_config())
    timestamps, scores = nab.read_rows(target, "anomaly_score")
    assert timestamps == nab.read_rows(source, "value")[0]
    assert rows == len(scores) > 15000
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert max(scores) > 0.6
