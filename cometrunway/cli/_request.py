"""One request from its fields (a batch line, a CSV row or the command-line flags): the
request model picked by ``type`` or by the fields given, each field checked and converted,
with a hint naming the field or the model meant when a name is wrong."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ..client import Client
from ..models import (
    REQUEST_TYPES,
    ContentModeration,
    ImageToVideo,
    MediaInput,
    MotionVector,
    PromptFrame,
    ReferenceImage,
    Request,
    RunwaySoundEffect,
    RunwayTextToSpeech,
    TextToVideo,
    VideoReference,
)
from ..protocol import build_submit


class InputError(ValueError):
    """What is wrong with one request, and how to fix it."""


@attrs.frozen
class Item:
    """One request read from the input: ``line`` is 1-based (None off the command line);
    ``fields`` the input as written, for the results file; ``journal_key`` the key the
    journal files it under (``key`` when given, else the hash of its wire body)."""

    line: int | None
    request: Request
    key: str | None
    label: str
    fields: dict[str, Any]
    journal_key: str


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


_MODELS: dict[str, type] = {_norm(cls.__name__): cls for cls in REQUEST_TYPES}
# The audio routes' own names work as "type" too (wire §8.1): "text_to_speech", "sound_effect".
_MODELS.update(texttospeech=RunwayTextToSpeech, soundeffect=RunwaySoundEffect)
_MODEL_NAMES = ", ".join(cls.__name__ for cls in REQUEST_TYPES) + ", text_to_speech, sound_effect"
_META_FIELDS = ("type", "key", "label")
# The command line's --model/--ratio/--style/--seconds describe a video; an audio line keeps
# its own model (a video model id would be refused by the audio route).
_AUDIO_TYPES: tuple[type, ...] = (RunwayTextToSpeech, RunwaySoundEffect)
# "prompt" is the word every line may use: where a request calls it "prompt_text" (the
# official-format routes), it means that.
_PROMPT_ALIASES = {"prompt": "prompt_text"}
_EXAMPLES: dict[type, str] = {
    TextToVideo: '{"prompt": "a red fox running through fresh snow"}',
    ImageToVideo: '{"prompt": "the fox turns its head", "image": "https://example.com/fox.jpg"}',
}


def _field_names(cls: type) -> list[str]:
    return [f.name for f in attrs.fields(cls)]


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


# ---------------------------------------------------------------- nested values


def _nested(kind: type, what: str, value: Any, *, uri_shortcut: bool) -> Any:
    """An attrs value (``MotionVector``, ``PromptFrame``…) from a JSON object, or from a
    plain string when the type's first field is a URI (``"https://…"`` → ``uri``)."""
    if isinstance(value, kind):
        return value
    names = _field_names(kind)
    if isinstance(value, str) and uri_shortcut:
        return kind(value)
    if isinstance(value, Mapping):
        for name in value:
            if name not in names:
                raise InputError(
                    f'unknown field "{name}" in {what}{_suggest(str(name), names)}; '
                    f"allowed: {', '.join(names)}"
                )
        return kind(**value)
    shape = "a URL or an object" if uri_shortcut else "an object"
    example = ", ".join(f'"{n}": …' for n in names[:3])
    raise InputError(f"{what} must be {shape} like {{{example}}}, got {_shown(value)}")


def _many(kind: type, what: str, value: Any) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    return [_nested(kind, f"{what}[{i}]", item, uri_shortcut=True) for i, item in enumerate(items)]


def _prompt_image(value: Any) -> Any:
    if isinstance(value, str):
        return value
    return _many(PromptFrame, "prompt_image", value)


def _moderation(value: Any) -> Any:
    if isinstance(value, str):
        return ContentModeration(value)
    return _nested(ContentModeration, "content_moderation", value, uri_shortcut=False)


def _extra(value: Any) -> Any:
    if not isinstance(value, Mapping):
        raise InputError(f"extra must be an object of wire fields, got {_shown(value)}")
    return value


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "motion_vector": lambda v: _nested(MotionVector, "motion_vector", v, uri_shortcut=False),
    "prompt_image": _prompt_image,
    "references": lambda v: _many(VideoReference, "references", v),
    "character": lambda v: _nested(MediaInput, "character", v, uri_shortcut=True),
    "reference": lambda v: _nested(MediaInput, "reference", v, uri_shortcut=True),
    "reference_images": lambda v: _many(ReferenceImage, "reference_images", v),
    "content_moderation": _moderation,
    "extra": _extra,
}


