"""Tunable policies: how the client retries requests and paces its polling.

Frozen values with defaults in seconds; tests pass tiny values instead of patching sleep.
"""

from __future__ import annotations

import math
import random
from collections.abc import Generator
from typing import Any

import attrs
from attrs import field, frozen

__all__ = ["DEFAULT_MIN_INTERVAL", "FleetPolicy", "PollPolicy", "RetryPolicy"]

# Polls of one task closer than this tell nothing new (progress moves in whole percents) and
# only spend the shared request budget.
DEFAULT_MIN_INTERVAL = 0.5


def _non_negative(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{type(inst).__name__}.{attribute.name} must be a number, got {value!r}")
    if value < 0:
        raise ValueError(f"{type(inst).__name__}.{attribute.name} must be ≥ 0, got {value!r}")


def _positive(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _non_negative(inst, attribute, value)
    if value == 0:
        raise ValueError(f"{type(inst).__name__}.{attribute.name} must be > 0, got {value!r}")


def _positive_int(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"{type(inst).__name__}.{attribute.name} must be an integer ≥ 1, got {value!r}"
        )


@frozen
class RetryPolicy:
    """Retries of creates that certainly were not accepted, and of downloads.

    ``max_tries`` counts the first attempt. Waits grow from ``base_delay`` doubling up to
    ``max_delay``, with jitter; a 429's ``Retry-After`` is a floor, never shortened, but
    capped at ``max_retry_after`` (a server asking for an hour is not waited out here).
    """

    max_tries: int = field(default=5, validator=_positive_int)
    base_delay: float = field(default=1.0, validator=_non_negative)
    max_delay: float = field(default=30.0, validator=_non_negative)
    jitter: float = field(default=0.2, validator=_non_negative)
    max_retry_after: float = field(default=120.0, validator=_non_negative)

    def delay(self, attempt: int) -> float:
        """The wait before retry number ``attempt`` (1-based), without jitter."""
        return float(min(self.max_delay, self.base_delay * 2.0 ** max(0, attempt - 1)))

    def waits(
        self, *, max_retry_after: float = math.inf, rng: random.Random | None = None
    ) -> Generator[float, Any, None]:
        """A wait generator in ``backoff``'s shape: doubling delays with jitter, and the
        failed attempt's ``retry_after`` (the error sent in) as a floor, capped at
        ``max_retry_after``. Prime it with ``next()`` (backoff does), then ``send`` each
        failure; a fresh generator starts the doubling again. ``rng`` draws the jitter
        (the module's generator by default; tests pass a seeded one)."""
        uniform = random.uniform if rng is None else rng.uniform
        error = yield 0.0  # backoff primes the generator with None
        attempt = 0
        while True:
            attempt += 1
            delay = self.delay(attempt)
            if self.jitter:
                delay *= uniform(1, 1 + self.jitter)
            retry_after = getattr(error, "retry_after", None)
            if isinstance(retry_after, int | float):
                delay = max(delay, min(float(retry_after), max_retry_after))
            error = yield delay


@frozen
class PollPolicy:
    """How the one poller paces itself.

    * ``initial_delay`` — first poll this long after the submit (longer once typical task
      durations have been learned).
    * ``interval`` — the base wait between polls; it grows with a task's age up to
      ``max_interval``, doubles while a task is queued, and shrinks (down to
      ``min_interval``) when progress says the task is about to finish.
    * ``not_found_grace`` — how long ``task_not_exist`` counts as "not visible yet" after a
      submit before the handle fails with ``TaskNotFound`` (see C14 in :doc:`/quirks`).
    * ``requests_per_second`` — one budget shared by submits and polls; a 429 anywhere
      pauses the client for its ``Retry-After`` and halves the rate until it recovers.
    * ``max_concurrent_polls`` — polls in flight at once.
    * ``jitter`` — fraction of each wait randomised, so thousands of tasks spread out.
    * ``min_interval`` — the shortest wait between two polls of a task; by default
      ``DEFAULT_MIN_INTERVAL`` or ``interval``, whichever is smaller, so a tiny ``interval``
      (tests) is accepted on its own.
    * ``output_grace`` — how long a task that reports success without a usable output URL
      is polled again before its handle fails.

    A field added here never makes a call that was valid before fail: its default is derived
    from the fields given when a fixed one would contradict them.
    """

    initial_delay: float = field(default=5.0, validator=_non_negative)
    interval: float = field(default=5.0, validator=_positive)
    max_interval: float = field(default=30.0, validator=_positive)
    not_found_grace: float = field(default=120.0, validator=_non_negative)
    min_interval: float = field(
        default=attrs.Factory(
            lambda self: min(DEFAULT_MIN_INTERVAL, self.interval), takes_self=True
        ),
        validator=_positive,
    )
    requests_per_second: float = field(default=50.0, validator=_positive)
    max_concurrent_polls: int = field(default=16, validator=_positive_int)
    jitter: float = field(default=0.1, validator=_non_negative)
    output_grace: float = field(default=600.0, validator=_non_negative)

    def error_backoff(self) -> RetryPolicy:
        """The waits after failed polls of one task, as a :class:`RetryPolicy`: doubling
        from ``interval`` up to ``max_interval``, with ``jitter``. A transient poll error is
        retried for as long as the task is followed, so ``max_tries`` plays no part."""
        return RetryPolicy(
            base_delay=self.interval, max_delay=self.max_interval, jitter=self.jitter
        )

    def __attrs_post_init__(self) -> None:
        if self.max_interval < self.interval:
            raise ValueError(
                f"PollPolicy.max_interval ({self.max_interval}) must be ≥ interval "
                f"({self.interval})"
            )
        if self.min_interval > self.interval:
            raise ValueError(
                f"PollPolicy.min_interval ({self.min_interval}) must be ≤ interval "
                f"({self.interval})"
            )


@frozen
class FleetPolicy:
    """How a client shares its tasks with other workers on the same fleet journal (a
    PostgreSQL journal; see :doc:`/workers`). Ignored with any other journal.

    * ``lease_seconds`` — how long a poll lease lasts without renewal (server time). A
      worker renews its leases every third of it, so a dead worker's tasks are taken over
      between ``lease_seconds`` and ``lease_seconds + claim_interval`` after its last renewal.
    * ``claim_interval`` — how often a worker claims unfinished tasks that nobody holds (a
      dead worker's, or tasks journaled by a worker that closed).
    * ``claim_limit`` — at most this many tasks claimed at a time, so one worker joining a
      busy fleet does not take every orphaned task at once.
    * ``sender_wait`` — how long a submit waits for another live worker that is sending the
      same request (same journal key) to get its task id, before the submit raises
      ``AmbiguousSubmitError`` as without a fleet.
    """

    lease_seconds: float = field(default=30.0, validator=_positive)
    claim_interval: float = field(default=5.0, validator=_positive)
    claim_limit: int = field(default=1000, validator=_positive_int)
    sender_wait: float = field(default=60.0, validator=_non_negative)
