"""Bad input to the library gets a clear error that names the field and says what to fix,
at construction, before anything is sent: never a ``TypeError`` from deep inside ``json``,
an ``OverflowError``, a ``UnicodeEncodeError`` mid-send, or a body that is not JSON."""

from __future__ import annotations

import math
from typing import Any

import pytest

from cometrunway import Client, MotionVector, RunwayVideoToVideo, TextToVideo
from cometrunway.protocol import build_submit


@pytest.mark.parametrize(
    ("extra", "kind", "says"),
    [
        ({"seed": math.nan}, ValueError, "extra['seed'] must be a finite number"),
        ({"seed": math.inf}, ValueError, "JSON has no NaN or Infinity"),
        ({"opts": {"scale": -math.inf}}, ValueError, "extra['opts']['scale']"),
        ({"tags": {"a", "b"}}, TypeError, "extra['tags'] must be a JSON value"),
        ({"blob": b"\x00\x01"}, TypeError, "got bytes"),
        ({"list": [1, object()]}, TypeError, "extra['list'][1]"),
        ({"text": "bad \ud800"}, ValueError, "lone surrogate"),
        ({"nested": {1: "x"}}, TypeError, "keys must be strings"),
    ],
)
def test_extra_must_be_json(extra: dict[str, Any], kind: type, says: str) -> None:
    with pytest.raises(kind, match=None) as caught:
        TextToVideo("a fox", extra=extra)
    assert says in str(caught.value)


def test_a_valid_extra_still_goes_on_the_wire() -> None:
    request = TextToVideo("a fox", extra={"seed": 7, "opts": {"scale": 1.5, "tags": ["a", None]}})
    body = build_submit(request, api_key="sk-test").json()
    assert body["seed"] == 7
    assert body["opts"] == {"scale": 1.5, "tags": ["a", None]}


def test_a_motion_value_past_float_range_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"MotionVector\.r must be a finite number") as caught:
        MotionVector(r=10**400)
    assert len(str(caught.value)) < 200  # the 400 digits are not printed


def test_references_given_as_a_number() -> None:
    with pytest.raises(TypeError, match=r"RunwayVideoToVideo\.references items must be"):
        RunwayVideoToVideo("https://cdn.example/in.mp4", model="gen4_aleph", references=5)  # type: ignore[arg-type]


def test_callback_url_given_as_a_number() -> None:
    with pytest.raises(ValueError, match=r"TextToVideo\.callback_url must be a URL"):
        TextToVideo("a fox", callback_url=5)  # type: ignore[arg-type]


@pytest.mark.parametrize("prompt", ["a fox \ud800 in snow", "\udfff"])
def test_a_prompt_with_a_lone_surrogate_is_refused_at_construction(prompt: str) -> None:
    with pytest.raises(ValueError, match=r"TextToVideo\.prompt holds a lone surrogate"):
        TextToVideo(prompt)


def test_journal_of_the_wrong_kind_is_refused_by_the_constructor() -> None:
    with pytest.raises(TypeError, match="journal must be a file path"):
        Client("sk-test-0123456789", journal=123)  # type: ignore[arg-type]


async def test_submit_many_of_none_says_what_it_takes() -> None:
    async with Client("sk-test-0123456789", base_url="http://127.0.0.1:9") as client:
        with pytest.raises(TypeError, match="iterable of request models"):
            await client.submit_many(None)  # type: ignore[arg-type]
