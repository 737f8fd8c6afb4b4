"""Request models validate what the wire reference states; Task and TaskStatus behave."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

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
    Task,
    TaskStatus,
    TextToVideo,
    VideoReference,
    VideoToVideo,
)

IMG = "https://a.example/i.jpg"
VID = "https://a.example/v.mp4"
REF = ReferenceImage(IMG)


def character(**kw: Any) -> RunwayCharacterPerformance:
    return RunwayCharacterPerformance(MediaInput(IMG, type="image"), MediaInput(VID), **kw)


# Each case: a constructor that must raise, the field the message names, and a fragment of
# what the message says is allowed.
INVALID: list[tuple[str, Any, str, str]] = [
    ("empty prompt", lambda: TextToVideo(""), "TextToVideo.prompt", "non-empty string"),
    ("blank prompt", lambda: TextToVideo("   "), "TextToVideo.prompt", "non-empty string"),
    ("prompt not str", lambda: TextToVideo(5), "TextToVideo.prompt", "non-empty string"),
    ("seconds 7", lambda: TextToVideo("p", seconds=7), "TextToVideo.seconds", "one of 5, 10"),
    ("seconds 5.0", lambda: TextToVideo("p", seconds=5.0), "TextToVideo.seconds", "one of 5, 10"),
    ("seconds True", lambda: TextToVideo("p", seconds=True), "TextToVideo.seconds", "5, 10"),
    ("seconds '5'", lambda: TextToVideo("p", seconds="5"), "TextToVideo.seconds", "5, 10"),
    ("seconds [5]", lambda: TextToVideo("p", seconds=[5]), "TextToVideo.seconds", "5, 10"),
    ("seconds ([5],)", lambda: TextToVideo("p", seconds=([5],)), "TextToVideo.seconds", "5, 10"),
    ("ratio 1280x720", lambda: TextToVideo("p", ratio="1280x720"), "TextToVideo.ratio", "W:H"),
    ("ratio 0:9", lambda: TextToVideo("p", ratio="0:9"), "TextToVideo.ratio", "W:H"),
    ("ratio empty", lambda: TextToVideo("p", ratio=""), "TextToVideo.ratio", "W:H"),
    ("ratio int", lambda: TextToVideo("p", ratio=16), "TextToVideo.ratio", "W:H"),
    ("empty model", lambda: TextToVideo("p", model=""), "TextToVideo.model", "non-empty"),
    ("empty style", lambda: TextToVideo("p", style=" "), "TextToVideo.style", "non-empty"),
    (
        "callback ftp",
        lambda: TextToVideo("p", callback_url="ftp://x.example/"),
        "TextToVideo.callback_url",
        "'https://…' or 'http://…'",
    ),
    ("motion nan", lambda: MotionVector(x=float("nan")), "MotionVector.x", "finite number"),
    ("motion inf", lambda: MotionVector(r=float("inf")), "MotionVector.r", "finite number"),
    ("motion str", lambda: MotionVector(y="0.4"), "MotionVector.y", "finite number"),
    ("motion bool", lambda: MotionVector(z=True), "MotionVector.z", "finite number"),
    (
        "image not url",
        lambda: ImageToVideo("p", image="db.xiaohuhd.com/1.jpeg"),
        "ImageToVideo.image",
        "URL",
    ),
    (
        "image scheme only",
        lambda: ImageToVideo("p", image="https://"),
        "ImageToVideo.image",
        "URL",
    ),
    (
        "image data uri",
        lambda: ImageToVideo("p", image="data:image/png;base64,AAA"),
        "ImageToVideo.image",
        "URL",
    ),
    (
        "end image",
        lambda: ImageToVideo("p", image=IMG, end_image="file:///x.jpg"),
        "ImageToVideo.end_image",
        "URL",
    ),
    (
        "end frame flag",
        lambda: ImageToVideo("p", image=IMG, image_as_end_frame=1),
        "ImageToVideo.image_as_end_frame",
        "True or False",
    ),
    (
        "i2v seconds",
        lambda: ImageToVideo("p", image=IMG, seconds=15),
        "ImageToVideo.seconds",
        "5, 10",
    ),
    (
        "i2v ratio",
        lambda: ImageToVideo("p", image=IMG, ratio="1280x720"),
        "ImageToVideo.ratio",
        "W:H",
    ),
    ("v2v video", lambda: VideoToVideo("p", video="v.mp4"), "VideoToVideo.video", "URL"),
    (
        "structure > 1",
        lambda: VideoToVideo("p", video=VID, structure_transformation=1.5),
        "VideoToVideo.structure_transformation",
        "0–1",
    ),
    (
        "structure < 0",
        lambda: VideoToVideo("p", video=VID, structure_transformation=-0.1),
        "VideoToVideo.structure_transformation",
        "0–1",
    ),
    ("flip", lambda: VideoToVideo("p", video=VID, flip="yes"), "VideoToVideo.flip", "True or"),
    ("v2v seconds", lambda: VideoToVideo("p", video=VID, seconds=0), "VideoToVideo.seconds", "5"),
    ("act one video", lambda: ActOne(video="", image=IMG), "ActOne.video", "URL"),
    ("act one image", lambda: ActOne(video=VID, image=None), "ActOne.image", "URL"),
    (
        "prompt image",
        lambda: RunwayImageToVideo("ftp://a.example/i.jpg"),
        "RunwayImageToVideo.prompt_image",
        "'https://…' or 'data:…'",
    ),
    (
        "prompt image http",
        lambda: RunwayImageToVideo("http://a.example/i.jpg"),
        "RunwayImageToVideo.prompt_image",
        "'https://…' or 'data:…'",
    ),
    (
        "prompt text 513",
        lambda: RunwayImageToVideo(IMG, prompt_text="x" * 513),
        "RunwayImageToVideo.prompt_text",
        "at most 512 characters",
    ),
    (
        "prompt text empty",
        lambda: RunwayImageToVideo(IMG, prompt_text=""),
        "RunwayImageToVideo.prompt_text",
        "non-empty",
    ),
    (
        "i2v seed high",
        lambda: RunwayImageToVideo(IMG, seed=1_000_000_000),
        "RunwayImageToVideo.seed",
        "0–999999999",
    ),
    (
        "i2v seed negative",
        lambda: RunwayImageToVideo(IMG, seed=-1),
        "RunwayImageToVideo.seed",
        "0–999999999",
    ),
    (
        "i2v seed float",
        lambda: RunwayImageToVideo(IMG, seed=1.0),
        "RunwayImageToVideo.seed",
        "integer",
    ),
    (
        "i2v seed bool",
        lambda: RunwayImageToVideo(IMG, seed=True),
        "RunwayImageToVideo.seed",
        "integer",
    ),
    (
        "duration 0",
        lambda: RunwayImageToVideo(IMG, duration=0),
        "RunwayImageToVideo.duration",
        "positive integer",
    ),
    (
        "duration float",
        lambda: RunwayImageToVideo(IMG, duration=5.5),
        "RunwayImageToVideo.duration",
        "positive integer",
    ),
    (
        "watermark",
        lambda: RunwayImageToVideo(IMG, watermark="false"),
        "RunwayImageToVideo.watermark",
        "True or False",
    ),
    (
        "i2v ratio",
        lambda: RunwayImageToVideo(IMG, ratio="1280x720"),
        "RunwayImageToVideo.ratio",
        "W:H",
    ),
    (
        "frame position",
        lambda: PromptFrame(IMG, position="middle"),
        "PromptFrame.position",
        "'first', 'last'",
    ),
    (
        "three frames",
        lambda: RunwayImageToVideo([PromptFrame(IMG)] * 3),
        "RunwayImageToVideo.prompt_image",
        "1–2",
    ),
    (
        "no frames",
        lambda: RunwayImageToVideo([]),
        "RunwayImageToVideo.prompt_image",
        "1–2",
    ),
    (
        "v2v prompt 1001",
        lambda: RunwayVideoToVideo(VID, model="aleph2", prompt_text="x" * 1001),
        "RunwayVideoToVideo.prompt_text",
        "at most 1000 characters",
    ),
    (
        "v2v seed",
        lambda: RunwayVideoToVideo(VID, model="aleph2", seed=4_294_967_296),
        "RunwayVideoToVideo.seed",
        "0–4294967295",
    ),
    (
        "v2v uri",
        lambda: RunwayVideoToVideo("s3://bucket/v.mp4", model="aleph2"),
        "RunwayVideoToVideo.video_uri",
        "URL",
    ),
    (
        "reference uri",
        lambda: VideoReference("http://a.example/dog.jpg"),
        "VideoReference.uri",
        "'https://…' or 'data:…'",
    ),
    ("reference type", lambda: VideoReference(IMG, type=""), "VideoReference.type", "non-empty"),
    (
        "moderation",
        lambda: ContentModeration(""),
        "ContentModeration.public_figure_threshold",
        "non-empty",
    ),
    (
        "upscale uri",
        lambda: RunwayVideoUpscale("", model="upscale_v1"),
        "RunwayVideoUpscale.video_uri",
        "URL",
    ),
    ("upscale model", lambda: RunwayVideoUpscale(VID, model=""), "RunwayVideoUpscale.model", "n"),
    ("media type", lambda: MediaInput(VID, type="audio"), "MediaInput.type", "'image', 'video'"),
    ("media uri", lambda: MediaInput("v.mp4"), "MediaInput.uri", "URL"),
    (
        "intensity 0",
        lambda: character(expression_intensity=0),
        "RunwayCharacterPerformance.expression_intensity",
        "1–5",
    ),
    (
        "intensity 6",
        lambda: character(expression_intensity=6),
        "RunwayCharacterPerformance.expression_intensity",
        "1–5",
    ),
    (
        "body control",
        lambda: character(body_control=0),
        "RunwayCharacterPerformance.body_control",
        "True or False",
    ),
    (
        "cp seed",
        lambda: character(seed=-5),
        "RunwayCharacterPerformance.seed",
        "0–4294967295",
    ),
    (
        "cp ratio",
        lambda: character(ratio="wide"),
        "RunwayCharacterPerformance.ratio",
        "W:H",
    ),
    (
        "t2i prompt 1001",
        lambda: RunwayTextToImage("x" * 1001, reference_images=[REF]),
        "RunwayTextToImage.prompt_text",
        "at most 1000 characters",
    ),
    (
        "t2i prompt empty",
        lambda: RunwayTextToImage("", reference_images=[REF]),
        "RunwayTextToImage.prompt_text",
        "non-empty",
    ),
    (
        "t2i no references",
        lambda: RunwayTextToImage("p", reference_images=[]),
        "RunwayTextToImage.reference_images",
        "1–3",
    ),
    (
        "t2i four references",
        lambda: RunwayTextToImage("p", reference_images=[REF] * 4),
        "RunwayTextToImage.reference_images",
        "1–3",
    ),
    (
        "t2i references None",
        lambda: RunwayTextToImage("p", reference_images=None),
        "RunwayTextToImage.reference_images",
        "1–3",
    ),
    (
        "t2i seed",
        lambda: RunwayTextToImage("p", reference_images=[REF], seed=2**32),
        "RunwayTextToImage.seed",
        "0–4294967295",
    ),
    ("tag", lambda: ReferenceImage(IMG, tag=""), "ReferenceImage.tag", "non-empty"),
]


@pytest.mark.parametrize(
    ("build", "field_name", "allowed"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
def test_each_documented_constraint_names_field_and_allowed_values(
    build: Any, field_name: str, allowed: str
) -> None:
    with pytest.raises(ValueError) as info:
        build()
    message = str(info.value)
    assert field_name in message
    assert allowed in message


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: TextToVideo("p", motion_vector={"x": 1}), "TextToVideo.motion_vector"),
        (lambda: ImageToVideo("p", image=IMG, motion_vector=(1, 2)), "ImageToVideo.motion_vector"),
        (lambda: RunwayCharacterPerformance(IMG, MediaInput(VID)), "character must be a"),
        (
            lambda: RunwayVideoToVideo(VID, model="aleph2", references=[IMG]),
            "items must be VideoReference",
        ),
        (lambda: RunwayImageToVideo([IMG]), "items must be PromptFrame"),
        (
            lambda: RunwayVideoToVideo(VID, model="aleph2", content_moderation="auto"),
            "content_moderation",
        ),
        (lambda: TextToVideo("p", extra=[("a", 1)]), "extra must be a mapping"),
        (lambda: TextToVideo("p", extra={1: "x"}), "extra keys must be wire field names"),
    ],
)
def test_wrong_kinds_are_type_errors(build: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        build()


@pytest.mark.parametrize(
    "build",
    [
        lambda: TextToVideo("p", model="gen4.5-brand-new"),
        lambda: TextToVideo("p", ratio="21:9"),
        lambda: TextToVideo("p", ratio="4:3"),
        lambda: TextToVideo("p", ratio="2.39:1"),
        lambda: ImageToVideo("p", image=IMG, ratio="1584:672", model="gen3"),
        lambda: RunwayImageToVideo(IMG, model="veo3.1", ratio="21:9", duration=8),
        lambda: RunwayImageToVideo("data:image/png;base64,iVBORw0KGgo="),
        lambda: RunwayImageToVideo(IMG, prompt_text="x" * 512, seed=999_999_999),
        lambda: RunwayVideoToVideo(VID, model="aleph2", prompt_text="x" * 1000, seed=4_294_967_295),
        lambda: RunwayTextToImage("x" * 1000, reference_images=[REF] * 3, ratio="1920:1080"),
        lambda: character(expression_intensity=1, seed=0),
        lambda: character(expression_intensity=5, model="act_two_v2"),
        lambda: VideoToVideo("p", video="http://a.example/v.mp4", structure_transformation=0),
        lambda: ContentModeration("some-future-value"),
    ],
)
def test_open_ended_values_are_accepted(build: Any) -> None:
    built = build()
    assert attrs.has(type(built))


def test_defaults_match_the_design() -> None:
    t2v = TextToVideo("a cat")
    assert (t2v.model, t2v.ratio, t2v.style, t2v.seconds) == ("gen4", "16:9", "cinematic", 5)
    assert t2v.motion_vector == MotionVector(0, 0, 0, 0, 0, 0)
    assert t2v.callback_url is None
    assert dict(t2v.extra) == {}
    i2v = RunwayImageToVideo(IMG)
    assert i2v.model == "gen4_turbo"
    assert (i2v.prompt_text, i2v.seed, i2v.duration, i2v.watermark) == (None,) * 4
    assert i2v.ratio == "1280:720"  # Runway requires a ratio for gen4_turbo (wire §8.3)
    assert character().model == "act_two"
    assert RunwayTextToImage("p", reference_images=[REF]).model == "gen4_image"
    assert ImageToVideo("p", image=IMG).ratio == "1280:720"


def test_routes_and_poll_routes() -> None:
    assert TextToVideo.path == ImageToVideo.path == "/runway/pro/generate"
    assert VideoToVideo.path == "/runway/pro/video2video"
    assert ActOne.path == "/runway/pro/act_one"
    assert RunwayImageToVideo.path == "/runwayml/v1/image_to_video"
    assert RunwayVideoToVideo.path == "/runwayml/v1/video_to_video"
    assert RunwayVideoUpscale.path == "/runwayml/v1/video_upscale"
    assert RunwayCharacterPerformance.path == "/runwayml/v1/character_performance"
    assert RunwayTextToImage.path == "/runwayml/v1/text_to_image"
    for pro in (TextToVideo, ImageToVideo, VideoToVideo, ActOne):
        assert pro.poll_route == "feed"
        assert pro.takes_callback is True
    for official in (
        RunwayImageToVideo,
        RunwayVideoToVideo,
        RunwayVideoUpscale,
        RunwayCharacterPerformance,
        RunwayTextToImage,
    ):
        assert official.poll_route == "tasks"
        assert official.takes_callback is False


def test_sequences_become_tuples_and_single_items_are_wrapped() -> None:
    frames = RunwayImageToVideo([PromptFrame(IMG), PromptFrame(IMG, "last")], model="veo3.1")
    assert frames.prompt_image == (PromptFrame(IMG), PromptFrame(IMG, "last"))
    one = RunwayImageToVideo(PromptFrame(IMG))
    assert one.prompt_image == (PromptFrame(IMG),)
    refs = RunwayVideoToVideo(
        VID, model="aleph2", references=(VideoReference(IMG) for _ in range(2))
    )
    assert refs.references == (VideoReference(IMG), VideoReference(IMG))
    single = RunwayTextToImage("p", reference_images=REF)
    assert single.reference_images == (REF,)
    assert RunwayVideoToVideo(VID, model="aleph2", references=None).references == ()


def test_models_are_frozen_hashable_values() -> None:
    request = TextToVideo("a cat", extra={"k": {"nested": 1}})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        request.prompt = "a dog"  # type: ignore[misc]
    with pytest.raises(TypeError):
        request.extra["k"] = 2  # type: ignore[index]
    assert TextToVideo("a cat") == TextToVideo("a cat")
    assert hash(MotionVector(1)) == hash(MotionVector(1))
    with_extra = TextToVideo("a cat", extra={"k": {"nested": [1]}})
    assert hash(with_extra) == hash(TextToVideo("a cat", extra={"k": {"nested": [1]}}))
    handles = {with_extra: "h1", RunwayTextToImage("p", reference_images=[REF]): "h2"}
    assert handles[TextToVideo("a cat", extra={"k": {"nested": [1]}})] == "h1"
    assert TextToVideo("a cat") not in handles  # extra still counts for equality
    assert TextToVideo("a cat") != TextToVideo("a dog")


def test_extra_is_copied_not_shared() -> None:
    source: dict[str, Any] = {"a": 1}
    request = TextToVideo("p", extra=source)
    source["b"] = 2
    assert dict(request.extra) == {"a": 1}


# ---------------------------------------------------------------- TaskStatus and Task


@pytest.mark.parametrize(
    ("status", "terminal"),
    [
        (TaskStatus.PENDING, False),
        (TaskStatus.RUNNING, False),
        (TaskStatus.SUCCEEDED, True),
        (TaskStatus.FAILED, True),
        (TaskStatus.CANCELLED, True),
    ],
)
def test_task_status_terminality(status: TaskStatus, terminal: bool) -> None:
    assert status.is_terminal is terminal
    assert Task("t", status).is_terminal is terminal
    assert status == status.value  # a StrEnum: compares with its wire word


def test_task_pending_placeholder() -> None:
    task = Task.pending("abc")
    assert task.task_id == "abc"
    assert task.status is TaskStatus.PENDING
    assert (task.progress, task.outputs, task.video_url, task.error) == (None, (), None, None)


def test_task_all_urls_orders_and_dedupes() -> None:
    task = Task(
        "t",
        TaskStatus.SUCCEEDED,
        outputs=("https://a/v.mp4", "https://a/p.png"),
        poster_url="https://a/p.png",
        last_frame_url="https://a/l.png",
    )
    assert task.all_urls == ("https://a/v.mp4", "https://a/p.png", "https://a/l.png")
    assert Task("t", TaskStatus.PENDING).all_urls == ()


def test_task_equality_ignores_raw() -> None:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    one = Task("t", TaskStatus.RUNNING, raw={"a": 1}, created_at=created)
    two = Task("t", TaskStatus.RUNNING, raw={"b": 2}, created_at=created)
    assert one == two
    assert "{'a': 1}" not in repr(one)
    assert one != Task("t", TaskStatus.PENDING, created_at=created)


def test_extra_none_is_empty() -> None:
    request = TextToVideo("p", extra=None)
    assert dict(request.extra) == {}
    assert request == TextToVideo("p")


PICKLABLE: list[Any] = [
    TextToVideo("a cat", seconds=10, extra={"options": {"x": 1}}),
    ImageToVideo("p", image=IMG, motion_vector=MotionVector(x=1), end_image=IMG),
    VideoToVideo("p", video=VID, flip=True),
    ActOne(video=VID, image=IMG, callback_url="https://hooks.example/"),
    RunwayImageToVideo([PromptFrame(IMG), PromptFrame(IMG, "last")], model="veo3.1", seed=1),
    RunwayVideoToVideo(
        VID,
        model="aleph2",
        references=[VideoReference(IMG)],
        content_moderation=ContentModeration(),
    ),
    RunwayVideoUpscale(VID, model="upscale_v1"),
    character(body_control=True),
    RunwayTextToImage("p", reference_images=[REF]),
    Task("t", TaskStatus.SUCCEEDED, outputs=(VID,), created_at=datetime(2026, 1, 1, tzinfo=UTC)),
]


@pytest.mark.parametrize("value", PICKLABLE, ids=[type(v).__name__ for v in PICKLABLE])
def test_models_pickle_and_copy(value: Any) -> None:
    clone = pickle.loads(pickle.dumps(value))
    assert clone == value
    assert hash(clone) == hash(value)
    assert copy.deepcopy(value) == value


def test_extra_reads_like_a_dict() -> None:
    request = TextToVideo("p", extra={"a": 1, "b": {"c": 2}})
    assert request.extra == {"a": 1, "b": {"c": 2}}
    assert list(request.extra) == ["a", "b"]
    assert len(request.extra) == 2
    assert request.extra["b"] == {"c": 2}
    assert "extra={'a': 1, 'b': {'c': 2}}" in repr(request)
