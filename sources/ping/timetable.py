"""The timetable: every scheduled source's next fire time in one heap.

Each source (by key) has at most one live entry; rescheduling or cancelling bumps the key's
version and older entries are dropped lazily when they reach the top, so every operation is
O(log n) however many of ten thousand sources change.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools


@dataclasses.dataclass(order=True, frozen=True, slots=True)
class Entry:
    due: float
    """Wall seconds when to fire: the tick plus the source's jitter offset."""
    seq: int
    tick: float = dataclasses.field(compare=False)
    """The scheduled instant (whole seconds), the one recorded and reported."""
    key: str = dataclasses.field(compare=False)
    version: int = dataclasses.field(compare=False)


class Timetable:
    def __init__(self) -> None:
        self._heap: list[Entry] = []
        self._versions: dict[str, int] = {}
        self._counter = itertools.count()

    def __len__(self) -> int:
        return len(self._versions)

    def __contains__(self, key: str) -> bool:
        return key in self._versions

    def schedule(self, key: str, tick: float, due: float) -> None:
        """Make (`tick`, `due`) the only pending fire of `key`."""
        version = self._versions.get(key, 0) + 1
        self._versions[key] = version
        heapq.heappush(self._heap, Entry(due, next(self._counter), tick, key, version))

    def cancel(self, key: str) -> None:
        self._versions.pop(key, None)

    def clear(self) -> None:
        self._heap.clear()
        self._versions.clear()

    def _live(self, entry: Entry) -> bool:
        return self._versions.get(entry.key) == entry.version

    def peek(self) -> Entry | None:
        """The earliest live entry, or None."""
        while self._heap and not self._live(self._heap[0]):
            heapq.heappop(self._heap)
        return self._heap[0] if self._heap else None

    def pop_due(self, now: float, through_tick: float) -> list[Entry]:
        """Remove and return live entries due by `now` whose tick is <= `through_tick`.

        A popped key has no pending fire until it is scheduled again.
        """
        popped: list[Entry] = []
        while (top := self.peek()) is not None and top.due <= now and top.tick <= through_tick:
            heapq.heappop(self._heap)
            del self._versions[top.key]
            popped.append(top)
        return popped
