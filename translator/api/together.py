"""Running one coroutine per item at once, as an HTTP request with several texts does: every
item runs to its end, then the first failure (if any) is raised, never an exception group."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import anyio

T = TypeVar("T")


async def each(items: Sequence[T], run: Callable[[int, T], Awaitable[None]]) -> None:
    failed: list[Exception] = []

    async def guarded(index: int, item: T) -> None:
        try:
            await run(index, item)
        except Exception as exc:  # the first is the request's; the others finish meanwhile
            failed.append(exc)

    async with anyio.create_task_group() as tg:
        for index, item in enumerate(items):
            tg.start_soon(guarded, index, item)
    if failed:
        raise failed[0]