# ---------------------------------------------------------------- one request


def _model_for(fields: Mapping[str, Any]) -> type:
    type_name = fields.get("type")
    if type_name is None:
        return ImageToVideo if fields.get("image") is not None else TextToVideo
    if not isinstance(type_name, str) or _norm(type_name) not in _MODELS:
        names = [cls.__name__ for cls in REQUEST_TYPES]
        hint = _suggest(str(type_name), names)
        raise InputError(f'unknown "type" {_shown(type_name)}{hint}: use one of {_MODEL_NAMES}')
    return _MODELS[_norm(type_name)]


def _unknown_field(name: str, cls: type, names: list[str]) -> InputError:
    owners = [c.__name__ for c in REQUEST_TYPES if _snake(name) in _field_names(c)]
    if owners:
        hint = (
            f': it belongs to {", ".join(owners)}; add "type": "{owners[0]}" '
            "to make this line that request"
        )
    else:
        hint = _suggest(name, names + list(_META_FIELDS))
        hint += f"; {cls.__name__} takes: {', '.join(names)} (and type, key, label)"
    return InputError(f'unknown field "{name}" for {cls.__name__}{hint}')


def _text_or_none(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InputError(f'"{name}" must be a non-empty string, got {_shown(value)}')
    return value.strip()


def build_request(
    fields: Mapping[str, Any], *, defaults: Mapping[str, Any] | None = None
) -> tuple[Request, str | None, str | None]:
    """``(request, key, label)`` from one input record; raises ``InputError``.

    ``defaults`` (the command line's video settings) fill fields the record leaves out,
    where the chosen model has them; audio requests keep their own defaults. ``prompt`` is
    accepted for ``prompt_text``.
    """
    cls = _model_for(fields)
    key, label = _text_or_none(fields, "key"), _text_or_none(fields, "label")
    names = _field_names(cls)
    kwargs: dict[str, Any] = {}
    for name, value in fields.items():
        if name in _META_FIELDS:
            continue
        target = name if name in names else _snake(name)
        if target not in names and _PROMPT_ALIASES.get(target) in names:
            target = _PROMPT_ALIASES[target]
        if target not in names:
            raise _unknown_field(name, cls, names)
        if target in kwargs:
            raise InputError(f'"{name}" is given twice (as {target} and {name}): keep one')
        convert = _CONVERT.get(target)
        try:
            kwargs[target] = convert(value) if convert is not None and value is not None else value
        except InputError:
            raise
        except (ValueError, TypeError) as exc:  # a nested model refused a value
            raise InputError(str(exc)) from None
    for name, value in (defaults or {}).items() if cls not in _AUDIO_TYPES else ():
        if name in names and name not in kwargs and value is not None:
            kwargs[name] = value
    missing = [
        f.name for f in attrs.fields(cls) if f.default is attrs.NOTHING and f.name not in kwargs
    ]
    if missing:
        example = _EXAMPLES.get(cls)
        needs = ", ".join(f'"{m}"' for m in missing)
        raise InputError(f"{cls.__name__} needs {needs}" + (f", e.g. {example}" if example else ""))
    try:
        request: Request = cls(**kwargs)
        # The wire body is built now too, so nothing can fail later, mid-batch.
        build_submit(request, api_key="-")
    except (ValueError, TypeError) as exc:
        raise InputError(str(exc)) from None
    return request, key, label


def describe(request: Request, *, limit: int = 60) -> str:
    """A one-line name for displays: the prompt, else the request type."""
    text = getattr(request, "prompt", None) or getattr(request, "prompt_text", None)
    if not isinstance(text, str) or not text.strip():
        return type(request).__name__
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def journal_key(request: Request, key: str | None) -> str:
    """The key the client's journal files this request under (``Client.submit``'s rule)."""
    return Client.journal_key(request, key)


def make_item(
    line: int | None,
    fields: Mapping[str, Any],
    *,
    defaults: Mapping[str, Any] | None = None,
) -> Item:
    request, key, label = build_request(fields, defaults=defaults)
    return Item(
        line=line,
        request=request,
        key=key,
        label=label or describe(request),
        fields=dict(fields),
        journal_key=journal_key(request, key),
    )
