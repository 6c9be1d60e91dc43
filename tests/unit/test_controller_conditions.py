"""Living condition set math: Ready derived from dependents, transition times kept."""

from __future__ import annotations

import pytest

from controller.framework import conditions

SET = conditions.ConditionSet(("SinkProvided", "Deployed"))
T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"


def fresh(clock: str = T0) -> conditions.Conditions:
    return SET.initial((), clock)


CASES = {
    "all-unknown": ([], ("Unknown", "", "")),
    "one-true": ([("SinkProvided", "True", "", "")], ("Unknown", "", "")),
    "all-true": (
        [("SinkProvided", "True", "", ""), ("Deployed", "True", "", "")],
        ("True", "", ""),
    ),
    "false-wins-over-unknown": (
        [("SinkProvided", "False", "NotFound", "no svc")],
        ("False", "NotFound", "no svc"),
    ),
    "false-wins-over-true": (
        [("SinkProvided", "True", "", ""), ("Deployed", "False", "Bad", "broken")],
        ("False", "Bad", "broken"),
    ),
    "unknown-reason-propagates": (
        [("SinkProvided", "True", "", ""), ("Deployed", "Unknown", "DeploymentUpdating", "m")],
        ("Unknown", "DeploymentUpdating", "m"),
    ),
}


@pytest.mark.parametrize(("marks", "ready"), CASES.values(), ids=CASES.keys())
def test_ready_follows_dependents(
    marks: list[tuple[str, str, str, str]], ready: tuple[str, str, str]
) -> None:
    conds = fresh()
    for kind, status, reason, message in marks:
        if status == "True":
            conds = conds.mark_true(kind, reason, message)
        elif status == "False":
            conds = conds.mark_false(kind, reason, message)
        else:
            conds = conds.mark_unknown(kind, reason, message)
    got = conds.get(conditions.READY)
    assert got is not None
    assert (got.status, got.reason, got.message) == ready
    assert conds.is_ready() is (ready[0] == "True")


def test_transition_time_changes_only_with_status() -> None:
    first = fresh(T0).mark_false("SinkProvided", "NotFound", "a")
    stored = first.to_list()
    again = SET.initial(stored, T1).mark_false("SinkProvided", "NotFound", "b")
    sink = again.get("SinkProvided")
    assert sink is not None and sink.last_transition == T0 and sink.message == "b"
    flipped = SET.initial(stored, T1).mark_true("SinkProvided")
    sink = flipped.get("SinkProvided")
    assert sink is not None and sink.last_transition == T1


def test_same_conclusion_serializes_identically() -> None:
    stored = fresh(T0).mark_true("SinkProvided").mark_true("Deployed").to_list()
    redo = SET.initial(stored, T1).mark_true("SinkProvided").mark_true("Deployed").to_list()
    assert redo == stored
    assert [c["type"] for c in redo] == ["Deployed", "Ready", "SinkProvided"]


def test_round_trip_keeps_severity() -> None:
    raw: conditions.ConditionDict = {"type": "X", "status": "True", "severity": "Info"}
    assert conditions.Condition.from_dict(raw).to_dict() == raw


PROPAGATE = {
    "none-yet": (None, ("Unknown", "NotConfigured", "not reconciled")),
    "true": ({"type": "Ready", "status": "True", "reason": "Ignored"}, ("True", "", "")),
    "false": (
        {"type": "Ready", "status": "False", "reason": "Down", "message": "m"},
        ("False", "Down", "m"),
    ),
    "unknown": (
        {"type": "Ready", "status": "Unknown", "reason": "Wait", "message": "w"},
        ("Unknown", "Wait", "w"),
    ),
}


@pytest.mark.parametrize(("source", "want"), PROPAGATE.values(), ids=PROPAGATE.keys())
def test_propagate_copies_another_objects_ready(
    source: conditions.ConditionDict | None, want: tuple[str, str, str]
) -> None:
    conds = fresh().propagate("Deployed", source, "NotConfigured", "not reconciled")
    got = conds.get("Deployed")
    assert got is not None
    assert (got.status, got.reason, got.message) == want


def test_ready_of_reads_the_status_conditions() -> None:
    ready: conditions.ConditionDict = {"type": "Ready", "status": "True"}
    obj = {"status": {"conditions": [{"type": "Other", "status": "False"}, ready]}}
    assert conditions.ready_of(obj) == ready
    assert conditions.ready_of({"status": {}}) is None
    assert conditions.ready_of({}) is None
