"""Request models of the compatibility routes (``/runway/pro/*``), and the pieces shared with
the official-format models.

Each model validates at construction what the wire reference states (§1) and raises an error
naming the field and what is allowed; ``extra`` is a mapping merged into the wire body for
fields the docs do not show yet. Import them from ``cometrunway`` or ``cometrunway.models``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal, TypeAlias

from attrs import field, frozen

from ._validators import (
    _HTTP,
    _HTTPS_OR_DATA,
    _bool,
    _freeze_mapping,
    _instance_of,
    _non_empty_text,
    _number,
    _one_of,
    _optional,
    _ratio,
)

PollRoute: TypeAlias = Literal["feed", "tasks"]


# ---------------------------------------------------------------- shared pieces


@frozen
class MotionVector:
    """Camera motion for ``/runway/pro/generate`` (see :doc:`/quirks`).

    The docs name the keys only; read as x/y pan, z zoom, r roll, and background pans.
    """

    x: float = field(default=0, validator=_number())
    y: float = field(default=0, validator=_number())
    z: float = field(default=0, validator=_number())
    r: float = field(default=0, validator=_number())
    bg_x_pan: float = field(default=0, validator=_number())
    bg_y_pan: float = field(default=0, validator=_number())


# Frozen, so one still camera serves as every request's default.
_STILL = MotionVector()


@frozen
class PromptFrame:
    """One keyframe of ``RunwayImageToVideo.prompt_image``: ``position`` 'first' or 'last'."""

    uri: str = field(validator=_HTTPS_OR_DATA)
    position: str = field(default="first", validator=_one_of("first", "last"))


@frozen
class VideoReference:
    """An item of ``RunwayVideoToVideo.references``: ``{"type": "image", "uri": ...}``."""

    uri: str = field(validator=_HTTPS_OR_DATA)
    type: str = field(default="image", validator=_non_empty_text())


@frozen
class MediaInput:
    """``character``/``reference`` of ``RunwayCharacterPerformance``: type 'image' or 'video'."""

    uri: str = field(validator=_HTTPS_OR_DATA)
    type: str = field(default="video", validator=_one_of("image", "video"))


@frozen
class ReferenceImage:
    """An item of ``RunwayTextToImage.reference_images``; ``tag`` names it in the prompt."""

    uri: str = field(validator=_HTTPS_OR_DATA)
    tag: str | None = field(default=None, validator=_optional(_non_empty_text()))


@frozen
class ContentModeration:
    """``contentModeration`` of the official routes (Runway: 'auto' or 'low')."""

    public_figure_threshold: str = field(default="auto", validator=_non_empty_text())


# ---------------------------------------------------------------- /runway/pro/* requests


class _ProRequest:
    """Requests on CometAPI's compatibility routes; polled with ``POST /runway/feed``."""

    path: ClassVar[str]
    poll_route: ClassVar[PollRoute] = "feed"
    takes_callback: ClassVar[bool] = True


@frozen
class TextToVideo(_ProRequest):
    """``POST /runway/pro/generate`` text to video (see :doc:`/quirks`).

    Builds exactly the documented body: ``callback_url, ratio, prompt, style, model,
    options.seconds, options.motion_vector``.
    """

    path: ClassVar[str] = "/runway/pro/generate"

    prompt: str = field(validator=_non_empty_text())
    model: str = field(default="gen4", kw_only=True, validator=_non_empty_text())
    ratio: str = field(default="16:9", kw_only=True, validator=_ratio)
    style: str = field(default="cinematic", kw_only=True, validator=_non_empty_text())
    seconds: int = field(default=5, kw_only=True, validator=_one_of(5, 10))
    motion_vector: MotionVector = field(
        default=_STILL, kw_only=True, validator=_instance_of(MotionVector, "MotionVector")
    )
    callback_url: str | None = field(default=None, kw_only=True, validator=_optional(_HTTP))
    extra: Mapping[str, Any] = field(
        factory=dict, kw_only=True, converter=_freeze_mapping, hash=False
    )


@frozen
class ImageToVideo(_ProRequest):
    """``POST /runway/pro/generate`` with ``image``: animate an image (see :doc:`/quirks`).

    ``end_image`` is the end-frame image; CometAPI's pages do not show its wire name, the
    upstream format calls it ``last_image`` (§6 C12), which is what is sent.
    ``image_as_end_frame`` uses ``image`` as the last frame instead (upstream, gen-3).
    ``ratio=None`` and ``seconds=None`` leave those fields out, as the documented minimal
    body does.
    """

    path: ClassVar[str] = "/runway/pro/generate"

    prompt: str = field(validator=_non_empty_text())
    image: str = field(kw_only=True, validator=_HTTP)
    model: str = field(default="gen4", kw_only=True, validator=_non_empty_text())
    ratio: str | None = field(default="1280:720", kw_only=True, validator=_optional(_ratio))
    style: str | None = field(default=None, kw_only=True, validator=_optional(_non_empty_text()))
    seconds: int | None = field(default=5, kw_only=True, validator=_optional(_one_of(5, 10)))
    motion_vector: MotionVector | None = field(
        default=None,
        kw_only=True,
        validator=_optional(_instance_of(MotionVector, "MotionVector")),
    )
    end_image: str | None = field(default=None, kw_only=True, validator=_optional(_HTTP))
    image_as_end_frame: bool | None = field(default=None, kw_only=True, validator=_optional(_bool))
    callback_url: str | None = field(default=None, kw_only=True, validator=_optional(_HTTP))
    extra: Mapping[str, Any] = field(
        factory=dict, kw_only=True, converter=_freeze_mapping, hash=False
    )


@frozen
class VideoToVideo(_ProRequest):
    """``POST /runway/pro/video2video``: restyle a video (see :doc:`/quirks`)."""

    path: ClassVar[str] = "/runway/pro/video2video"

    prompt: str = field(validator=_non_empty_text())
    video: str = field(kw_only=True, validator=_HTTP)
    model: str = field(default="gen4", kw_only=True, validator=_non_empty_text())
    seconds: int | None = field(default=5, kw_only=True, validator=_optional(_one_of(5, 10)))
    structure_transformation: float | None = field(
        default=None, kw_only=True, validator=_optional(_number(0, 1))
    )
    flip: bool | None = field(default=None, kw_only=True, validator=_optional(_bool))
    callback_url: str | None = field(default=None, kw_only=True, validator=_optional(_HTTP))
    extra: Mapping[str, Any] = field(
        factory=dict, kw_only=True, converter=_freeze_mapping, hash=False
    )


@frozen
class ActOne(_ProRequest):
    """``POST /runway/pro/act_one``: move the performance of ``video`` onto ``image`` (§1.4).

    The docs ask for 16:9 source assets and a short, stable clip.
    """

    path: ClassVar[str] = "/runway/pro/act_one"

    video: str = field(kw_only=True, validator=_HTTP)
    image: str = field(kw_only=True, validator=_HTTP)
    callback_url: str | None = field(default=None, kw_only=True, validator=_optional(_HTTP))
    extra: Mapping[str, Any] = field(
        factory=dict, kw_only=True, converter=_freeze_mapping, hash=False
    )
