"""The one private cattrs converter: request models to wire bodies, wire records to values.

Wire names are snake_case on ``/runway/*`` and camelCase on ``/runwayml/v1/*`` (wire
reference §0). Unknown response keys are ignored; a key of the wrong type becomes a
``DecodeError`` whose message comes from ``cattrs.transform_error``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs
import cattrs
from attrs import frozen
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .errors import DecodeError
from .models import (
    ActOne,
    ContentModeration,
    ImageToVideo,
    MediaInput,
    MotionVector,
    PromptFrame,
    ReferenceImage,
    Request,
    RunwayCharacterPerformance,
    RunwayImageToVideo,
    RunwaySoundEffect,
    RunwayTextToImage,
    RunwayTextToSpeech,
    RunwayVideoToVideo,
    RunwayVideoUpscale,
    TextToVideo,
    VideoReference,
    VideoToVideo,
)

__all__ = ["OfficialTaskWire", "RecordWire", "request_body", "structure"]

T = TypeVar("T")

_converter = cattrs.Converter()


def _strict_str(value: Any, _: type) -> str:
    # cattrs would str() anything; a dict where an id belongs is a decode error, not "{...}".
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"expected a string, got {type(value).__name__}")


_converter.register_structure_hook(str, _strict_str)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


# ---------------------------------------------------------------- requests


def _drop_empty(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None and v != []}


def _merge(body: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``extra`` into ``body``: nested objects merge, anything else replaces."""
    if not extra:
        return body
    merged = dict(body)
    for key, value in extra.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            merged[key] = _merge(current, value)
        else:
            merged[key] = value
    return merged


def _register_camel(cls: type) -> None:
    overrides = {
        f.name: override(omit=True) if f.name == "extra" else override(rename=_camel(f.name))
        for f in attrs.fields(cls)
    }
    base: Callable[[Any], dict[str, Any]] = make_dict_unstructure_fn(
        cls,
        _converter,
        **overrides,  # type: ignore[arg-type]
    )

    def hook(obj: Any) -> dict[str, Any]:
        return _drop_empty(base(obj))

    _converter.register_unstructure_hook(cls, hook)


for _cls in (
    PromptFrame,
    VideoReference,
    MediaInput,
    ReferenceImage,
    ContentModeration,
    RunwayImageToVideo,
    RunwayVideoToVideo,
    RunwayVideoUpscale,
    RunwayCharacterPerformance,
    RunwayTextToImage,
    RunwaySoundEffect,
):
    _register_camel(_cls)


def _text_to_speech(req: RunwayTextToSpeech) -> dict[str, Any]:
    # The voice is a Runway preset object, not a bare name (wire reference §8.1).
    return {
        "model": req.model,
        "promptText": req.prompt_text,
        "voice": {"type": "runway-preset", "presetId": req.voice},
    }


_converter.register_unstructure_hook(RunwayTextToSpeech, _text_to_speech)


def _motion(vector: MotionVector) -> dict[str, float]:
    return {
        "x": vector.x,
        "y": vector.y,
        "z": vector.z,
        "r": vector.r,
        "bg_x_pan": vector.bg_x_pan,
        "bg_y_pan": vector.bg_y_pan,
    }


def _text_to_video(req: TextToVideo, callback_url: str) -> dict[str, Any]:
    # Key order follows the documented example (wire reference §1.1).
    return {
        "callback_url": callback_url,
        "ratio": req.ratio,
        "prompt": req.prompt,
        "style": req.style,
        "model": req.model,
        "options": {
            "seconds": req.seconds,
            "motion_vector": _motion(req.motion_vector),
        },
    }


def _image_to_video(req: ImageToVideo, callback_url: str) -> dict[str, Any]:
    options = _drop_empty(
        {
            "seconds": req.seconds,
            "image_as_end_frame": req.image_as_end_frame,
            "motion_vector": (
                _motion(req.motion_vector) if req.motion_vector is not None else None
            ),
        }
    )
    body = {
        "callback_url": callback_url,
        "image": req.image,
        "ratio": req.ratio,
        "prompt": req.prompt,
        "style": req.style,
        "model": req.model,
        # End-frame name is not on CometAPI's pages; upstream calls it last_image (§6 C12).
        "last_image": req.end_image,
        "options": options or None,
    }
    return _drop_empty(body)


def _video_to_video(req: VideoToVideo, callback_url: str) -> dict[str, Any]:
    options = _drop_empty(
        {
            "seconds": req.seconds,
            "structure_transformation": req.structure_transformation,
            "flip": req.flip,
        }
    )
    body: dict[str, Any] = {
        "callback_url": callback_url,
        "video": req.video,
        "model": req.model,
        "prompt": req.prompt,
    }
    if options:
        body["options"] = options
    return body


def _act_one(req: ActOne, callback_url: str) -> dict[str, Any]:
    return {"callback_url": callback_url, "video": req.video, "image": req.image}


_PRO_BODIES: dict[type, Callable[[Any, str], dict[str, Any]]] = {
    TextToVideo: _text_to_video,
    ImageToVideo: _image_to_video,
    VideoToVideo: _video_to_video,
    ActOne: _act_one,
}


def request_body(request: Request, *, callback_url: str) -> dict[str, Any]:
    """The JSON body for ``request``, with its ``extra`` merged in.

    ``callback_url`` is used only by ``/runway/pro/*`` requests; a request's own
    ``callback_url`` wins over it.
    """
    build = _PRO_BODIES.get(type(request))
    if build is not None:
        own = getattr(request, "callback_url", None)
        body = build(request, own or callback_url)
    else:
        body = _converter.unstructure(request)
    return _merge(body, request.extra)


# ---------------------------------------------------------------- responses


@frozen
class OfficialTaskWire:
    """A bare Runway task object (T1; see :doc:`/quirks`)."""

    id: str
    status: str
    created_at: str | None = None
    output: Any = None
    failure: Any = None
    failure_code: Any = None
    progress: Any = None


@frozen
class RecordWire:
    """The typed identity of a task record: the wrapper's ``data`` (F1/T2), the flat F2
    record, or upstream F3. Its other members are free-form and read from the record as
    found (``protocol``), so a poll pays for checking only what the client relies on."""

    task_id: str
    status: str | None = None


_converter.register_structure_hook(
    OfficialTaskWire,
    make_dict_structure_fn(
        OfficialTaskWire,
        _converter,
        created_at=override(rename="createdAt"),
        failure_code=override(rename="failureCode"),
    ),
)


def structure(data: Any, cls: type[T], *, what: str, body: bytes | None = None) -> T:
    """Structure ``data`` into ``cls``; any failure becomes a readable ``DecodeError``."""
    try:
        return _converter.structure(data, cls)
    except Exception as exc:
        details = "; ".join(cattrs.transform_error(exc, path=what))
        raise DecodeError(f"unreadable {what}: {details}", body=body) from exc
