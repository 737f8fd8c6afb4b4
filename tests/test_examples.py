"""The runnable examples run, offline, against the in-process FakeCometAPI.

Each script runs in its own process with ``COMETAPI_KEY`` removed from the environment (so
it can never reach the real, billed API) and must exit 0 and print its tell-tale line.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TIMEOUT = 120  # seconds; each example takes a few against the fake

# script -> a line (fragment) its successful offline run prints
EXPECTED = {
    "single_generation.py": "done: 3 file(s) downloaded",
    "batch_with_progress.py": "tally: submitted=5 succeeded=4 failed=1 lost=0",
    "resume_after_crash.py": "tasks created on the server: 3 for 3 prompts (nothing paid twice)",
    "aiohttp_backend.py": "callbacks: received=1",
    "fastapi_backend.py": "-> SUCCEEDED",
    "typed_usage.py": "typed usage: ok",
    "journal_of_your_own.py": "journal of your own: 1 row(s) (SUCCEEDED)",
}
# Examples that use the fake whatever the environment says (they script its faults).
ALWAYS_FAKE = {"typed_usage.py", "journal_of_your_own.py"}


def offline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COMETAPI_KEY", "COMETAPI_BASE_URL")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_example(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_every_example_is_listed() -> None:
    found = {path.name for path in EXAMPLES.glob("*.py") if not path.name.startswith("_")}
    assert found == set(EXPECTED)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_offline(name: str, tmp_path: Path) -> None:
    if name == "fastapi_backend.py" and importlib.util.find_spec("fastapi") is None:
        pytest.skip("fastapi is not installed")
    args = (str(tmp_path / "out"),) if name == "single_generation.py" else ()
    result = run_example(name, *args, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    if name == "fastapi_backend.py" and "skipped:" in result.stdout:
        pytest.skip(result.stdout.strip())
    if name not in ALWAYS_FAKE:
        assert "COMETAPI_KEY is not set" in result.stdout, output
    assert EXPECTED[name] in result.stdout, output
    assert "Traceback" not in output, output


def test_examples_have_a_docstring_saying_what_they_show() -> None:
    for path in EXAMPLES.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        assert source.startswith('"""'), f"{path.name} has no module docstring"
        assert "FakeCometAPI" in source.split('"""', 2)[1], path.name
