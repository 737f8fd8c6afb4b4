"""The ``fake_cometapi`` fixture users get from the installed pytest plugin.

Users run async tests in three ways: pytest-asyncio in strict mode (its default), in auto
mode, or anyio's plugin. Each is checked here by a separate pytest run (``pytester``) of a
small test file that submits a task to the fixture's fake, with warnings as errors. Both
plugins are installed with the test extra and load themselves (their entry points).
"""

from __future__ import annotations

import pytest

from cometrunway import Client, PollPolicy, TaskStatus, TextToVideo
from cometrunway.testing import FakeCometAPI, Lifecycle

pytest_plugins = ["pytester"]

# A user's test file; {marker} is the line that makes it async for the runner under test.
USER_TEST = """
import pytest
from cometrunway import Client, PollPolicy, TaskStatus, TextToVideo
from cometrunway.testing import Lifecycle

FAST = PollPolicy(initial_delay=0, interval=0.01, min_interval=0.005, jitter=0)
{extra}

{marker}
async def test_a_task_against_the_fixture(fake_cometapi):
    fake_cometapi.lifecycle = Lifecycle.by_polls(1, 1)
    async with Client("key", base_url=fake_cometapi.url, poll=FAST) as client:
        task = await (await client.submit(TextToVideo("a cat")))
    assert task.status is TaskStatus.SUCCEEDED
    assert fake_cometapi.created_count() == 1
"""

ANYIO_BACKEND = """
@pytest.fixture
def anyio_backend():
    return "{backend}"
"""

INI = """
[pytest]
filterwarnings = error
"""
# pytest-asyncio warns unless this is set; with pytest-asyncio disabled it is an unknown option.
PYTEST_ASYNCIO_INI = "asyncio_default_fixture_loop_scope = function\n"


def run_user_test(
    pytester: pytest.Pytester, *args: str, marker: str = "", extra: str = ""
) -> pytest.RunResult:
    pytester.makeini(INI if "no:asyncio" in args else INI + PYTEST_ASYNCIO_INI)
    pytester.makepyfile(test_user=USER_TEST.format(marker=marker, extra=extra))
    # A subprocess: a fresh interpreter per run, as a user's own pytest run has (in-process
    # runs share plugin state with this one; with anyio 4.0 that left the fake unreachable).
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


async def test_fixture_serves_a_working_fake(fake_cometapi: FakeCometAPI) -> None:
    fake_cometapi.lifecycle = Lifecycle.by_polls(1, 1)
    policy = PollPolicy(initial_delay=0, interval=0.01, min_interval=0.005, jitter=0)
    async with Client("key", base_url=fake_cometapi.url, poll=policy) as client:
        task = await (await client.submit(TextToVideo("a cat")))
    assert task.status is TaskStatus.SUCCEEDED
    assert fake_cometapi.created_count() == 1


@pytest.mark.slow
def test_pytest_asyncio_strict_mode(pytester: pytest.Pytester) -> None:
    result = run_user_test(pytester, "--asyncio-mode=strict", marker="@pytest.mark.asyncio")
    result.assert_outcomes(passed=1)


@pytest.mark.slow
def test_pytest_asyncio_auto_mode(pytester: pytest.Pytester) -> None:
    result = run_user_test(pytester, "--asyncio-mode=auto")
    result.assert_outcomes(passed=1)


@pytest.mark.slow
def test_anyio_beside_pytest_asyncio_in_strict_mode(pytester: pytest.Pytester) -> None:
    result = run_user_test(
        pytester,
        "--asyncio-mode=strict",
        marker="@pytest.mark.anyio",
        extra=ANYIO_BACKEND.format(backend="asyncio"),
    )
    result.assert_outcomes(passed=1)


@pytest.mark.slow
def test_anyio_without_pytest_asyncio(pytester: pytest.Pytester) -> None:
    result = run_user_test(
        pytester,
        "-p",
        "no:asyncio",
        marker="@pytest.mark.anyio",
        extra=ANYIO_BACKEND.format(backend="asyncio"),
    )
    result.assert_outcomes(passed=1)


@pytest.mark.slow
def test_anyio_on_another_backend_is_told_to_use_asyncio(pytester: pytest.Pytester) -> None:
    result = run_user_test(
        pytester,
        "-p",
        "no:asyncio",
        marker="@pytest.mark.anyio",
        extra=ANYIO_BACKEND.format(backend="trio"),
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fake_cometapi needs the asyncio backend*'trio'*"])
