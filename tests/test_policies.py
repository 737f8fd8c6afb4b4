"""Policy values: fields added later never make an earlier valid call fail."""

from __future__ import annotations

import pytest

from cometrunway import PollPolicy, RetryPolicy
from cometrunway.policies import DEFAULT_MIN_INTERVAL


def test_a_tiny_interval_alone_is_accepted() -> None:
    policy = PollPolicy(interval=0.05)
    assert policy.interval == 0.05
    assert policy.min_interval == 0.05  # derived: never above interval


def test_min_interval_defaults_to_the_named_constant() -> None:
    assert PollPolicy().min_interval == DEFAULT_MIN_INTERVAL
    assert PollPolicy(interval=2).min_interval == DEFAULT_MIN_INTERVAL


def test_an_explicit_contradiction_is_still_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"min_interval \(0.5\) must be ≤ interval"):
        PollPolicy(interval=0.05, min_interval=0.5)


def test_new_fields_have_defaults_in_seconds() -> None:
    assert PollPolicy().output_grace == 600
    assert RetryPolicy().max_retry_after == 120
    with pytest.raises(ValueError, match="max_retry_after"):
        RetryPolicy(max_retry_after=-1)


def test_retry_after_is_a_floor_capped_by_max_retry_after() -> None:
    class Limited(Exception):
        retry_after = 1000.0

    policy = RetryPolicy(base_delay=1, max_delay=2, jitter=0)
    waits = policy.waits(max_retry_after=policy.max_retry_after)
    next(waits)
    assert waits.send(Limited()) == policy.max_retry_after
