"""Shared test settings: tiny policies instead of patched sleeps, and a client for a fake."""

from __future__ import annotations

from cometrunway import Client, PollPolicy, RetryPolicy
from cometrunway.testing import FakeCometAPI

FAST_POLL = PollPolicy(
    initial_delay=0,
    interval=0.01,
    max_interval=0.05,
    min_interval=0.005,
    not_found_grace=5.0,
    requests_per_second=10_000,
    jitter=0,
)
FAST_RETRY = RetryPolicy(max_tries=3, base_delay=0.001, max_delay=0.01, jitter=0)
KEY = "sk-test-secret-0123456789"


def client_for(fake: FakeCometAPI, **options: object) -> Client:
    """A client for ``fake`` with the fast policies unless ``options`` say otherwise."""
    options.setdefault("poll", FAST_POLL)
    options.setdefault("retry", FAST_RETRY)
    return Client(KEY, base_url=fake.url, **options)  # type: ignore[arg-type]
