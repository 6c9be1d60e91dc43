"""SINK_BINDING_SELECTION_MODE as the SinkBinding webhook configuration's selectors: the mode's
include/exclude expressions written, every other expression (the system namespaces, a test's
namespace) kept, the two entries never selecting one object twice."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from controller import settings
from controller.sinkbinding import selection
from controller.sinkbinding.subjects import matches

SYSTEM = {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
          "values": ["kube-system", "kevents-system"]}  # fmt: skip
INCLUSION_SHIPPED: list[dict[str, Any]] = [
    {"namespaceSelector": {"matchExpressions": [SYSTEM, {
        "key": selection.INCLUDE, "operator": "In", "values": ["true"]}]}},
    {"namespaceSelector": {"matchExpressions": [SYSTEM]},
     "objectSelector": {"matchLabels": {selection.INCLUDE: "true", "app": "x"}}},
]  # fmt: skip


def reviewed(hooks: list[dict[str, Any]], ns: dict[str, str], obj: dict[str, str]) -> int:
    """How many entries review an object labelled `obj` in a namespace labelled `ns`."""
    return sum(
        matches(h.get("namespaceSelector") or {}, ns)
        and matches(h.get("objectSelector") or {}, obj)
        for h in hooks
    )


@pytest.mark.parametrize(
    ("mode", "ns", "obj", "count"),
    [
        (selection.Mode.EXCLUSION, {}, {}, 1),
        (selection.Mode.EXCLUSION, {}, {selection.INCLUDE: "true", "app": "x"}, 1),
        (selection.Mode.EXCLUSION, {selection.EXCLUDE: "true"}, {}, 0),
        (selection.Mode.EXCLUSION, {}, {selection.EXCLUDE: "true"}, 0),
        (selection.Mode.INCLUSION, {}, {}, 0),
        (selection.Mode.INCLUSION, {selection.INCLUDE: "true"}, {}, 1),
        (selection.Mode.INCLUSION, {}, {selection.INCLUDE: "true", "app": "x"}, 1),
        (selection.Mode.INCLUSION, {selection.INCLUDE: "true"}, {selection.INCLUDE: "true"}, 1),
        (selection.Mode.INCLUSION, {selection.INCLUDE: "true", selection.EXCLUDE: "true"}, {}, 0),
        (selection.Mode.EXCLUSION, {"kubernetes.io/metadata.name": "kube-system"}, {}, 0),
    ],
    ids=["excl-plain", "excl-included-object", "excl-excluded-ns", "excl-excluded-object",
         "incl-plain", "incl-ns", "incl-object", "incl-both-once", "incl-exclude-wins",
         "system-namespace"],
)  # fmt: skip
def test_each_object_is_reviewed_by_at_most_one_entry_as_the_mode_says(
    mode: selection.Mode, ns: dict[str, str], obj: dict[str, str], count: int
) -> None:
    hooks = copy.deepcopy(INCLUSION_SHIPPED)
    assert selection.apply(hooks, mode)
    assert SYSTEM in hooks[0]["namespaceSelector"]["matchExpressions"]
    assert hooks[1]["objectSelector"].get("matchLabels") == {"app": "x"}  # others kept
    assert reviewed(hooks, ns, obj) == count
    assert not selection.apply(hooks, mode)  # stable: nothing to patch the second time


def test_the_mode_is_read_from_knatives_variable() -> None:
    assert settings.ControllerSettings.from_env({}).sink_binding_selection_mode == "exclusion"
    chosen = settings.ControllerSettings.from_env({"SINK_BINDING_SELECTION_MODE": "inclusion"})
    assert chosen.sink_binding_selection_mode == "inclusion"
    with pytest.raises(Exception, match="SINK_BINDING_SELECTION_MODE"):
        settings.ControllerSettings.from_env({"SINK_BINDING_SELECTION_MODE": "all"})
