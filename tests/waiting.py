"""The one polling helper of the tests: wait on state owned by another task or process.

- `until(predicate)`: async, for state in this process (a dispatcher's routes, a list that
  a server appends to), polled every 50 ms.
- `fetched(fetch, ok)`: async, for state read by a coroutine (the API server, a page); returns
  the value that passed, fails with the last one read.
- `eventually(check, ...)`: the same for a blocking read (kubectl, urllib in the e2e tier).

"Nothing else arrives" is a sentinel polled for, never a sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def until(predicate: Callable[[], bool], within: float = 20.0, step: float = 0.05) -> None:
    """Return once `predicate()` holds; fail the test after `within` seconds."""
    for _ in range(max(1, int(within / step))):
        if predicate():
            return
        await asyncio.sleep(step)
    if not predicate():
        raise AssertionError(f"condition not met within {within} s")


async def fetched(
    fetch: Callable[[], Awaitable[T]],
    ok: Callable[[T], bool],
    within: float,
    what: str,
    *,
    step: float = 0.1,
    ignore: tuple[type[Exception], ...] = (),
) -> T:
    """Poll `await fetch()` every `step` seconds until `ok(value)`, and return that value; a
    fetch raising one of `ignore` counts as not yet. Fail naming `what` and the last value
    read after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last: Any = None
    while True:
        with contextlib.suppress(*ignore):
            last = await fetch()
            if ok(last):
                return last  # type: ignore[no-any-return]
        if loop.time() >= deadline:
            raise AssertionError(f"{what} not seen within {within:g} s (last: {last!r})")
        await asyncio.sleep(step)


def eventually(
    check: Callable[[], Any],
    within: float,
    what: str,
    step: float = 2.0,
    *,
    ok: Callable[[Any], object] = bool,
) -> Any:
    """Call `check()` every `step` seconds until `ok(value)` (by default: the value is true),
    and return that value; fail naming `what` and the last value after `within` seconds.
    Typed `Any`: a check is often `a and b`, whose passing value the type cannot narrow."""
    deadline = time.monotonic() + within
    while True:
        last = check()
        if ok(last):
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not seen within {within:.0f} s (last: {last!r})")
        time.sleep(step)
