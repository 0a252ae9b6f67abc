r"""The surge model of one count series: the hot path, plain floats, no pydantic.

One call per closed bucket, O(1) time and a 13-number state. Pure: no clock, no I/O.

Baseline (robust, seasonal, multiplicative)
    The expected count of the bucket starting at minute ``m`` is
    ``mu = max(level * season(m), floor)``, where ``floor`` is ``min_rate_per_day`` spread
    over the day's buckets (an account is never assumed perfectly silent, so one stray
    event is not a surge), and ``season`` is a low-order Fourier term in log space::

        log season(m) = c0 cos d + c1 sin d + c2 cos 2d + c3 sin 2d + c4 cos w + c5 sin w

    with ``d`` / ``w`` the phase of ``m`` in the day / week. Six numbers capture the daily
    and weekly cycles (24 + 7 free factors would not fit the state budget).
    After the bucket, with the count winsorised at ``xc = min(x, mu + clip * sd)`` (Huber
    style, so a surge does not inflate its own baseline) and ``r = xc / mu - 1``::

        level += a * (xc / season - level)          (EWMA of the deseasonalised count)
        var   += b * ((xc - mu)**2 - var)           (EWMA of the squared residual)
        c_j   += eta * r * basis_j                  (Poisson-likelihood gradient in log mu)

Count-appropriate tail
    Counts are negative binomial with mean ``mu`` and overdispersion
    ``phi = max(var - mu, 0) / mu**2`` (``var = mu + phi mu^2``; phi = 0 is Poisson). The
    upper tail ``P(X >= x)`` is taken from the signed root of the NB deviance (accurate far
    into the tail, where it matters), ``z = sqrt(2 [x log(x/mu) - (x+k) log((x+k)/(mu+k))])``
    with ``k = 1/phi`` and a half-count continuity correction, and
    ``surprise = -log10 P`` (decades of improbability).

Onset evidence over one and two buckets
    A surge is a sustained rise, and its first bucket often holds only part of it (the
    surge starts inside the bucket). Besides the bucket alone, the pair (previous bucket +
    this one) is tested against its own predictive distribution: mean ``mu_prev + mu``,
    variance ``2 max(var, mu)`` (two buckets, independent given the baseline). The previous
    bucket enters winsorised (as it entered the baseline), so one isolated spike cannot
    fire the pair test on the bucket after it: the pair only adds evidence when both
    buckets are high. The evidence is the larger of the two surprises, the pair's charged
    ``log10 2`` decades (its p-value doubled, Bonferroni: the bucket test is the primary
    one, the pair is the added look at the same data).

Relative to past surprises
    A series whose tail is heavier than any NB (news, launches) keeps producing big
    surprises. ``ref`` is a decaying maximum of past surprises (half-life
    ``reference_half_life``); once it exceeds ``reference`` decades the surprise is divided
    by ``sqrt(ref / reference)``: a surge must stand out against the surges seen lately.

Score and suppression
    ``score = 100 * (1 - exp(-surprise / score_scale))`` in [0, 100]. When a closed bucket
    scores at or above ``alert`` the series turns refractory for ``refractory`` buckets,
    during which the reported (onset) score is 0: a surge is flagged once, at its onset.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

MINUTES_PER_DAY = 1440
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
TAU = 2.0 * math.pi
LN10 = math.log(10.0)
SQRT2 = math.sqrt(2.0)

# level, var, c0..c5, ref, hold (buckets left), n (buckets seen),
# prev (the previous bucket's winsorised count), prev_mu (its expectation)
State = tuple[
    float, float, float, float, float, float, float, float, float, float, float, float, float
]
EMPTY: State = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
_PACK = struct.Struct("<9dII2d")
_PACK_V2 = struct.Struct("<9dII")  # nb-seasonal-2, without the previous bucket
PAIR_CHARGE = math.log10(2.0)  # decades: Bonferroni for the added two-bucket test


@dataclass(frozen=True, slots=True)
class Params:
    """Per-bucket rates derived from durations (see ``params``)."""

    bucket_minutes: int
    a: float
    b: float
    eta: float
    ref_decay: float
    reference: float
    clip: float
    score_scale: float
    alert: float
    refractory: int
    floor: float


def rate(half_life_buckets: float) -> float:
    """EWMA weight per bucket for a half-life given in buckets."""
    return float(1.0 - 0.5 ** (1.0 / half_life_buckets))


def params(
    bucket_minutes: int,
    *,
    level_half_life_hours: float = 12.0,
    dispersion_half_life_days: float = 3.0,
    season_half_life_days: float = 7.0,
    reference_half_life_days: float = 14.0,
    reference: float = 6.0,
    clip: float = 3.0,
    score_scale: float = 4.0,
    alert: float = 60.0,
    refractory_hours: float = 24.0,
    min_rate_per_day: float = 1.0,
) -> Params:
    """Model parameters, given in time so they mean the same at any bucket size."""
    per_day = MINUTES_PER_DAY / bucket_minutes
    return Params(
        bucket_minutes=bucket_minutes,
        a=rate(level_half_life_hours / 24.0 * per_day),
        b=rate(dispersion_half_life_days * per_day),
        eta=rate(season_half_life_days * per_day),
        ref_decay=0.5 ** (1.0 / (reference_half_life_days * per_day)),
        reference=reference,
        clip=clip,
        score_scale=score_scale,
        alert=alert,
        refractory=math.ceil(refractory_hours * 60 / bucket_minutes),
        floor=min_rate_per_day / per_day,
    )


def basis(minute: int) -> tuple[float, float, float, float, float, float]:
    """Daily (two harmonics) and weekly (one) Fourier basis at ``minute`` since the epoch."""
    d = (minute % MINUTES_PER_DAY) * (TAU / MINUTES_PER_DAY)
    w = (minute % MINUTES_PER_WEEK) * (TAU / MINUTES_PER_WEEK)
    cd, sd = math.cos(d), math.sin(d)
    return cd, sd, cd * cd - sd * sd, 2.0 * sd * cd, math.cos(w), math.sin(w)


def surprise(x: float, mu: float, var: float) -> float:
    """``-log10 P(X >= x)`` for NB(mu, phi from var); 0 unless ``x`` is above ``mu``."""
    x -= 0.5  # continuity correction
    if x <= mu:
        return 0.0
    excess = var - mu
    if excess <= 1e-9 * mu * mu:
        dev = x * math.log(x / mu) - (x - mu)
    else:
        k = mu * mu / excess
        dev = x * math.log(x / mu) - (x + k) * math.log((x + k) / (mu + k))
    z = math.sqrt(2.0 * dev) if dev > 0.0 else 0.0
    if z < 8.0:
        return -math.log10(0.5 * math.erfc(z / SQRT2))
    return (z * z / 2.0 + math.log(z * math.sqrt(TAU))) / LN10  # Mills ratio asymptote


def evidence(x: float, mu: float, var: float, prev: float, prev_mu: float) -> float:
    """Decades of surprise of the bucket alone or of the pair with the previous bucket.

    ``var`` is the bucket's variance (at least ``mu``); the pair's test is charged
    ``PAIR_CHARGE``. 0 when neither count is above its expectation.
    """
    single = surprise(x, mu, var) if x > mu else 0.0
    if prev <= prev_mu:  # the pair's excess is at most the bucket's, its spread wider
        return single
    total, total_mu = x + prev, mu + prev_mu
    if total <= total_mu:
        return single
    pair = surprise(total, total_mu, 2.0 * var) - PAIR_CHARGE
    return pair if pair > single else single


def expected(p: Params, s: State, minute: int) -> tuple[float, float, tuple[float, ...]]:
    """``(mu, season, basis)`` of the bucket starting at ``minute``."""
    bs = basis(minute + p.bucket_minutes // 2)
    log_season = s[2] * bs[0] + s[3] * bs[1] + s[4] * bs[2] + s[5] * bs[3] + s[6] * bs[4]
    log_season += s[7] * bs[5]
    season = math.exp(min(max(log_season, -4.0), 4.0))
    return max(s[0] * season, p.floor), season, bs


def score_of(p: Params, s: State, x: float, minute: int, lift: float = 1.0) -> float:
    """0-100 score of count ``x`` in the bucket at ``minute`` (no state change).

    ``lift`` >= 1 scales the expectation (the population's relative rise on the topic).
    """
    if s[10] == 0.0:
        return 0.0
    mu, _, _ = expected(p, s, minute)
    mu *= lift
    raw = evidence(x, mu, max(s[1] * lift * lift, mu), s[11], s[12] * lift)
    ref = s[8]
    if ref > p.reference:
        raw /= math.sqrt(ref / p.reference)
    return 100.0 * (1.0 - math.exp(-raw / p.score_scale))


def step(p: Params, s: State, x: float, minute: int, lift: float = 1.0) -> tuple[State, float]:
    """Close the bucket at ``minute`` with count ``x``: ``(new state, onset score 0-100)``.

    The onset score is the bucket's score, or 0 while the series is refractory.
    """
    level, var, c0, c1, c2, c3, c4, c5, ref, hold, n, prev, prev_mu = s
    if n == 0.0:  # the first bucket only sets the level (and is its own expectation)
        return (x, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, x, x), 0.0
    mu, season, bs = expected(p, s, minute)
    sd2 = var if var > mu else mu
    if lift == 1.0:
        raw = evidence(x, mu, sd2, prev, prev_mu)
    else:
        ml = mu * lift
        raw = evidence(x, ml, max(var * lift * lift, ml), prev, prev_mu * lift)
    ref *= p.ref_decay
    adjusted = raw / math.sqrt(ref / p.reference) if ref > p.reference else raw
    score = 100.0 * (1.0 - math.exp(-adjusted / p.score_scale)) if adjusted else 0.0
    ref = raw if raw > ref else ref
    cap = mu + p.clip * math.sqrt(sd2)
    xc = x if x < cap else cap
    r = xc / mu - 1.0
    r = r if r < 3.0 else 3.0
    level += p.a * (xc / season - level)
    var += p.b * ((xc - mu) * (xc - mu) - var)
    g = p.eta * r
    c0, c1, c2 = c0 + g * bs[0], c1 + g * bs[1], c2 + g * bs[2]
    c3, c4, c5 = c3 + g * bs[3], c4 + g * bs[4], c5 + g * bs[5]
    if hold > 0.0:
        onset, hold = 0.0, hold - 1.0
    else:
        onset = score
        hold = float(p.refractory) if score >= p.alert else 0.0
    return (level, var, c0, c1, c2, c3, c4, c5, ref, hold, n + 1.0, xc, mu), onset


def skip(p: Params, s: State, minute: int, buckets: int) -> State:
    """Close ``buckets`` empty buckets starting at ``minute``.

    Stepped one by one for up to a week of buckets; beyond that the level, the variance
    and the reference decay in closed form (the seasonal gradient of whole silent weeks
    sums to about zero, so the seasonal terms stay).
    """
    week = MINUTES_PER_WEEK // p.bucket_minutes
    stepped = min(buckets, week)
    for i in range(stepped):
        s, _ = step(p, s, 0.0, minute + i * p.bucket_minutes)
    rest = buckets - stepped
    if rest <= 0:
        return s
    level, var, c0, c1, c2, c3, c4, c5, ref, hold, n, _, prev_mu = s
    return (
        level * (1.0 - p.a) ** rest,
        var * (1.0 - p.b) ** rest,
        c0, c1, c2, c3, c4, c5,
        ref * p.ref_decay**rest,
        max(hold - rest, 0.0),
        n + rest,
        0.0,
        prev_mu * (1.0 - p.a) ** rest,
    )  # fmt: skip


def silent(buckets: float) -> State:
    """A series watched for ``buckets`` buckets that were all empty."""
    return (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, float(buckets), 0.0, 0.0)


def pack(s: State) -> bytes:
    """96 bytes: nine float64, two uint32 (hold and n), two float64 (the previous bucket)."""
    return _PACK.pack(*s[:9], int(s[9]), min(int(s[10]), 2**32 - 1), s[11], s[12])


def unpack(data: bytes) -> State:
    """A packed state; an 80-byte nb-seasonal-2 state restores with no previous bucket."""
    if len(data) == _PACK_V2.size:
        old = _PACK_V2.unpack(data)
        return (*old[:9], float(old[9]), float(old[10]), 0.0, 0.0)
    v = _PACK.unpack(data)
    return (*v[:9], float(v[9]), float(v[10]), v[11], v[12])
