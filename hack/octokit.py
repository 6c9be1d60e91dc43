"""Real GitHub webhook payloads we did not write: the npm package `@octokit/webhooks-examples`.

For the GitHub source's tests and its benchmark (`bench/github_source.py`).

`examples()` installs the pinned version once per machine into the ignored `.cache/npm`
(`npm install --prefix`), then reads `api.github.com/index.json`: one entry per event type,
each with the example payloads GitHub's docs and the community recorded.
"""

from __future__ import annotations

import dataclasses
import fcntl
import functools
import json
import pathlib
import shutil
import subprocess

PACKAGE = "@octokit/webhooks-examples"
VERSION = "7.6.1"
ROOT = pathlib.Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "npm"
INDEX = CACHE / "node_modules" / PACKAGE / "api.github.com" / "index.json"


@dataclasses.dataclass(frozen=True, slots=True)
class Example:
    event: str
    """The X-GitHub-Event name, e.g. `pull_request`."""
    index: int
    """Position among the examples of that event (stable for a pinned version)."""
    body: bytes
    """The payload as JSON bytes, what GitHub would POST."""

    @property
    def id(self) -> str:
        return f"{self.event}-{self.index}"

    @property
    def payload(self) -> dict[str, object]:
        parsed: dict[str, object] = json.loads(self.body)
        return parsed


def _installed_version() -> str | None:
    manifest = INDEX.parent.parent / "package.json"
    if not manifest.is_file():
        return None
    return str(json.loads(manifest.read_text()).get("version"))


def install() -> pathlib.Path:
    """Install the pinned package into `.cache/npm` unless it is there; returns index.json."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel sessions install once
        if _installed_version() != VERSION:
            npm = shutil.which("npm")
            if npm is None:
                raise RuntimeError(f"npm is needed to install {PACKAGE} (hack/octokit.py)")
            subprocess.run(
                [npm, "install", "--prefix", str(CACHE), "--no-audit", "--no-fund",
                 "--ignore-scripts", "--no-save", f"{PACKAGE}@{VERSION}"],
                check=True, capture_output=True, timeout=300,
            )  # fmt: skip
    return INDEX


@functools.cache
def examples() -> tuple[Example, ...]:
    """Every example payload of every event type, in the package's order."""
    entries = json.loads(install().read_text())
    found: list[Example] = []
    for entry in entries:
        for index, payload in enumerate(entry["examples"]):
            body = json.dumps(payload, separators=(",", ":")).encode()
            found.append(Example(str(entry["name"]), index, body))
    return tuple(found)


def example(event: str, index: int = 0) -> Example:
    return next(e for e in examples() if e.event == event and e.index == index)
