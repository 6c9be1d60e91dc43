"""The wall time of each test tier, printed at the end of every run (CI's log shows it).

A pytest plugin (registered by `tests/conftest.py`): a test belongs to the tier named by the
folder under `tests/` (`unit`, `integration`, `e2e`). pytest runs `testpaths` in order, so a
tier's tests are contiguous and its wall time is from the start of its first test to the end
of its last: setup of session fixtures included (the e2e tier's installed system), collection
excluded. Any selection works (`hack/test tests/unit -x`); only the tiers that ran are listed.

    =========================== time per test tier ===========================
    unit           1204 tests    31.8 s
    integration     412 tests   402.5 s
    e2e              14 tests   251.0 s
"""

from __future__ import annotations

import dataclasses
import time

import pytest

TIERS = ("unit", "integration", "e2e")


@dataclasses.dataclass
class Tier:
    started: float
    finished: float
    tests: int = 0
    failed: set[str] = dataclasses.field(default_factory=set)
    """Node ids of tests that failed or errored in any phase."""


def tier_of(nodeid: str) -> str:
    """`tests/<tier>/...` -> `<tier>`; anything else is `other`."""
    parts = nodeid.split("/", 2)
    if len(parts) == 3 and parts[0] == "tests" and parts[1] in TIERS:
        return parts[1]
    return "other"


class TierClock:
    def __init__(self) -> None:
        self._tiers: dict[str, Tier] = {}

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        now = time.monotonic()
        name = tier_of(nodeid)
        tier = self._tiers.setdefault(name, Tier(started=now, finished=now))
        tier.tests += 1

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        tier = self._tiers.get(tier_of(report.nodeid))
        if tier is None:
            return
        tier.finished = time.monotonic()
        if report.failed:
            tier.failed.add(report.nodeid)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self._tiers:
            return
        terminalreporter.write_sep("=", "time per test tier")
        for name in (*TIERS, "other"):
            tier = self._tiers.get(name)
            if tier is None:
                continue
            failed = f"  ({len(tier.failed)} failed)" if tier.failed else ""
            terminalreporter.write_line(
                f"{name:<12} {tier.tests:>6} tests {tier.finished - tier.started:>9.1f} s{failed}"
            )


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(TierClock(), "kevents-tier-clock")
