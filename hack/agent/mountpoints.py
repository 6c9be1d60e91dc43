"""Mount points created on the host for pods, shared by reference count.

A bind mount needs its target to exist. Paths like /var/run/secrets/kubernetes.io/... don't
exist on the host, so the agent creates them (empty directories or files) and removes them
again once no pod uses them, deepest first, only while they are still empty.
"""

from __future__ import annotations

import contextlib
import pathlib
from collections import Counter


class MountPoints:
    def __init__(self) -> None:
        self._refs: Counter[pathlib.Path] = Counter()
        self._created: dict[pathlib.Path, list[pathlib.Path]] = {}

    def acquire(self, target: pathlib.Path, *, is_file: bool) -> None:
        """Make `target` exist (creating missing parents) and count one more user."""
        if target not in self._created:
            created: list[pathlib.Path] = []
            missing = [
                p for p in (target, *target.parents) if not p.exists() and not p.is_symlink()
            ]
            for path in reversed(missing):
                if path == target and is_file:
                    path.touch()
                else:
                    path.mkdir()
                created.append(path)
            self._created[target] = created
        self._refs[target] += 1

    def release(self, target: pathlib.Path) -> None:
        self._refs[target] -= 1
        if self._refs[target] > 0:
            return
        del self._refs[target]
        for path in reversed(self._created.pop(target, [])):
            if any(
                other != target and (path == other or path in other.parents) for other in self._refs
            ):
                continue
            with contextlib.suppress(OSError):
                if path.is_dir():
                    path.rmdir()
                elif path.stat().st_size == 0:
                    path.unlink()
