"""hack/rekt's report of a `go test -json` run: the summary line and each failure's first
error line, as the people fixing the failures read them."""

from __future__ import annotations

import json
import pathlib
import re

import pytest

from hack import conformance


def event(action: str, test: str | None = None, output: str | None = None) -> str:
    e: dict[str, object] = {"Action": action, "Package": "rekt"}
    if test:
        e["Test"] = test
    if output is not None:
        e["Output"] = output
    if action in ("pass", "fail", "skip"):
        e["Elapsed"] = 1.5
    return json.dumps(e)


LOG = "2026-12-02T08:30:59Z\tDEBUG\ttest\tmilestone/emitter_log.go:101\tStep Finished {\n"
CONDITION = (
    '    wait.go:200: ns/src condition is {"type":"Ready","status":"False",'
    '"reason":"MinimumReplicasUnavailable",'
    '"message":"Deployment does not have minimum availability."}\n'
)

STREAM = [
    event("run", "TestSmoke_Channel"),
    event("output", "TestSmoke_Channel/goes_ready", "    logger.go:146: created channel\n"),
    event("pass", "TestSmoke_Channel/goes_ready"),
    event("pass", "TestSmoke_Channel"),
    event("run", "TestSmoke_ContainerSource"),
    event("output", "TestSmoke_ContainerSource/ready/Requirement/is_ready", LOG),
    event(
        "output",
        "TestSmoke_ContainerSource/ready/Requirement/is_ready",
        "    wait.go:172: ns/src is not Ready\n",
    ),  # fmt: skip
    event("output", "TestSmoke_ContainerSource/ready/Requirement/is_ready", CONDITION),
    event(
        "output",
        "TestSmoke_ContainerSource/ready/Requirement/is_ready",
        "    steps.go:47: containersources did not become ready, timed out waiting\n",
    ),  # fmt: skip
    event("fail", "TestSmoke_ContainerSource/ready/Requirement/is_ready"),
    event("output", "TestSmoke_ContainerSource/ready/Teardown", "    magic.go:440: Skipping\n"),
    event("fail", "TestSmoke_ContainerSource/ready/Requirement"),
    event("fail", "TestSmoke_ContainerSource/ready"),
    event("fail", "TestSmoke_ContainerSource"),
    event("run", "TestPingSourceTLS"),
    event("skip", "TestPingSourceTLS"),
    event("run", "TestBrokerConformance"),
    event(
        "output",
        "TestBrokerConformance/acks/Assert/ce_0.3",
        "    accepts.go:88: expected 202, got 400\n",
    ),  # fmt: skip
    event("output", None, "panic: test timed out after 60m0s\n"),
]


def test_summary_names_each_failure_with_its_error_line() -> None:
    run = conformance.Run()
    finished = [t.name for line in STREAM if (t := run.feed(line)) is not None]
    assert finished == ["TestSmoke_Channel", "TestSmoke_ContainerSource", "TestPingSourceTLS"]
    assert list(conformance.outcome_lines(run)) == [
        # a test still running when the binary ended (here: its timeout) is a failure
        "FAIL TestBrokerConformance: accepts.go: expected 202, got 400",
        # the failure line, not the poll logs before it, with the condition it waited on
        "FAIL TestSmoke_ContainerSource: steps.go: containersources did not become ready, "
        "timed out waiting (last: Ready False MinimumReplicasUnavailable: Deployment does "
        "not have minimum availability.)",
        "skipped by the suite: TestPingSourceTLS",
        "1 passed, 2 failed",
    ]


def test_failed_test_log_holds_its_output_in_order(tmp_path: pathlib.Path) -> None:
    run = conformance.Run()
    for line in STREAM:
        run.feed(line)
    conformance.write_logs(run, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "TestBrokerConformance.log",
        "TestSmoke_ContainerSource.log",
    ]
    text = (tmp_path / "TestSmoke_ContainerSource.log").read_text()
    assert text.index("is not Ready") < text.index("did not become ready") < text.index("Skipping")


@pytest.mark.parametrize(
    ("name", "selected"),
    [
        ("TestSmoke_Broker", True),
        ("TestBrokerConformance", True),
        ("TestSequence", True),
        ("TestSequenceTLS", False),  # the selection is anchored: no TLS/OIDC variants
        ("TestBrokerSupportsOIDC", False),
        ("TestJobSinkSuccess", False),
    ],
)
def test_ci_selection(name: str, selected: bool) -> None:
    assert bool(re.fullmatch(conformance.CI_SELECTION, name)) is selected
