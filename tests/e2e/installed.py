"""The installed system for the e2e tests that use it: `hack/up --no-follow` once per session.

The README's main-job command installs manifests/ + rbac/ + examples/ on the local cluster;
the main-job tests check what it shows, the broker tests add their own objects to it.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests import cluster


@dataclass(frozen=True)
class MainJob:
    output: str
    event_page: str
    prometheus: str
    zipkin: str


def eventually(check: Callable[[], Any], within: float, what: str, step: float = 2.0) -> Any:
    """Poll `check()` until it returns something true; fail naming `what`."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(step)
    raise AssertionError(f"{what} not seen within {within:.0f} s (last: {last!r})")


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.load(resp)


@pytest.fixture(scope="session")
def main_job(kube: cluster.Kube) -> Iterator[MainJob]:
    proc = subprocess.run(
        [str(cluster.REPO / "hack" / "up"), "--no-follow"],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert proc.returncode == 0, f"hack/up failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    out = proc.stdout

    def url(label: str) -> str:
        match = re.search(rf"{label}:\s+(http://\S+)", out)
        assert match, f"hack/up did not print the {label} URL:\n{out}"
        return match.group(1)

    assert "Events flowing." in out
    yield MainJob(out, url("event page"), url("Prometheus"), url("Zipkin"))
