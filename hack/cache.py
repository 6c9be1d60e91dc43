"""Where builds and downloads are cached, outside the work tree: `KEVENTS_CACHE`, else
`$XDG_CACHE_HOME/kevents`, else `~/.cache/kevents` (the bash scripts' `cache_root`)."""

from __future__ import annotations

import os
import pathlib


def root() -> pathlib.Path:
    env = os.environ.get("KEVENTS_CACHE")
    if env:
        return pathlib.Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(pathlib.Path.home() / ".cache")
    return pathlib.Path(xdg) / "kevents"
