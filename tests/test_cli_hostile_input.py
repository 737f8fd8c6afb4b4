"""Bad and hostile input to the command line: every case ends in one clear error naming the
file and line (exit 2, or 3 for the key file), nothing is sent, and server-chosen text cannot
drive the user's terminal. In-process: the readers are pure functions of a file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from cometrunway.cli import _reading
from cometrunway.cli._common import CliError, ExitCode, dumps, printable
from cometrunway.cli._inputs import read_batch
from cometrunway.cli._session import api_key


def batch_error(path: Path) -> CliError:
    with pytest.raises(CliError) as caught:
        read_batch(path)
    assert caught.value.code is ExitCode.USAGE
    return caught.value


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def test_a_file_of_nul_bytes_is_refused_as_binary(tmp_path: Path) -> None:
    error = batch_error(write(tmp_path, "prompts.txt", b"\0" * 64))
    assert "line 1 holds a NUL byte" in error.message
    assert "binary file" in error.message


def test_nul_inside_a_csv_names_its_line(tmp_path: Path) -> None:
    error = batch_error(write(tmp_path, "p.csv", b"prompt\na fox\nbad\0cell\n"))
    assert "line 3 holds a NUL byte" in error.message


def test_csv_with_an_unclosed_quote_is_an_error_not_a_swallowed_file(tmp_path: Path) -> None:
    error = batch_error(write(tmp_path, "p.csv", 'prompt\n"a fox\nanother line\n'))
    assert "line 2" in error.message
    assert "never closed" in error.message


def test_csv_field_over_the_cell_limit(tmp_path: Path) -> None:
    error = batch_error(write(tmp_path, "p.csv", "prompt\n" + '"' + "x" * 200_000 + '"\n'))
    assert "line 2" in error.message
    assert "KiB" in error.message


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_jsonl_non_finite_constants_are_refused(tmp_path: Path, literal: str) -> None:
    line = '{"prompt": "a fox", "extra": {"x": ' + literal + "}}"
    error = batch_error(write(tmp_path, "p.jsonl", line + "\n"))
    assert "line 1" in error.message
    assert literal in error.message
    assert "finite number" in error.message


def test_jsonl_overflowing_float_is_refused(tmp_path: Path) -> None:
    error = batch_error(write(tmp_path, "p.jsonl", '{"prompt": "a fox", "seconds": 1e999}\n'))
    assert "finite number" in error.message


def test_jsonl_nested_100k_deep(tmp_path: Path) -> None:
    line = '{"prompt": "a", "extra": ' + "[" * 100_000 + "]" * 100_000 + "}"
    error = batch_error(write(tmp_path, "p.jsonl", line + "\n"))
    assert "line 1" in error.message
    assert "nested" in error.message


def test_jsonl_a_5000_digit_number(tmp_path: Path) -> None:
    line = '{"prompt": "a fox", "seconds": ' + "9" * 5000 + "}"
    error = batch_error(write(tmp_path, "p.jsonl", line + "\n"))
    assert "line 1" in error.message
    assert "too long" in error.message


def test_jsonl_lone_surrogate_names_the_field(tmp_path: Path) -> None:
    error = batch_error(write(tmp_path, "p.jsonl", '{"prompt": "a fox \\ud800"}\n'))
    assert '"prompt"' in error.message
    assert "lone surrogate" in error.message


def test_a_batch_file_over_the_cap_is_refused_without_reading_it_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cap is a named constant; a small one stands in for 128 MiB here.
    monkeypatch.setattr("cometrunway.cli._inputs.MAX_BATCH_FILE_BYTES", 1024)
    error = batch_error(write(tmp_path, "p.txt", "a prompt\n" * 1000))
    assert "larger than 1024 bytes" in error.message


def test_read_capped_stops_at_the_limit_on_an_endless_device() -> None:
    with pytest.raises(CliError) as caught:
        _reading.read_capped(
            Path("/dev/zero"), limit=4096, what="--api-key-file", code=ExitCode.CONFIG
        )
    assert caught.value.code is ExitCode.CONFIG
    assert "larger than 4096 bytes" in caught.value.message


def key_args(path: Path) -> argparse.Namespace:
    return argparse.Namespace(api_key_file=str(path))


def test_binary_api_key_file_exits_3(tmp_path: Path) -> None:
    path = write(tmp_path, "key", bytes(range(256)))
    with pytest.raises(CliError) as caught:
        api_key(key_args(path))
    assert caught.value.code is ExitCode.CONFIG
    assert "NUL byte" in caught.value.message


def test_api_key_file_with_control_characters_is_refused_without_echo(tmp_path: Path) -> None:
    path = write(tmp_path, "key", "sk-abc\x1b[2Jdef\n")
    with pytest.raises(CliError) as caught:
        api_key(key_args(path))
    assert caught.value.code is ExitCode.CONFIG
    assert "sk-abc" not in caught.value.message


def test_dev_zero_as_key_file_exits_3() -> None:
    with pytest.raises(CliError) as caught:
        api_key(key_args(Path("/dev/zero")))
    assert caught.value.code is ExitCode.CONFIG


def test_a_good_key_file_still_works(tmp_path: Path) -> None:
    assert api_key(key_args(write(tmp_path, "key", "\ufeffsk-good-key-123\n"))) == (
        "sk-good-key-123"
    )


@pytest.mark.parametrize(
    ("hostile", "shown"),
    [
        ("id\x1b[2J", "id\\x1b[2J"),
        ("id\x9b31m", "id\\x9b31m"),
        ("a\rb", "a\\x0db"),
        ("abc\u202edcba", "abc\\u202edcba"),
    ],
)
def test_printable_shows_terminal_controls_as_escapes(hostile: str, shown: str) -> None:
    assert printable(hostile) == shown


def test_printable_keeps_ordinary_text() -> None:
    text = "une forêt\tenneigée\n狐狸 [SAFETY.INPUT.TEXT]"
    assert printable(text) == text


def test_json_output_escapes_c1_controls_and_stays_valid_json() -> None:
    line = dumps({"task_id": "t\x9b1m", "error": "x\x1b[31m"})
    assert "\x9b" not in line
    assert "\x1b" not in line
    assert json.loads(line) == {"task_id": "t\x9b1m", "error": "x\x1b[31m"}
