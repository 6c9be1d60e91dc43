"""A source's EventTypes (controller.framework.eventtypes): which, named how, pointing where."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from controller.framework import eventtypes

SOURCE: dict[str, Any] = {
    "apiVersion": "sources.knative.dev/v1",
    "kind": "PingSource",
    "metadata": {"name": "beat", "namespace": "ns", "uid": "u-1"},
}


def test_one_eventtype_per_declared_type_named_as_knative() -> None:
    attributes = [
        {"type": "dev.knative.sources.ping", "source": "/apis/v1/namespaces/ns/pingsources/beat"},
        {"type": "dev.knative.sources.ping", "source": "/apis/v1/namespaces/ns/pingsources/beat"},
        {"type": "", "source": "/nowhere"},
    ]
    ref = {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "default"}
    (only,) = eventtypes.desired(SOURCE, attributes, ref)
    md5 = hashlib.md5(
        b"dev.knative.sources.ping/apis/v1/namespaces/ns/pingsources/beatu-1",
        usedforsecurity=False,
    )
    assert only["metadata"]["name"] == md5.hexdigest()
    assert only["metadata"]["namespace"] == "ns"
    assert only["metadata"]["labels"] == {"eventing.knative.dev/sourceName": "beat"}
    assert only["metadata"]["ownerReferences"] == [
        {"apiVersion": "sources.knative.dev/v1", "kind": "PingSource", "name": "beat",
         "uid": "u-1", "controller": True, "blockOwnerDeletion": True},
    ]  # fmt: skip
    assert only["spec"] == {
        "type": "dev.knative.sources.ping",
        "source": "/apis/v1/namespaces/ns/pingsources/beat",
        "reference": ref,
    }


@pytest.mark.parametrize(
    ("sink", "expected"),
    [
        ({"uri": "http://broker-ingress/ns/default"}, None),
        (None, None),
        (
            {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "b"}},
            {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "b",
             "namespace": "ns"},
        ),
        (
            {"ref": {"apiVersion": "v1", "kind": "Service", "name": "s", "namespace": "other"}},
            {"apiVersion": "v1", "kind": "Service", "name": "s", "namespace": "other"},
        ),
    ],
    ids=["uri", "none", "ref-namespace-defaulted", "ref-own-namespace"],
)  # fmt: skip
def test_reference_is_the_sink_ref(sink: Any, expected: Any) -> None:
    assert eventtypes.sink_reference(sink, "ns") == expected
