"""When to poll a task next: pure decisions from what is known about it.

No clock is read here and nothing awaits: the poller passes the time, the task's age, its
progress readings and the durations it learned, and gets a delay in seconds back. Every
factor is a named constant saying why it has its value, and each is unit-tested without an
event loop (``tests/test_pacing.py``).

The decision, in order of what is known:

1. two progress readings give a rate, so the finish is known: land just after it;
2. one reading and a known start (the server's, or the typical queue time learned from
   other tasks) give an estimate: land just after it too;
3. one reading and nothing else only bounds the finish: look again part-way, to calibrate;
4. learned durations without progress: wait for the typical finish;
5. nothing: poll every ``interval``, less often as the task ages (more so while queued),
   but never less often than ``interval`` once a task is as old as tasks usually get.
"""

from __future__ import annotations

import random
import statistics
from collections import deque

from attrs import frozen

from .policies import PollPolicy

__all__ = [
    "Estimate",
    "Learned",
    "Reading",
    "estimate_finish",
    "first_poll_delay",
    "is_landing",
    "jittered",
    "next_poll_delay",
    "not_found_delay",
]

# Two readings of a linearly advancing progress bar fix the rate; 5% covers rounding of the
# percent the server reports and small speed changes.
RATE_SPREAD = 0.05
# The server's own start time: as good as a rate.
SERVER_START_SPREAD = 0.05
# A start inferred from the typical queue time of other tasks: queue times vary (seconds),
# so aim a little past the estimate. An early arrival costs one more poll, a late one adds
# latency; 8% balanced the two in bench/bench_poll_efficiency.py (3% cost ~3% more
# requests for a p95 0.7 s lower).
LEARNED_START_SPREAD = 0.08
# Estimates within this much are trusted for a landing; a wider one is only a bound.
TRUSTED_SPREAD = 1.0
# A bound from progress since the submit (queue time included): the real finish is sooner,
# so look again after this fraction of it, which also yields a rate.
CALIBRATION_FRACTION = 1 / 3
# Land this fraction of min_interval after the estimated finish: the server needs a moment
# to publish the outputs after its progress reaches the end.
LANDING_MARGIN = 0.5
# Without progress, a task's wait grows by one interval for each this many intervals of age:
# old tasks are long tasks, and polling them often finds nothing new.
AGE_PER_EXTRA_INTERVAL = 12
# A queued task has not started: twice the wait, since running comes first.
QUEUED_FACTOR = 2.0
# Once a task is this fraction of the typical duration old, it may finish any moment: its
# wait stops growing past ``interval`` (long gaps here made the slowest detections).
OVERDUE_FRACTION = 0.8
# The first poll of a task waits this fraction of the fast (20th percentile) duration
# learned: earlier polls of a task that cannot be done yet only cost requests, and a later
# first reading (more progress) makes the landing estimate sharper. Short of 1, so the
# fastest tasks are not found long after they finished (measured in
# bench/bench_poll_efficiency.py: 0.7 → 0.85 cut requests ~5% at the same p95).
FIRST_POLL_FRACTION = 0.85


@frozen
class Reading:
    """A progress value (0–1) and the poller's clock when it was read."""

    progress: float
    at: float


@frozen
class Estimate:
    """Seconds to the finish and their relative uncertainty (≥ ``TRUSTED_SPREAD``: a bound).

    ``start_age`` is the age at which the task started running, when a rate says it."""

    remaining: float
    spread: float
    start_age: float | None = None


def estimate_finish(
    progress: float | None,
    *,
    now: float,
    age: float,
    previous: Reading | None,
    server_ran: float | None = None,
    typical_start: float | None = None,
) -> Estimate | None:
    """The finish estimate from progress; None without a usable progress (0 < p < 1).

    ``server_ran`` is how long the server says the task has been running;
    ``typical_start`` the learned median age at which tasks start running."""
    if progress is None or not 0 < progress < 1:
        return None
    left = (1 - progress) / progress
    if previous is not None and progress > previous.progress:
        rate = (progress - previous.progress) / max(now - previous.at, 1e-6)
        start_age = min(age, max(0.0, age - progress / rate))
        return Estimate((1 - progress) / rate, RATE_SPREAD, start_age)
    if server_ran is not None and 0 < server_ran <= age + 1:
        return Estimate(server_ran * left, SERVER_START_SPREAD)
    if typical_start is not None and age > typical_start:
        return Estimate((age - typical_start) * left, LEARNED_START_SPREAD)
    return Estimate(age * left, TRUSTED_SPREAD)


