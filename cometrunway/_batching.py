"""Bounded concurrency that attempts every input: the shared loop of the ``*_many`` calls.

Nothing fails fast: an input's error is kept with its position (``.index``) and the others
go on; the caller turns the errors into its own partial-batch exception group.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

__all__ = ["as_completed", "attempt_each", "check_concurrency", "listed"]

T = TypeVar("T")
R = TypeVar("R")


class _Finishes(Protocol):
    def add_done_callback(self, callback: Callable[[Any], Any], /) -> None: ...


H = TypeVar("H", bound=_Finishes)


def listed(items: object, what: str) -> list[Any]:
    """``items`` as a list, or a ``TypeError`` naming ``what`` the call takes."""
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise TypeError(f"expected an iterable of {what} (a list, say), got {items!r:.80}")
    return list(items)


def check_concurrency(value: object) -> int:
    """``max_concurrency`` as given, or a ``TypeError``/``ValueError`` that says what to fix."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"max_concurrency must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"max_concurrency must be ≥ 1, got {value}")
    return value


async def attempt_each(
    items: Sequence[T],
    attempt: Callable[[int, T], Awaitable[R]],
    max_concurrency: int,
    *,
    note: Callable[[int, T], str] | None = None,
) -> tuple[list[R | None], list[Exception]]:
    """Run ``attempt(index, item)`` for every item, at most ``max_concurrency`` at a time.

    Returns the results in input order (None where an item failed) and the errors in input
    order, each carrying ``.index`` (and ``note(index, item)`` as an exception note).
    """
    results: list[R | None] = [None] * len(items)
    errors: list[tuple[int, Exception]] = []
    next_index = iter(range(len(items)))

    async def worker() -> None:
        for index in next_index:
            item = items[index]
            try:
                results[index] = await attempt(index, item)
            except Exception as exc:  # every input is attempted, whatever one of them raises
                exc.index = index  # type: ignore[attr-defined]
                if note is not None:
                    exc.add_note(note(index, item))
                errors.append((index, exc))

    async with asyncio.TaskGroup() as group:
        for _ in range(min(max_concurrency, len(items))):
            group.create_task(worker())
    errors.sort(key=lambda pair: pair[0])
    return results, [exc for _, exc in errors]


async def as_completed(handles: Iterable[H]) -> AsyncIterator[H]:
    """Yield each handle once, as it finishes (succeeded or failed)."""
    unique = list(dict.fromkeys(handles))
    finished: asyncio.Queue[H] = asyncio.Queue()
    for handle in unique:
        handle.add_done_callback(finished.put_nowait)
    for _ in unique:
        yield await finished.get()
