"""The private converter: request bodies per family, and wire records to values."""

from __future__ import annotations

from typing import Any

import pytest

from cometrunway._converter import OfficialTaskWire, RecordWire, request_body, structure
from cometrunway.errors import DecodeError
from cometrunway.models import (
    ActOne,
    ContentModeration,
    ImageToVideo,
    MediaInput,
    MotionVector,
    PromptFrame,
    ReferenceImage,
    RunwayCharacterPerformance,
    RunwayImageToVideo,
    RunwayTextToImage,
    RunwayVideoToVideo,
    RunwayVideoUpscale,
    TextToVideo,
    VideoReference,
    VideoToVideo,
)

CB = "https://hooks.example/cb"
IMG = "https://a.example/i.jpg"
VID = "https://a.example/v.mp4"


@pytest.mark.parametrize(
    ("request_model", "keys"),
    [
        (
            TextToVideo("p"),
            ["callback_url", "ratio", "prompt", "style", "model", "options"],
        ),
        (
            ImageToVideo("p", image=IMG, style="cinematic", end_image=IMG),
            ["callback_url", "image", "ratio", "prompt", "style", "model", "last_image", "options"],
        ),
        (VideoToVideo("p", video=VID), ["callback_url", "video", "model", "prompt", "options"]),
        (ActOne(video=VID, image=IMG), ["callback_url", "video", "image"]),
    ],
)
def test_pro_bodies_are_snake_case_with_callback(request_model: Any, keys: list[str]) -> None:
    body = request_body(request_model, callback_url=CB)
    assert list(body) == keys
    assert body["callback_url"] == CB


@pytest.mark.parametrize(
    ("request_model", "body"),
    [
        (
            RunwayImageToVideo(
                IMG, prompt_text="t", seed=1, duration=5, ratio="1:1", watermark=True
            ),
            {
                "promptImage": IMG,
                "model": "gen4_turbo",
                "promptText": "t",
                "seed": 1,
                "duration": 5,
                "ratio": "1:1",
                "watermark": True,
            },
        ),
        (
            RunwayImageToVideo([PromptFrame("data:image/png;base64,AA", "last")], model="veo3.1"),
            {
                "promptImage": [{"uri": "data:image/png;base64,AA", "position": "last"}],
                "model": "veo3.1",
                "ratio": "1280:720",
            },
        ),
        (
            RunwayVideoToVideo(
                VID,
                model="aleph2",
                references=[VideoReference(IMG)],
                content_moderation=ContentModeration("low"),
            ),
            {
                "videoUri": VID,
                "model": "aleph2",
                "references": [{"uri": IMG, "type": "image"}],
                "contentModeration": {"publicFigureThreshold": "low"},
            },
        ),
        (RunwayVideoUpscale(VID, model="upscale_v1"), {"videoUri": VID, "model": "upscale_v1"}),
        (
            RunwayCharacterPerformance(MediaInput(IMG, "image"), MediaInput(VID), seed=0),
            {
                "character": {"uri": IMG, "type": "image"},
                "reference": {"uri": VID, "type": "video"},
                "model": "act_two",
                "seed": 0,
            },
        ),
        (
            RunwayTextToImage("p", reference_images=[ReferenceImage(IMG)], seed=3),
            {
                "promptText": "p",
                "referenceImages": [{"uri": IMG}],
                "model": "gen4_image",
                "ratio": "1280:720",
                "seed": 3,
            },
        ),
    ],
)
def test_official_bodies_are_camel_case_without_empties(request_model: Any, body: Any) -> None:
    assert request_body(request_model, callback_url=CB) == body


def test_falsy_values_that_mean_something_are_kept() -> None:
    body = request_body(RunwayImageToVideo(IMG, seed=0, watermark=False), callback_url=CB)
    assert body["seed"] == 0
    assert body["watermark"] is False
    options = request_body(ImageToVideo("p", image=IMG, image_as_end_frame=False), callback_url=CB)[
        "options"
    ]
    assert options == {"seconds": 5, "image_as_end_frame": False}
    flip = request_body(VideoToVideo("p", video=VID, flip=False, seconds=None), callback_url=CB)
    assert flip["options"] == {"flip": False}


def test_image_to_video_motion_vector_goes_into_options() -> None:
    body = request_body(
        ImageToVideo("p", image=IMG, motion_vector=MotionVector(x=1.5), seconds=10),
        callback_url=CB,
    )
    assert body["options"] == {
        "seconds": 10,
        "motion_vector": {"x": 1.5, "y": 0, "z": 0, "r": 0, "bg_x_pan": 0, "bg_y_pan": 0},
    }


def test_own_callback_wins() -> None:
    body = request_body(
        ActOne(video=VID, image=IMG, callback_url="http://own.example/"), callback_url=CB
    )
    assert body["callback_url"] == "http://own.example/"


def test_extra_merges_deeply_and_replaces_scalars() -> None:
    request = VideoToVideo(
        "p",
        video=VID,
        structure_transformation=0.2,
        extra={"options": {"flip": True, "structure_transformation": 0.9}, "prompt": "override"},
    )
    body = request_body(request, callback_url=CB)
    assert body["options"] == {"seconds": 5, "structure_transformation": 0.9, "flip": True}
    assert body["prompt"] == "override"


def test_extra_does_not_touch_the_request() -> None:
    request = TextToVideo("p", extra={"options": {"seconds": 10}})
    request_body(request, callback_url=CB)
    body = request_body(request, callback_url=CB)
    assert body["options"]["seconds"] == 10
    assert request.seconds == 5
    assert dict(request.extra) == {"options": {"seconds": 10}}


# ---------------------------------------------------------------- structure


def test_structure_official_task_renames_camel_case() -> None:
    wire = structure(
        {"id": "t", "status": "FAILED", "createdAt": "2026", "failureCode": "X.Y", "extra": 1},
        OfficialTaskWire,
        what="task",
    )
    assert wire == OfficialTaskWire(id="t", status="FAILED", created_at="2026", failure_code="X.Y")


def test_structure_record_ignores_unknown_keys_and_accepts_int_ids() -> None:
    wire = structure(
        {"task_id": 7, "status": "3", "point": "200", "ip": "1.2.3.4"}, RecordWire, what="r"
    )
    assert wire.task_id == "7"
    assert wire.status == "3"


@pytest.mark.parametrize(
    ("data", "cls", "fragment"),
    [
        ({"status": "RUNNING"}, OfficialTaskWire, "required field missing @ $.id"),
        ({"id": "t", "status": {"a": 1}}, OfficialTaskWire, "$.status"),
        ({"id": True, "status": "RUNNING"}, OfficialTaskWire, "$.id"),
        ({"task_id": None}, RecordWire, "$.task_id"),
        ({"task_id": "t", "status": 1.5}, RecordWire, "$.status"),
        ({"task_id": ["t"]}, RecordWire, "$.task_id"),
        ([1, 2], RecordWire, "$"),
        ("text", OfficialTaskWire, "$"),
    ],
)
def test_structure_failures_are_readable_decode_errors(data: Any, cls: type, fragment: str) -> None:
    with pytest.raises(DecodeError) as info:
        structure(data, cls, what="$", body=b"raw")
    assert fragment in str(info.value)
    assert info.value.body == b"raw"
    assert info.value.__cause__ is not None