def is_landing(estimate: Estimate | None) -> bool:
    """Whether the next poll aims at an estimated finish. Such a delay is not jittered:
    finishes are spread already, and jitter would only add to the detection latency."""
    return estimate is not None and estimate.spread < TRUSTED_SPREAD


def next_poll_delay(
    policy: PollPolicy,
    *,
    age: float,
    estimate: Estimate | None,
    queued: bool,
    started: bool,
    typical_duration: float | None,
) -> float:
    """Seconds until the next poll of a task still running (before any jitter).

    ``started``: the task is known to run (not pending); ``typical_duration``: the learned
    median duration, if any."""
    delay: float | None = None
    if estimate is not None and is_landing(estimate):
        delay = estimate.remaining * (1 + estimate.spread) + policy.min_interval * LANDING_MARGIN
    elif estimate is not None:
        delay = min(
            policy.interval,
            max(policy.min_interval, estimate.remaining * CALIBRATION_FRACTION),
        )
    elif typical_duration is not None and started and age < typical_duration - policy.interval:
        delay = typical_duration - age
    if delay is None:
        delay = policy.interval * (1 + age / (AGE_PER_EXTRA_INTERVAL * policy.interval))
        if queued:
            delay *= QUEUED_FACTOR
        if typical_duration is not None and age >= OVERDUE_FRACTION * typical_duration:
            delay = min(delay, policy.interval)
    return min(policy.max_interval, max(policy.min_interval, delay))


def first_poll_delay(policy: PollPolicy, fast_duration: float | None) -> float:
    """Seconds from the submit to the first poll (before jitter); ``fast_duration`` is the
    20th percentile of learned durations, if any."""
    if fast_duration is None:
        return policy.initial_delay
    return max(policy.initial_delay, FIRST_POLL_FRACTION * fast_duration)


def not_found_delay(policy: PollPolicy, errors: int) -> float:
    """The wait after ``errors`` ``task_not_exist`` answers within the grace: a fresh id
    usually shows up within seconds (wire §3.1), so start short and double to ``interval``."""
    return min(policy.interval, policy.min_interval * 2.0**errors)


def jittered(delay: float, spread: float, rng: random.Random) -> float:
    """``delay`` randomised by ±``spread`` (a fraction), so many tasks spread out."""
    return delay * rng.uniform(1 - spread, 1 + spread) if spread else delay


# Durations and start times kept: enough for stable quantiles, bounded for 10,000 tasks.
LEARNED_SAMPLES = 256
# Quantiles are recomputed on every new value while there are few, then once per this many:
# they move slowly, and sorting 256 values on every poll would not.
RELEARN_EVERY = 16
# The "fast" duration is this quantile: most tasks take longer, so a first poll planned
# from it rarely comes after the finish.
FAST_QUANTILE = 0.2


def _stale(count: int) -> bool:
    return count <= RELEARN_EVERY or count % RELEARN_EVERY == 1


class Learned:
    """What tasks taught so far: whole durations and the age at which they started running.

    Plain data and arithmetic (no clock): the poller feeds it, pacing reads it."""

    def __init__(self) -> None:
        self._durations: deque[float] = deque(maxlen=LEARNED_SAMPLES)
        self._starts: deque[float] = deque(maxlen=LEARNED_SAMPLES)
        self._quantiles: tuple[float, float] | None = None
        self._start_median: float | None = None

    @property
    def durations(self) -> int:
        """How many durations were learned (at most ``LEARNED_SAMPLES`` kept)."""
        return len(self._durations)

    def add_duration(self, seconds: float) -> None:
        self._durations.append(seconds)
        if _stale(len(self._durations)):
            self._quantiles = None

    def add_start(self, age: float) -> None:
        self._starts.append(age)
        if _stale(len(self._starts)):
            self._start_median = None

    def _pair(self) -> tuple[float, float] | None:
        if not self._durations:
            return None
        if self._quantiles is None:
            ordered = sorted(self._durations)
            fast = ordered[int(len(ordered) * FAST_QUANTILE)]
            self._quantiles = (fast, statistics.median(ordered))
        return self._quantiles

    def fast_duration(self) -> float | None:
        """The ``FAST_QUANTILE`` of learned durations, None before any."""
        pair = self._pair()
        return pair[0] if pair is not None else None

    def typical_duration(self) -> float | None:
        """The median learned duration, None before any."""
        pair = self._pair()
        return pair[1] if pair is not None else None

    def typical_start(self) -> float | None:
        """The median age at which tasks started running, None before any was measured."""
        if not self._starts:
            return None
        if self._start_median is None:
            self._start_median = statistics.median(self._starts)
        return self._start_median
