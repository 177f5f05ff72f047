"""The cadence model: plain numbers, no clock, no sleeping."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runninghub_async import PollPolicy
from runninghub_async._cadence import LATE_FRACTION, DurationModel, kaplan_meier, prior_for


def test_kaplan_meier_matches_a_hand_computation() -> None:
    """Events 1, 3, 3, 6; censored 2, 5 (6 jobs): S = 5/6, 5/6*1/3, then 0."""
    steps = kaplan_meier([1, 3, 3, 6], [2, 5])
    assert [(t, r) for t, _, r in steps] == [(1, 6), (3, 4), (6, 1)]
    assert steps[0][1] == pytest.approx(5 / 6)
    assert steps[1][1] == pytest.approx(5 / 6 * 2 / 4)
    assert steps[2][1] == pytest.approx(0.0)


def test_a_tie_between_an_event_and_a_censoring_keeps_the_censored_at_risk() -> None:
    [(t, survival, at_risk)] = kaplan_meier([2], [2, 3])
    assert (t, at_risk) == (2, 3)
    assert survival == pytest.approx(2 / 3)


def test_cold_start_uses_the_prior() -> None:
    model = DurationModel(prior_median=40.0, prior_spread=0.3)
    assert model.quantile(0.5) == pytest.approx(40.0, rel=1e-6)
    model.job_started("a", 100.0)
    first = model.next_check("a", 100.0, target_delay=2.5)
    # The first check comes where LATE_FRACTION of jobs ended one interval earlier.
    interval = 2 * (1 - LATE_FRACTION) * 2.5
    assert first == pytest.approx(model.quantile(LATE_FRACTION) + interval, rel=1e-6)
    assert 10 < first < 40


def _waves(model: DurationModel, rng: random.Random, jobs: int, interval: float) -> None:
    """Waves of jobs checked every *interval*; every job starts at once, the fast end first.

    The model is asked its median halfway through, when only the fast jobs have ended.
    """
    durations = [rng.lognormvariate(math.log(2.0), 0.35) for _ in range(jobs)]
    for key in range(jobs):
        model.job_started(key, 0.0)
    t = 0.0
    while t < 2.0:  # stop mid-wave: about half the jobs are still running
        t += interval
        for key, d in enumerate(durations):
            if d > t - interval:
                (model.job_ended if d <= t else model.job_pending)(key, t)


def test_the_median_converges_without_survivorship_bias() -> None:
    """Half the wave still runs; learning from ended jobs only would say ~1.4 s."""
    model = DurationModel(prior_median=8.0, prior_spread=1.0)
    _waves(model, random.Random(1), 400, 0.1)
    assert model.quantile(0.5) == pytest.approx(2.0, rel=0.1)
    assert model.quantile(0.1) == pytest.approx(2.0 * math.exp(-1.2816 * 0.35), rel=0.1)


def test_dropped_jobs_are_not_samples() -> None:
    model = DurationModel(prior_median=2.0, prior_spread=0.3)
    for key in range(50):
        model.job_started(key, 0.0)
        model.job_pending(key, 0.05)
        model.job_dropped(key)
    assert model.quantile(0.5) == pytest.approx(2.0, rel=0.05)


def _learned() -> DurationModel:
    model = DurationModel(prior_median=2.0, prior_spread=0.3)
    _waves(model, random.Random(2), 300, 0.1)
    for key in range(300):
        model.job_ended(key, 12.0)  # the rest end later: all ended
    return model


def test_checks_are_dense_near_the_typical_end_and_sparse_before() -> None:
    model = _learned()
    model.job_started("j", 0.0)
    first = model.next_check("j", 0.0, target_delay=0.12)
    assert 0.9 < first < 1.5
    model.job_pending("j", first)
    interval = 2 * (1 - LATE_FRACTION) * 0.12
    second = model.next_check("j", first, target_delay=0.12)
    assert interval <= second < 2 * interval
    model.job_pending("j", 2.0)
    assert model.next_check("j", 2.0, target_delay=0.12) == pytest.approx(interval)


def test_no_back_off_until_far_past_the_tail() -> None:
    model = _learned()
    interval = 2 * (1 - LATE_FRACTION) * 0.12
    model.job_started("j", 0.0)
    tail = model.quantile(0.999)
    for age in (3.5, 4.0, tail):  # p95 is ~3.6 s
        model.job_pending("j", age)
        # At most the small stretch of its unspent late budget: no back-off.
        assert interval * 0.999 <= model.next_check("j", age, target_delay=0.12) <= 1.1 * interval
    model.job_pending("j", 3 * tail)
    assert model.next_check("j", 3 * tail, target_delay=0.12) > 2 * tail * 0.4


def test_a_later_call_defers_by_what_time_already_passed() -> None:
    model = _learned()
    model.job_started("j", 10.0)
    first = model.next_check("j", 10.0, target_delay=0.12)
    assert model.next_check("j", 10.0 + first / 2, target_delay=0.12) == pytest.approx(first / 2)
    assert model.next_check("j", 10.0 + 2 * first, target_delay=0.12) == 0.0


def test_eta_is_the_expected_remaining_time() -> None:
    model = _learned()
    assert model.eta(0.0) == pytest.approx(2.0 * math.exp(0.35**2 / 2), rel=0.1)
    assert model.eta(2.0) < model.eta(0.0)
    assert model.eta(1e6) >= 0


def test_prior_table() -> None:
    assert prior_for("rhart-image-n-pro/text-to-image", None)[0] == 40.0
    assert prior_for("some/video-model", None)[0] > prior_for("x/edit", "png")[0]
    assert prior_for(None, "mp3")[0] < prior_for(None, None)[0] * 2
    assert all(s > 0 for _, s in (prior_for(None, None), prior_for("a", "glb")))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0.001, 1e4), st.floats(0.0, 2.0), st.booleans()),
        min_size=0,
        max_size=40,
    ),
    st.floats(0.0, 1e5),
    st.floats(0.01, 100.0),
)
def test_delays_are_finite_and_non_negative(
    jobs: list[tuple[float, float, bool]], age: float, target: float
) -> None:
    model = DurationModel(prior_median=30.0, prior_spread=1.0, history=16, min_samples=2)
    for key, (duration, pending_fraction, succeeded) in enumerate(jobs):
        model.job_started(key, 0.0)
        model.job_pending(key, duration * pending_fraction)
        if succeeded:
            model.job_ended(key, duration)
        else:
            model.job_dropped(key)
    model.job_started("j", 0.0)
    model.job_pending("j", age)
    wait = model.next_check("j", age, target_delay=target)
    assert math.isfinite(wait)
    assert wait >= 0
    clamped = min(60.0, max(1.0, wait))  # what the poller does with min/max_interval
    assert 1.0 <= clamped <= 60.0
    assert math.isfinite(model.eta(age))
    assert model.eta(age) >= 0
    assert 0 < model.quantile(0.5) < math.inf


def test_few_ends_do_not_pull_the_low_quantiles_towards_zero() -> None:
    """Twenty jobs seen ending between 1.6 and 2.5 s: 2 % of jobs do not end before 0.5 s.

    Below the first end Kaplan-Meier knows nothing; the fit's shape, not a straight
    line from age 0, says how the first few percent spread there.
    """
    model = DurationModel(prior_median=2.0, prior_spread=0.3)
    for key in range(20):
        end = 1.6 + 0.9 * key / 19
        model.job_started(key, 0.0)
        model.job_pending(key, end - 0.1)
        model.job_ended(key, end)
    earliest = model.quantile(0.02)
    assert 0.8 < earliest < 1.6
    assert model.quantile(0.01) < earliest < model.quantile(0.04) < model.quantile(0.5)
    assert model.survival(earliest) == pytest.approx(0.98, abs=1e-6)


def test_jitter_spreads_checks_without_spending_queries() -> None:
    """Intervals move both ways within ``jitter``: on average no shorter, so no extra queries."""
    policy = PollPolicy(jitter=0.05, min_interval=1.0, max_interval=30.0)
    rng = random.Random(7)
    spread = [policy.spread(10.0, rng) for _ in range(4000)]
    assert all(9.5 <= s <= 10.5 for s in spread)
    assert min(spread) < 9.6
    assert max(spread) > 10.4
    assert sum(spread) / len(spread) == pytest.approx(10.0, abs=0.02)
    assert policy.spread(0.5, rng) == 1.0
    assert policy.spread(40.0, rng) == 30.0
