"""Pure pacing decisions: numbers in, a delay out; no event loop, no clock."""

from __future__ import annotations

import random

import pytest

from cometrunway import PollPolicy
from cometrunway._pacing import (
    CALIBRATION_FRACTION,
    FIRST_POLL_FRACTION,
    LANDING_MARGIN,
    LEARNED_START_SPREAD,
    QUEUED_FACTOR,
    RATE_SPREAD,
    TRUSTED_SPREAD,
    Estimate,
    Reading,
    estimate_finish,
    first_poll_delay,
    is_landing,
    jittered,
    next_poll_delay,
    not_found_delay,
)

POLICY = PollPolicy(initial_delay=5, interval=5, max_interval=30, jitter=0)


def delay(estimate: Estimate | None, *, age: float = 10.0, **kw: object) -> float:
    options: dict[str, object] = {"queued": False, "started": True, "typical_duration": None}
    options.update(kw)
    return next_poll_delay(POLICY, age=age, estimate=estimate, **options)  # type: ignore[arg-type]


def test_no_usable_progress_gives_no_estimate() -> None:
    for progress in (None, 0.0, 1.0):
        assert estimate_finish(progress, now=10, age=10, previous=None) is None


def test_two_readings_give_the_rate_and_the_start() -> None:
    # 20% at t=10, 40% at t=14: 5% a second, started at age 16 - 0.4/0.05 = 8.
    estimate = estimate_finish(0.4, now=14, age=16, previous=Reading(0.2, 10))
    assert estimate is not None
    assert estimate.remaining == pytest.approx(12.0)
    assert estimate.spread == RATE_SPREAD
    assert estimate.start_age == pytest.approx(8.0)


def test_one_reading_uses_the_server_start_then_the_learned_one() -> None:
    by_server = estimate_finish(0.5, now=20, age=20, previous=None, server_ran=10)
    assert by_server is not None and by_server.remaining == pytest.approx(10)
    learned = estimate_finish(0.5, now=20, age=20, previous=None, typical_start=4)
    assert learned is not None
    assert learned.remaining == pytest.approx(16)
    assert learned.spread == LEARNED_START_SPREAD
    bound = estimate_finish(0.5, now=20, age=20, previous=None)
    assert bound is not None and bound.spread == TRUSTED_SPREAD and bound.remaining == 20


def test_a_trusted_estimate_lands_just_after_the_finish_without_jitter() -> None:
    estimate = Estimate(10.0, 0.05)
    assert is_landing(estimate)
    assert delay(estimate) == pytest.approx(10 * 1.05 + POLICY.min_interval * LANDING_MARGIN)


def test_a_bound_only_calibrates_part_way() -> None:
    bound = Estimate(9.0, TRUSTED_SPREAD)
    assert not is_landing(bound)
    assert delay(bound) == pytest.approx(9.0 * CALIBRATION_FRACTION)
    assert delay(Estimate(300.0, TRUSTED_SPREAD)) == POLICY.interval


def test_without_progress_the_typical_finish_is_awaited() -> None:
    assert delay(None, age=10, typical_duration=30) == pytest.approx(20)


def test_gaps_grow_with_age_and_double_while_queued() -> None:
    young, old = delay(None, age=0), delay(None, age=60)
    assert young == POLICY.interval
    assert old == pytest.approx(POLICY.interval * 2)
    assert delay(None, age=60, queued=True, started=False) == pytest.approx(old * QUEUED_FACTOR)
    assert delay(None, age=10_000) == POLICY.max_interval


def test_an_overdue_task_is_polled_every_interval_not_every_max_interval() -> None:
    # Past the typical duration a task may finish any moment: no 30 s gaps.
    assert delay(None, age=200, typical_duration=100, started=False) == POLICY.interval
    assert delay(None, age=200, typical_duration=1_000, started=False) > POLICY.interval


def test_delays_stay_within_the_policy_bounds() -> None:
    assert delay(Estimate(0.0, 0.0)) >= POLICY.min_interval
    assert delay(Estimate(1e6, 0.0)) == POLICY.max_interval


def test_first_poll_waits_for_the_fast_tasks() -> None:
    assert first_poll_delay(POLICY, None) == POLICY.initial_delay
    assert first_poll_delay(POLICY, 40) == pytest.approx(40 * FIRST_POLL_FRACTION)
    assert first_poll_delay(POLICY, 1) == POLICY.initial_delay


def test_error_waits_double_and_honour_a_capped_retry_after() -> None:
    """Failed polls wait as RetryPolicy's generator says: doubling from ``interval`` to
    ``max_interval``; a ``retry_after`` is a floor up to the cap."""

    class Limited(Exception):
        retry_after = 12.0

    waits = POLICY.error_backoff().waits(max_retry_after=120)
    next(waits)
    assert [waits.send(OSError()) for _ in range(5)] == [5, 10, 20, 30, 30]
    fresh = POLICY.error_backoff().waits(max_retry_after=120)
    next(fresh)
    assert fresh.send(Limited()) == 12
    capped = POLICY.error_backoff().waits(max_retry_after=8)
    next(capped)
    Limited.retry_after = 10**9
    assert capped.send(Limited()) == 8


def test_not_found_waits_start_short() -> None:
    assert [not_found_delay(POLICY, n) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]


def test_jitter_spreads_within_its_fraction() -> None:
    rng = random.Random(3)
    values = [jittered(10, 0.1, rng) for _ in range(200)]
    assert all(9 <= v <= 11 for v in values) and len(set(values)) > 100
    assert jittered(10, 0, rng) == 10


def test_learned_quantiles_follow_every_value_while_few() -> None:
    from cometrunway._pacing import LEARNED_SAMPLES, Learned

    learned = Learned()
    assert (learned.fast_duration(), learned.typical_duration(), learned.typical_start()) == (
        None,
        None,
        None,
    )
    for seconds in (40.0, 20.0, 30.0, 25.0, 35.0):
        learned.add_duration(seconds)
    assert learned.typical_duration() == 30.0
    assert learned.fast_duration() == 25.0  # the 20th percentile of five
    learned.add_start(1.0)
    learned.add_start(3.0)
    assert learned.typical_start() == 2.0
    for _ in range(2 * LEARNED_SAMPLES):
        learned.add_duration(10.0)
    assert learned.durations == LEARNED_SAMPLES
