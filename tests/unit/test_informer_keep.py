"""What an informer remembers per object: `keep(obj)` (the adapter keeps only the identity),
and it still tells add, update and delete apart, a delete found by a relist included."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry

from kevents import informer, kubeapi


def _cm(name: str, rv: str, **extra: Any) -> dict[str, Any]:
    meta = {"name": name, "namespace": "ns", "uid": f"uid-{name}", "resourceVersion": rv}
    return {"metadata": {**meta, **extra}, "data": {"blob": "x" * 4096}}


@pytest.mark.parametrize(
    "keep",
    [lambda obj: informer.identity(obj, "ownerReferences"), informer.Compact(("ownerReferences",))],
    ids=["identity", "compact"],
)
async def test_identity_is_enough_to_tell_changes_apart(
    keep: Callable[[dict[str, Any]], dict[str, Any]] | informer.Compact,
) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    async def handler(change: informer.Change, obj: dict[str, Any]) -> None:
        seen.append((change.value, obj))

    watcher = informer.Informer(
        cast(kubeapi.KubeApi, None),  # no request is made: changes are fed directly
        informer.Collection("", "v1", "configmaps", "ConfigMap", "ns"),
        handler,
        informer_metrics=informer.InformerMetrics(CollectorRegistry()),
        keep=keep,
    )
    owner = [{"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u"}]
    await watcher._listed([_cm("a", "1"), _cm("b", "1", ownerReferences=owner), _cm("c", "1")])
    assert seen == []  # what exists at start is only recorded
    assert all("data" not in each for each in watcher.objects())
    await watcher._event("MODIFIED", _cm("a", "2"))
    await watcher._event("MODIFIED", _cm("a", "2"))  # an echo: suppressed
    # history expired: the relist finds b changed and c gone
    await watcher._listed([_cm("a", "2"), _cm("b", "3", ownerReferences=owner)])
    assert [(change, obj["metadata"]["name"]) for change, obj in seen] == [
        ("update", "a"),
        ("update", "b"),
        ("delete", "c"),
    ]
    assert seen[0][1]["data"] == {"blob": "x" * 4096}  # events carry the object as received
    assert seen[2][1] == {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "c", "namespace": "ns", "uid": "uid-c", "resourceVersion": "1"},
    }
    remembered = {each["metadata"]["name"]: each for each in watcher.objects()}
    assert remembered["b"]["metadata"]["ownerReferences"] == owner  # for the owner filter
    assert all("data" not in each for each in remembered.values())
