"""Large blocks freed by a kevents process go back to the OS (`kevents.allocator`): without
the tuning, glibc keeps blocks of 1 MiB in its heap once a larger one was freed, and the
holes between long-lived allocations stay in RSS."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import pathlib, sys
from kevents import allocator

def anonymous_mib():
    status = pathlib.Path("/proc/self/status").read_text().splitlines()
    return int(next(l for l in status if l.startswith("RssAnon:")).split()[1]) / 1024

tuned = allocator.tune() if sys.argv[1] == "tuned" else False
first = bytearray(8 << 20)  # an 8 MiB answer, freed: glibc would serve 1 MiB from its heap
del first
start = anonymous_mib()
bodies, kept = [], []
for _ in range(20):
    bodies.append(bytearray(1 << 20))  # 1 MiB responses...
    kept.append(bytearray(2000))  # ...each followed by something that stays
del bodies
print(tuned, round(anonymous_mib() - start, 1))
"""


def _grown(mode: str) -> tuple[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], check=True, capture_output=True, text=True
    ).stdout.split()
    return out[0], float(out[1])


def test_freed_large_blocks_leave_the_process() -> None:
    untuned, kept = _grown("default")
    assert (untuned, kept > 15) == ("False", True)  # what tune() prevents: ~20 MiB kept
    tuned, grown = _grown("tuned")
    assert tuned == "True"
    assert grown < 2
