"""Steps across the commands of a bash script: hack/up and hack/test each run many commands,
so each step is a line in a journal file (JSON lines, named by KEVENTS_PROGRESS) that
`python -m hack.progress step` and `end` read and extend:

    {"event": "start", "number": 3, "total": 7, "title": "...", "time": 1764662400.0}
    {"event": "end", "ok": true, "time": 1764662523.4}

Times are wall-clock seconds: each command is a new process.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

from hack.progress import render


@dataclasses.dataclass(frozen=True, slots=True)
class Open:
    """The step still running: its number, the run's total, title and start time."""

    number: int
    total: int
    title: str
    began: float


class Journal:
    def __init__(self, path: pathlib.Path) -> None:
        self.path = path

    def _events(self) -> list[dict[str, Any]]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def _append(self, event: dict[str, Any]) -> None:
        with self.path.open("a") as out:
            out.write(json.dumps(event) + "\n")

    def records(self) -> list[render.StepRecord]:
        """The finished steps, in order."""
        done, current = [], None
        for event in self._events():
            if event["event"] == "start":
                current = event
            elif event["event"] == "end" and current is not None:
                done.append(render.StepRecord(
                    current["number"], current["total"], current["title"],
                    event["time"] - current["time"], bool(event["ok"]),
                ))  # fmt: skip
                current = None
        return done

    def open(self) -> Open | None:
        """The step started and not ended, if any."""
        current = None
        for event in self._events():
            current = event if event["event"] == "start" else None
        if current is None:
            return None
        return Open(current["number"], current["total"], current["title"], current["time"])

    def start(self, title: str, total: int | None, now: float) -> Open:
        starts = [e for e in self._events() if e["event"] == "start"]
        if total is None:
            total = starts[0]["total"] if starts else 0
        step = Open(len(starts) + 1, total, title, now)
        self._append({"event": "start", "number": step.number, "total": step.total,
                      "title": title, "time": now})  # fmt: skip
        return step

    def end(self, ok: bool, now: float) -> render.StepRecord | None:
        """End the open step (None when none is open)."""
        current = self.open()
        if current is None:
            return None
        self._append({"event": "end", "ok": ok, "time": now})
        return render.StepRecord(current.number, current.total, current.title,
                                 now - current.began, ok)  # fmt: skip
