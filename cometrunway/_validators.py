"""Field validators shared by the request models: each names the field and what is allowed.

A validator raises ``ValueError`` (a bad value) or ``TypeError`` (a wrong kind of object) whose
message reads ``Class.field must be …, got …``, so a user knows what to fix. Private to the
package: the request modules import these by name.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

# The largest seeds the docs allow (wire reference §1.6, §1.7, C10).
COMETAPI_I2V_SEED_MAX = 999_999_999
RUNWAY_SEED_MAX = 4_294_967_295

_RATIO = re.compile(r"^[1-9][0-9]*(\.[0-9]+)?:[1-9][0-9]*(\.[0-9]+)?$")


#: A value shown in an error is cut here: a 400-digit number or a whole file helps nobody.
_SHOWN_CHARS = 80


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def _fail(cls_name: str, name: str, allowed: str, value: object) -> ValueError:
    return ValueError(f"{cls_name}.{name} must be {allowed}, got {_shown(value)}")


def _non_empty_text(max_len: int | None = None) -> Any:
    def check(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, str) or not value.strip():
            raise _fail(type(inst).__name__, attribute.name, "a non-empty string", value)
        _check_encodable(f"{type(inst).__name__}.{attribute.name}", value)
        if max_len is not None and len(value) > max_len:
            raise ValueError(
                f"{type(inst).__name__}.{attribute.name} must be at most {max_len} characters, "
                f"got {len(value)}"
            )

    return check


def _check_encodable(where: str, value: str) -> None:
    """Text goes on the wire as UTF-8: a lone surrogate (``"\\ud800"``, from a bad escape
    or a broken decode) has no UTF-8 form and would fail mid-send."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{where} holds a lone surrogate (U+{ord(value[exc.start]):04X}) at position "
            f"{exc.start}, which is not text: fix the string's escapes or its decoding"
        ) from None


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
        assert isinstance(value, str)
        _check_encodable(f"{type(inst).__name__}.{attribute.name}", value)

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
            try:
                number = float(value)
            except OverflowError:  # an int past float's range: not a number the wire takes
                number = math.inf
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
    for key, item in value.items():
        if not isinstance(key, str):
            raise TypeError(f"extra keys must be wire field names (str), got {key!r}")
        _check_json(f"extra[{key!r}]", item)
    return _ReadOnlyMapping(value)


#: Deeper than any wire body nests: a deeper ``extra`` is a mistake (or a cycle).
_MAX_EXTRA_DEPTH = 32


def _check_json(where: str, value: object, depth: int = 0) -> None:
    """``value`` goes on the wire as JSON: only JSON's types, finite numbers, real text."""
    if depth > _MAX_EXTRA_DEPTH:
        raise ValueError(f"{where} nests deeper than {_MAX_EXTRA_DEPTH} levels (a cycle?)")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        _check_encodable(where, value)
    elif isinstance(value, int):
        return
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(
                f"{where} must be a finite number, got {value!r}: JSON has no NaN or Infinity"
            )
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} keys must be strings, got {key!r}")
            _check_json(f"{where}[{key!r}]", item, depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_json(f"{where}[{index}]", item, depth + 1)
    else:
        raise TypeError(
            f"{where} must be a JSON value (str, int, float, bool, None, list or dict), "
            f"got {type(value).__name__} {_shown(value)}"
        )


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
    if not isinstance(value, Iterable):
        return (value,)  # not a sequence at all: the field's validator names what it takes
    return tuple(value)
