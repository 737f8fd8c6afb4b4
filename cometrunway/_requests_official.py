"""Request models of the official-format routes (``/runwayml/v1/*``), polled on the tasks route.

Fields are the wire's camelCase names in snake_case (see §8.1 in :doc:`/quirks`). The
model stays an open string; defaults are valid at Runway today or absent (wire §8.3, see
``_model_ids``). Import them from ``cometrunway`` or ``cometrunway.models``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
from attrs import field, frozen

from ._model_ids import (
    DEFAULT_VIDEO_RATIO,
    FIRST_FRAME_ONLY_MODELS,
    RATIO_REQUIRED_MODELS,
    model_must_be_named,
)
from ._requests_pro import (
    ContentModeration,
    MediaInput,
    PollRoute,
    PromptFrame,
    ReferenceImage,
    VideoReference,
)
from ._validators import (
    _HTTPS_OR_DATA,
    COMETAPI_I2V_SEED_MAX,
    RUNWAY_SEED_MAX,
    _bool,
    _freeze_mapping,
    _instance_of,
    _int_range,
    _non_empty_text,
    _number,
    _optional,
    _positive_int,
    _ratio,
    _to_tuple,
    _tuple_of,
)


class _OfficialRequest:
    """Requests on the official-format routes; polled with ``GET /runwayml/v1/tasks/{id}``."""

    path: ClassVar[str]
    poll_route: ClassVar[PollRoute] = "tasks"
    takes_callback: ClassVar[bool] = False


def _prompt_image(value: Any) -> str | tuple[PromptFrame, ...]:
    if isinstance(value, str):
        return value
    return _to_tuple(value)


def _check_prompt_image(
    inst: object, attribute: attrs.Attribute[Any], value: str | tuple[PromptFrame, ...]
) -> None:
    if isinstance(value, str):
        _HTTPS_OR_DATA(inst, attribute, value)
        return
    _tuple_of(PromptFrame, "PromptFrame", 1, 2)(inst, attribute, value)


def _named_model(route: str, retired: str) -> Any:
    """A model that has no default any more: absent or empty says which to name, and why."""

    def check(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value == "":
            raise ValueError(model_must_be_named(type(inst).__name__, route, retired))
        _non_empty_text()(inst, attribute, value)

    return check


@frozen
class RunwayImageToVideo(_OfficialRequest):
    """``POST /runwayml/v1/image_to_video`` (see :doc:`/quirks`).

    ``prompt_image`` is an HTTPS or data URI, or one or two ``PromptFrame`` for first/last
    frames. Limits are CometAPI's for this route (§6 C10): ``prompt_text`` ≤ 512 characters,
    ``seed`` 0–999999999.

    Runway requires ``ratio`` for gen4_turbo, gen4.5 and veo3.1 (wire §8.3; CometAPI's page
    calls it optional): when it is not given for one of those, ``ratio`` becomes
    ``"1280:720"``, which all of them accept. gen4_turbo and gen4.5 take only a first frame,
    so a ``'last'`` ``PromptFrame`` with them is refused here rather than by the server.
    """

    path: ClassVar[str] = "/runwayml/v1/image_to_video"

    prompt_image: str | tuple[PromptFrame, ...] = field(
        converter=_prompt_image, validator=_check_prompt_image
    )
    model: str = field(default="gen4_turbo", kw_only=True, validator=_non_empty_text())
    prompt_text: str | None = field(
        default=None, kw_only=True, validator=_optional(_non_empty_text(512))
    )
    seed: int | None = field(
        default=None, kw_only=True, validator=_optional(_int_range(0, COMETAPI_I2V_SEED_MAX))
    )
    duration: int | None = field(default=None, kw_only=True, validator=_optional(_positive_int))
    ratio: str | None = field(default=None, kw_only=True, validator=_optional(_ratio))
    watermark: bool | None = field(default=None, kw_only=True, validator=_optional(_bool))
    extra: Mapping[str, Any] = field(
        factory=dict, kw_only=True, converter=_freeze_mapping, hash=False
    )

    def __attrs_post_init__(self) -> None:
        model = self.model
        frames = self.prompt_image if isinstance(self.prompt_image, tuple) else ()
        if model in FIRST_FRAME_ONLY_MODELS and any(f.position == "last" for f in frames):
            raise ValueError(
                f"RunwayImageToVideo.prompt_image: {model} takes only a first frame "
                "(see docs/quirks.md, §8.3); drop the 'last' PromptFrame, or choose a model "
                "that takes a last frame, such as 'veo3.1'"
            )
        if self.ratio is None and model in RATIO_REQUIRED_MODELS:
            # Runway refuses these models without a ratio (wire §8.3): send one they all take.
            object.__setattr__(self, "ratio", DEFAULT_VIDEO_RATIO)


@frozen
class RunwayVideoToVideo(_OfficialRequest):
    """``POST /runwayml/v1/video_to_video`` (see :doc:`/quirks`).

    ``model`` must be named: the former default ``gen4_aleph`` is retired at Runway and no
    current model is documented for CometAPI's route (wire §8.3). Runway's current id is
    ``aleph2``; CometAPI's pages still show ``gen4_aleph``.
    """

    path: ClassVar[str] = "/runwayml/v1/video_to_video"

    video_uri: str = field(validator=_HTTPS_OR_DATA)
    model: str = field(
        default="", kw_only=True, validator=_named_model("video_to_video", "gen4_aleph")
    )
    prompt_text: str | None = field(
        default=None, kw_only=True, validator=_optional(_non_empty_text(1000))
    )
    seed: int | None = field(
        default=None, kw_only=True, validator=_optional(_int_range(0, RUNWAY_SEED_MAX))
    )
    references: tuple[VideoReference, ...] = field(
        default=(),
        kw_only=True,
        converter=_to_tuple,
        validator=_tuple_of(VideoReference, "VideoReference", 0, None),
    )
    ratio: str | None = field(default=None, kw_only=True, validator=_optional(_ratio))
    content_moderation: ContentModeration | None = field(
        default=None,
        kw_only=True,
        validator=_optional(_instance_of(ContentModeration, "ContentModeration")),
    )
    extra: Mapping[str, Any] = field(
        factory=dict, kw_only=True, converter=_freeze_mapping, hash=False
    )


@frozen
class RunwayVideoUpscale(_OfficialRequest):
    """``POST /runwayml/v1/video_upscale``: 4x upscale, ≤ 4096 px a side (§1.8).

    ``model`` must be named: the former default ``upscale_v1`` was sunset at Runway and no
    current model is documented for CometAPI's route (wire §8.3). Runway's current ids are
    ``magnific_video_upscaler_creative`` and ``enhance_frame_rate``; CometAPI's page still
    shows ``upscale_v1``.
    """

    path: ClassVar[str] = "/runwayml/v1/video_upscale"

    video_uri: str = field(validator=_HTTPS_OR_DATA)
    model: str = field(
        default="", kw_only=True, validator=_named_model("video_upscale", "upscale_v1")
    )
    extra: Mapping[str, Any] = field(
        factory=dict, kw_only=True, converter=_freeze_mapping, hash=False
    )


@frozen
class RunwayCharacterPerformance(_OfficialRequest):
    """``POST /runwayml/v1/character_performance`` (Act-Two; see :doc:`/quirks`).

    ``character`` is an image or video ``MediaInput``; ``reference`` the performance video.
    """

    path: ClassVar[str] = "/runwayml/v1/character_performance"

    character: MediaInput = field(validator=_instance_of(MediaInput, "MediaInput"))
    reference: MediaInput = field(validator=_instance_of(MediaInput, "MediaInput"))
    model: str = field(default="act_two", kw_only=True, validator=_non_empty_text())
    body_control: bool | None = field(default=None, kw_only=True, validator=_optional(_bool))
    expression_intensity: int | None = field(
        default=None, kw_only=True, validator=_optional(_int_range(1, 5))
    )
    seed: int | None = field(
        default=None, kw_only=True, validator=_optional(_int_range(0, RUNWAY_SEED_MAX))
    )
    ratio: str | None = field(default=None, kw_only=True, validator=_optional(_ratio))
    content_moderation: ContentModeration | None = field(
        default=None,
        kw_only=True,
        validator=_optional(_instance_of(ContentModeration, "ContentModeration")),
    )
    extra: Mapping[str, Any] = field(
        factory=dict, kw_only=True, converter=_freeze_mapping, hash=False
    )


@frozen
class RunwayTextToImage(_OfficialRequest):
    """``POST /runwayml/v1/text_to_image`` (see :doc:`/quirks`).

    CometAPI requires 1–3 ``reference_images`` (a text-only request is refused with
    ``reference_images_empty``, §3.1).
    """

    path: ClassVar[str] = "/runwayml/v1/text_to_image"

    prompt_text: str = field(validator=_non_empty_text(1000))
    reference_images: tuple[ReferenceImage, ...] = field(
        kw_only=True,
        converter=_to_tuple,
        validator=_tuple_of(ReferenceImage, "ReferenceImage", 1, 3),
    )
    model: str = field(default="gen4_image", kw_only=True, validator=_non_empty_text())
    ratio: str = field(default="1280:720", kw_only=True, validator=_ratio)
    seed: int | None = field(
        default=None, kw_only=True, validator=_optional(_int_range(0, RUNWAY_SEED_MAX))
    )
    extra: Mapping[str, Any] = field(
        factory=dict, kw_only=True, converter=_freeze_mapping, hash=False
    )


# ---------------------------------------------------------------- audio (wire §8.1)

# promptText limits: CometAPI's announcement says up to 2,500 characters (eleven_v4); Runway's
# SDK types give eleven_multilingual_v2 1,000 (wire reference §8.1).
SPEECH_PROMPT_MAX = 2500
SPEECH_PROMPT_MAX_BY_MODEL: Mapping[str, int] = {"eleven_multilingual_v2": 1000}
SOUND_PROMPT_MAX = 3000
SOUND_DURATION_MIN = 0.5
SOUND_DURATION_MAX = 30.0


@frozen
class RunwayTextToSpeech(_OfficialRequest):
    """``POST /runwayml/v1/text_to_speech``: speak ``prompt_text`` (see §8.1 in :doc:`/quirks`).

    Sends ``{"model", "promptText", "voice": {"type": "runway-preset", "presetId": voice}}``;
    the output is one audio URL (MP3). ``prompt_text`` is 1–2500 characters (1000 for
    ``eleven_multilingual_v2``). ``voice`` is a Runway preset name such as ``"Maya"``.
    """

    path: ClassVar[str] = "/runwayml/v1/text_to_speech"

    prompt_text: str = field(validator=_non_empty_text(SPEECH_PROMPT_MAX))
    model: str = field(default="eleven_multilingual_v2", kw_only=True, validator=_non_empty_text())
    voice: str = field(default="Maya", kw_only=True, validator=_non_empty_text())
    extra: Mapping[str, Any] = field(
        factory=dict, kw_only=True, converter=_freeze_mapping, hash=False
    )

    def __attrs_post_init__(self) -> None:
        limit = SPEECH_PROMPT_MAX_BY_MODEL.get(self.model)
        if limit is not None and len(self.prompt_text) > limit:
            raise ValueError(
                f"RunwayTextToSpeech.prompt_text must be at most {limit} characters for "
                f"{self.model}, got {len(self.prompt_text)}; shorten it or choose 'eleven_v4' "
                f"(up to {SPEECH_PROMPT_MAX})"
            )


@frozen
class RunwaySoundEffect(_OfficialRequest):
    """``POST /runwayml/v1/sound_effect``: a sound effect from a description (wire §8.1).

    ``prompt_text`` 1–3000 characters; ``duration`` 0.5–30 seconds (None: the model decides);
    ``loop`` True for a seamless loop. CometAPI's route is strict (no other fields), so
    ``extra`` is for what a newer page documents. The output is one audio URL (MP3).
    """

    path: ClassVar[str] = "/runwayml/v1/sound_effect"

    prompt_text: str = field(validator=_non_empty_text(SOUND_PROMPT_MAX))
    model: str = field(default="eleven_text_to_sound_v2", kw_only=True, validator=_non_empty_text())
    duration: float | None = field(
        default=None,
        kw_only=True,
        validator=_optional(_number(SOUND_DURATION_MIN, SOUND_DURATION_MAX)),
    )
    loop: bool | None = field(default=None, kw_only=True, validator=_optional(_bool))
    extra: Mapping[str, Any] = field(
        factory=dict, kw_only=True, converter=_freeze_mapping, hash=False
    )
