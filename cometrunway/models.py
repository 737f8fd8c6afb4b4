"""Value types: one frozen request model per CometAPI Runway route, and the ``Task`` snapshot.

Request models validate at construction what the wire reference states (§1) and raise a
``ValueError`` naming the field and what is allowed. What the docs call open-ended (model
names, most ratios, durations the provider decides) is not checked: CometAPI forwards it.
Every request takes ``extra``, a mapping merged into the wire body for fields the docs do not
show yet. Turning a model into a wire body is ``_converter``'s job.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, ClassVar, Literal, TypeAlias

import attrs
from attrs import field, frozen

__all__ = [
    "ActOne",
    "ContentModeration",
    "ImageToVideo",
    "MediaInput",
    "MotionVector",
    "PromptFrame",
    "ReferenceImage",
    "Request",
    "RunwayCharacterPerformance",
    "RunwayImageToVideo",
    "RunwayTextToImage",
    "RunwayVideoToVideo",
    "RunwayVideoUpscale",
    "Task",
    "TaskStatus",
    "TextToVideo",
    "VideoReference",
    "VideoToVideo",
]

PollRoute: TypeAlias = Literal["feed", "tasks"]

# The largest seeds the docs allow (wire reference §1.6, §1.7, C10).
COMETAPI_I2V_SEED_MAX = 999_999_999
RUNWAY_SEED_MAX = 4_294_967_295

_RATIO = re.compile(r"^[1-9][0-9]*(\.[0-9]+)?:[1-9][0-9]*(\.[0-9]+)?$")


# ---------------------------------------------------------------- validators


def _fail(cls_name: str, name: str, allowed: str, value: object) -> ValueError:
    return ValueError(f"{cls_name}.{name} must be {allowed}, got {value!r}")


def _non_empty_text(max_len: int | None = None) -> Any:
    def check(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, str) or not value.strip():
            raise _fail(type(inst).__name__, attribute.name, "a non-empty string", value)
        if max_len is not None and len(value) > max_len:
            raise ValueError(
                f"{type(inst).__name__}.{attribute.name} must be at most {max_len} characters, "
                f"got {len(value)}"
            )

    return check


def _optional(check: Any) -> Any:
    def run(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None:
            check(inst, attribute, value)

    return run


def _ratio(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not _RATIO.match(value):
        raise _fail(
            type(inst).__name__,
            attribute.name,
            "a 'W:H' ratio such as '16:9' or '1280:720' (a colon, not an 'x')",
            value,
        )


def _uri(schemes: tuple[str, ...]) -> Any:
    def check(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        ok = isinstance(value, str) and any(
            value.startswith(s) and len(value) > len(s) for s in schemes
        )
        if not ok:
            shown = " or ".join(f"'{s}…'" for s in schemes)
            raise _fail(type(inst).__name__, attribute.name, f"a URL starting with {shown}", value)

    return check


_HTTP = _uri(("https://", "http://"))
_HTTPS_OR_DATA = _uri(("https://", "data:"))


def _int_range(lo: int, hi: int) -> Any:
    def check(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise _fail(type(inst).__name__, attribute.name, f"an integer {lo}–{hi}", value)

    return check


def _one_of(*allowed: object) -> Any:
    exact = frozenset((type(a), a) for a in allowed)

    def check(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        try:
            if (type(value), value) in exact:
                return  # the usual case, without the walk below
        except TypeError:
            pass  # unhashable: not one of them, said below
        # Same type as well as equal: 5.0 is not the integer 5 the wire expects.
        if isinstance(value, bool) or not any(
            isinstance(value, type(a)) and value == a for a in allowed
        ):
            shown = ", ".join(repr(a) for a in allowed)
            raise _fail(type(inst).__name__, attribute.name, f"one of {shown}", value)

    return check


def _number(lo: float | None = None, hi: float | None = None) -> Any:
    def check(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        ok = False
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
            ok = math.isfinite(number) and (lo is None or number >= lo)
            ok = ok and (hi is None or number <= hi)
        if not ok:
            span = f" {lo}–{hi}" if lo is not None and hi is not None else ""
            raise _fail(type(inst).__name__, attribute.name, f"a finite number{span}", value)

    return check


def _bool(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise _fail(type(inst).__name__, attribute.name, "True or False", value)


def _positive_int(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _fail(type(inst).__name__, attribute.name, "a positive integer of seconds", value)


class _ReadOnlyMapping(Mapping[str, Any]):
    """A read-only copy of ``extra`` that, unlike ``MappingProxyType``, pickles."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = dict(data)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return repr(self._data)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_ReadOnlyMapping, (self._data,))


_NO_EXTRA = _ReadOnlyMapping({})


def _freeze_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    # Read-only, but not hashable: request models leave ``extra`` out of their hash (it
    # still counts for equality, so equal requests hash equal).
    if value is None or (type(value) is dict and not value):
        return _NO_EXTRA  # the usual case: one shared empty mapping, read-only
    if not isinstance(value, Mapping):
        raise TypeError(f"extra must be a mapping of wire field names to values, got {value!r}")
    for key in value:
        if not isinstance(key, str):
            raise TypeError(f"extra keys must be wire field names (str), got {key!r}")
    return _ReadOnlyMapping(value)


def _instance_of(kind: type, label: str) -> Any:
    def check(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, kind):
            raise TypeError(
                f"{type(inst).__name__}.{attribute.name} must be a {label}, got {value!r}"
            )

    return check


