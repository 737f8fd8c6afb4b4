"""The 2026-11-30 request surface (wire reference §8.1, §8.3): the two audio routes, and
defaults that are valid at Runway today or absent with a message saying which model to name."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

import cometrunway
from cometrunway._converter import request_body
from cometrunway._model_ids import KNOWN_MODELS, MODEL_IDS_CHECKED
from cometrunway.models import (
    REQUEST_TYPES,
    PromptFrame,
    RunwayImageToVideo,
    RunwaySoundEffect,
    RunwayTextToSpeech,
    RunwayVideoToVideo,
    RunwayVideoUpscale,
)
from cometrunway.protocol import build_submit

IMG = "https://a.example/i.jpg"
VID = "https://a.example/v.mp4"
CB = "https://hooks.example/cb"


# ---------------------------------------------------------------- text_to_speech


def test_text_to_speech_body_is_the_documented_shape() -> None:
    body = request_body(RunwayTextToSpeech("Hello there."), callback_url=CB)
    assert body == {
        "model": "eleven_multilingual_v2",
        "promptText": "Hello there.",
        "voice": {"type": "runway-preset", "presetId": "Maya"},
    }


def test_text_to_speech_model_voice_and_extra() -> None:
    request = RunwayTextToSpeech(
        "Hi", model="eleven_v4", voice="Bernard", extra={"voice": {"x": 1}, "seed": 3}
    )
    body = request_body(request, callback_url=CB)
    assert body["model"] == "eleven_v4"
    assert body["voice"] == {"type": "runway-preset", "presetId": "Bernard", "x": 1}
    assert body["seed"] == 3


def test_text_to_speech_is_submitted_on_its_route_and_polled_on_tasks() -> None:
    built = build_submit(RunwayTextToSpeech("Hi"), api_key="k")
    assert built.method == "POST"
    assert built.path == "/runwayml/v1/text_to_speech"
    assert RunwayTextToSpeech.poll_route == "tasks"
    assert RunwayTextToSpeech.takes_callback is False


@pytest.mark.parametrize(
    ("build", "field", "says"),
    [
        (lambda: RunwayTextToSpeech(""), "RunwayTextToSpeech.prompt_text", "non-empty"),
        (lambda: RunwayTextToSpeech("   "), "RunwayTextToSpeech.prompt_text", "non-empty"),
        (
            lambda: RunwayTextToSpeech("x" * 2501, model="eleven_v4"),
            "RunwayTextToSpeech.prompt_text",
            "at most 2500",
        ),
        (
            lambda: RunwayTextToSpeech("x" * 1001),
            "RunwayTextToSpeech.prompt_text",
            "at most 1000 characters for eleven_multilingual_v2",
        ),
        (lambda: RunwayTextToSpeech("hi", voice=""), "RunwayTextToSpeech.voice", "non-empty"),
        (lambda: RunwayTextToSpeech("hi", model=""), "RunwayTextToSpeech.model", "non-empty"),
    ],
)
def test_text_to_speech_refuses_bad_input_naming_the_field(
    build: Any, field: str, says: str
) -> None:
    with pytest.raises(ValueError, match=field.replace(".", r"\.")) as caught:
        build()
    assert says in str(caught.value)


def test_text_to_speech_limits_are_inclusive() -> None:
    assert len(RunwayTextToSpeech("x" * 2500, model="eleven_v4").prompt_text) == 2500
    assert len(RunwayTextToSpeech("x" * 1000).prompt_text) == 1000


# ---------------------------------------------------------------- sound_effect


def test_sound_effect_minimal_body() -> None:
    body = request_body(RunwaySoundEffect("A door slams."), callback_url=CB)
    assert body == {"promptText": "A door slams.", "model": "eleven_text_to_sound_v2"}


def test_sound_effect_full_body_keeps_false_loop() -> None:
    body = request_body(RunwaySoundEffect("Rain", duration=0.5, loop=False), callback_url=CB)
    assert body == {
        "promptText": "Rain",
        "model": "eleven_text_to_sound_v2",
        "duration": 0.5,
        "loop": False,
    }
    built = build_submit(RunwaySoundEffect("Rain", duration=30, loop=True), api_key="k")
    assert built.path == "/runwayml/v1/sound_effect"
    assert built.json()["duration"] == 30
    assert built.json()["loop"] is True


@pytest.mark.parametrize(
    ("build", "field", "says"),
    [
        (lambda: RunwaySoundEffect(""), "RunwaySoundEffect.prompt_text", "non-empty"),
        (lambda: RunwaySoundEffect("x" * 3001), "RunwaySoundEffect.prompt_text", "at most 3000"),
        (lambda: RunwaySoundEffect("x", duration=0.4), "RunwaySoundEffect.duration", "0.5–30"),
        (lambda: RunwaySoundEffect("x", duration=30.5), "RunwaySoundEffect.duration", "0.5–30"),
        (lambda: RunwaySoundEffect("x", duration="5"), "RunwaySoundEffect.duration", "number"),
        (lambda: RunwaySoundEffect("x", duration=True), "RunwaySoundEffect.duration", "number"),
        (
            lambda: RunwaySoundEffect("x", duration=float("nan")),
            "RunwaySoundEffect.duration",
            "finite",
        ),
        (lambda: RunwaySoundEffect("x", loop="yes"), "RunwaySoundEffect.loop", "True or False"),
        (lambda: RunwaySoundEffect("x", loop=1), "RunwaySoundEffect.loop", "True or False"),
    ],
)
def test_sound_effect_refuses_bad_input_naming_the_field(build: Any, field: str, says: str) -> None:
    with pytest.raises(ValueError, match=field.replace(".", r"\.")) as caught:
        build()
    assert says in str(caught.value)


def test_sound_effect_prompt_of_3000_is_accepted() -> None:
    assert len(RunwaySoundEffect("x" * 3000).prompt_text) == 3000


def test_audio_models_are_exported_requests_and_values() -> None:
    for cls in (RunwayTextToSpeech, RunwaySoundEffect):
        assert getattr(cometrunway, cls.__name__) is cls
        assert cls.__name__ in cometrunway.__all__
        assert cls in REQUEST_TYPES
    speech = RunwayTextToSpeech("Hi", voice="Maya")
    assert pickle.loads(pickle.dumps(speech)) == speech
    assert hash(speech) == hash(RunwayTextToSpeech("Hi"))
    sound = RunwaySoundEffect("Rain", duration=2.5, loop=True)
    assert pickle.loads(pickle.dumps(sound)) == sound


# ---------------------------------------------------------------- defaults valid today


def test_image_to_video_sends_a_ratio_runway_requires() -> None:
    body = build_submit(RunwayImageToVideo(IMG), api_key="k").json()
    assert body == {"promptImage": IMG, "model": "gen4_turbo", "ratio": "1280:720"}


@pytest.mark.parametrize("model", ["gen4.5", "veo3.1", "veo3.1_fast"])
def test_every_model_that_needs_a_ratio_gets_one(model: str) -> None:
    assert RunwayImageToVideo(IMG, model=model).ratio == "1280:720"


def test_a_given_ratio_wins_and_other_models_get_none() -> None:
    assert RunwayImageToVideo(IMG, ratio="720:1280").ratio == "720:1280"
    assert RunwayImageToVideo(IMG, model="gen3a_turbo").ratio is None
    assert RunwayImageToVideo(IMG, model="some_future_model").ratio is None


def test_the_design_signature_keeps_working() -> None:
    request = RunwayImageToVideo(
        IMG,
        model="gen4_turbo",
        prompt_text=None,
        seed=None,
        duration=None,
        ratio=None,
        watermark=None,
    )
    assert request.ratio == "1280:720"
    assert request == RunwayImageToVideo(IMG)


@pytest.mark.parametrize("model", ["gen4_turbo", "gen4.5"])
def test_a_last_frame_is_refused_for_first_frame_only_models(model: str) -> None:
    frames = [PromptFrame(IMG), PromptFrame(IMG, "last")]
    with pytest.raises(ValueError, match=r"RunwayImageToVideo\.prompt_image") as caught:
        RunwayImageToVideo(frames, model=model)
    assert f"{model} takes only a first frame" in str(caught.value)
    assert "'last' PromptFrame" in str(caught.value)


def test_a_last_frame_is_kept_for_models_that_take_one() -> None:
    frames = [PromptFrame(IMG), PromptFrame(IMG, "last")]
    body = build_submit(RunwayImageToVideo(frames, model="veo3.1"), api_key="k").json()
    assert body["promptImage"] == [
        {"uri": IMG, "position": "first"},
        {"uri": IMG, "position": "last"},
    ]
    assert RunwayImageToVideo([PromptFrame(IMG)], model="gen4_turbo").prompt_image


@pytest.mark.parametrize(
    ("build", "route", "retired"),
    [
        (lambda: RunwayVideoToVideo(VID), "video_to_video", "gen4_aleph"),
        (lambda: RunwayVideoToVideo(VID, model=""), "video_to_video", "gen4_aleph"),
        (lambda: RunwayVideoUpscale(VID), "video_upscale", "upscale_v1"),
    ],
)
def test_a_retired_default_is_never_sent_silently(build: Any, route: str, retired: str) -> None:
    with pytest.raises(ValueError, match=r"\.model must be named") as caught:
        build()
    message = str(caught.value)
    assert repr(retired) in message  # says which default is gone
    assert "§8.3" in message  # and why, with where to read more
    assert MODEL_IDS_CHECKED in message
    for known in KNOWN_MODELS[route]:
        assert repr(known) in message


@pytest.mark.parametrize(
    "build",
    [
        lambda: RunwayVideoToVideo(VID, model="aleph2"),
        lambda: RunwayVideoToVideo(VID, model="gen4_aleph"),  # CometAPI's pages still show it
        lambda: RunwayVideoToVideo(VID, model="tomorrows_model"),
        lambda: RunwayVideoUpscale(VID, model="magnific_video_upscaler_creative"),
        lambda: RunwayVideoUpscale(VID, model="upscale_v1"),
        lambda: RunwayVideoUpscale(VID, model="tomorrows_upscaler"),
    ],
)
def test_model_stays_an_open_string(build: Any) -> None:
    request = build()
    assert build_submit(request, api_key="k").json()["model"] == request.model
