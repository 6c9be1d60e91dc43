"""Polling helper for tests that wait on state owned by another task or process."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(predicate: Callable[[], bool], within: float = 20.0, step: float = 0.05) -> None:
    """Return once `predicate()` holds; fail the test after `within` seconds."""
    for _ in range(max(1, int(within / step))):
        if predicate():
            return
        await asyncio.sleep(step)
    if not predicate():
        raise AssertionError(f"condition not met within {within} s")