def _tuple_of(kind: type, label: str, lo: int, hi: int | None) -> Any:
    def check(inst: object, attribute: attrs.Attribute[Any], value: tuple[Any, ...]) -> None:
        name = f"{type(inst).__name__}.{attribute.name}"
        bound = f"{lo}–{hi}" if hi is not None else f"at least {lo}"
        if not lo <= len(value) <= (hi if hi is not None else len(value)):
            raise ValueError(f"{name} must hold {bound} {label} items, got {len(value)}")
        for item in value:
            if not isinstance(item, kind):
                raise TypeError(f"{name} items must be {label}, got {item!r}")

    return check


def _to_tuple(value: Any) -> tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, str | bytes | Mapping) or attrs.has(type(value)):
        return (value,)  # one item given where a sequence belongs
    return tuple(value)


# ---------------------------------------------------------------- shared pieces


@frozen
class MotionVector:
    """Camera motion for ``/runway/pro/generate`` (wire reference §1.1).

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
    """``POST /runway/pro/generate`` text to video (wire reference §1.1).

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
    """``POST /runway/pro/generate`` with ``image``: animate an image (wire reference §1.2).

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
    """``POST /runway/pro/video2video``: restyle a video (wire reference §1.3)."""

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


# ---------------------------------------------------------------- /runwayml/v1/* requests


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


@frozen
class RunwayImageToVideo(_OfficialRequest):
    """``POST /runwayml/v1/image_to_video`` (wire reference §1.6).

    ``prompt_image`` is an HTTPS or data URI, or one or two ``PromptFrame`` for first/last
    frames. Limits are CometAPI's for this route (§6 C10): ``prompt_text`` ≤ 512 characters,
    ``seed`` 0–999999999.
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


@frozen
class RunwayVideoToVideo(_OfficialRequest):
    """``POST /runwayml/v1/video_to_video`` (wire reference §1.7)."""

    path: ClassVar[str] = "/runwayml/v1/video_to_video"

    video_uri: str = field(validator=_HTTPS_OR_DATA)
    model: str = field(default="gen4_aleph", kw_only=True, validator=_non_empty_text())
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
    """``POST /runwayml/v1/video_upscale``: 4x upscale, ≤ 4096 px a side (§1.8)."""

    path: ClassVar[str] = "/runwayml/v1/video_upscale"

    video_uri: str = field(validator=_HTTPS_OR_DATA)
    model: str = field(default="upscale_v1", kw_only=True, validator=_non_empty_text())
    extra: Mapping[str, Any] = field(
        factory=dict, kw_only=True, converter=_freeze_mapping, hash=False
    )


@frozen
class RunwayCharacterPerformance(_OfficialRequest):
    """``POST /runwayml/v1/character_performance`` (Act-Two, wire reference §1.9).

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
    """``POST /runwayml/v1/text_to_image`` (wire reference §1.11).

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


Request: TypeAlias = (
    TextToVideo
    | ImageToVideo
    | VideoToVideo
    | ActOne
    | RunwayImageToVideo
    | RunwayVideoToVideo
    | RunwayVideoUpscale
    | RunwayCharacterPerformance
    | RunwayTextToImage
)
REQUEST_TYPES: tuple[type, ...] = (
    TextToVideo,
    ImageToVideo,
    VideoToVideo,
    ActOne,
    RunwayImageToVideo,
    RunwayVideoToVideo,
    RunwayVideoUpscale,
    RunwayCharacterPerformance,
    RunwayTextToImage,
)


# ---------------------------------------------------------------- task snapshots


class TaskStatus(enum.StrEnum):
    """Where a task stands; every status vocabulary of the wire reference §2 maps onto it."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED})


@frozen
class Task:
    """One snapshot of a remote task, normalised from whichever envelope the server used.

    ``outputs`` are the result URLs (video first); ``poster_url`` and ``last_frame_url`` the
    cover and last-frame images when the provider gives them. ``raw_status`` is the status
    word as sent; ``raw`` the whole last body (parsed on access from ``body``, the bytes
    as received, so that thousands of tracked snapshots stay small), for what the model
    does not name. Output URLs expire (Runway: 24–48 h): download promptly.
    """

    task_id: str
    status: TaskStatus
    progress: float | None = None
    outputs: tuple[str, ...] = ()
    video_url: str | None = None
    error: str | None = None
    error_code: str | None = None
    _raw: Any = field(default=None, eq=False, repr=False, alias="raw")
    raw_status: str | None = None
    poster_url: str | None = None
    last_frame_url: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    body: bytes | None = field(default=None, eq=False, repr=False)

    @property
    def raw(self) -> Any:
        """The last body as JSON (what the envelope said beyond the named fields)."""
        if self._raw is not None or self.body is None:
            return self._raw
        return json.loads(self.body)

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def all_urls(self) -> tuple[str, ...]:
        """Every downloadable URL: outputs, then poster and last frame when present."""
        extra = (u for u in (self.poster_url, self.last_frame_url) if u)
        seen: dict[str, None] = dict.fromkeys(self.outputs)
        seen.update(dict.fromkeys(extra))
        return tuple(seen)

    @classmethod
    def pending(cls, task_id: str) -> Task:
        """A placeholder snapshot for a task not polled yet."""
        return cls(task_id=task_id, status=TaskStatus.PENDING)
