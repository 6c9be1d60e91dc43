"""The CRD manifests are current and have what `kubectl get` and Knative users rely on."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from controller.apis import __main__ as render
from tests.cluster import REPO

MANIFESTS = render.manifests()


@pytest.mark.parametrize("name", sorted(MANIFESTS), ids=sorted(MANIFESTS))
def test_checked_in_manifest_is_generated(name: str) -> None:
    assert (REPO / "manifests" / name).read_text() == MANIFESTS[name], "run hack/update-crds"


def crd(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(MANIFESTS[name])
    return loaded


NAMES = {
    "300-apiserversource.yaml": ("ApiServerSource", [], ["Sink", "Age", "Ready", "Reason"]),
    "300-pingsource.yaml": ("PingSource", [], ["Sink", "Schedule", "Age", "Ready", "Reason"]),
    "300-containersource.yaml": ("ContainerSource", [], ["Sink", "Age", "Ready", "Reason"]),
    "300-sinkbinding.yaml": ("SinkBinding", [], ["Sink", "Age", "Ready", "Reason"]),
    "300-githubsource.yaml": ("GitHubSource", [], ["Sink", "Age", "Ready", "Reason"]),
    "300-inmemorychannel.yaml": ("InMemoryChannel", ["imc"], ["URL", "Age", "Ready", "Reason"]),
    "300-channel.yaml": ("Channel", ["ch"], ["URL", "Age", "Ready", "Reason"]),
    "300-subscription.yaml": ("Subscription", ["sub"], ["Age", "Ready", "Reason"]),
    "300-broker.yaml": ("Broker", [], ["URL", "Class", "Age", "Ready", "Reason"]),
    "300-trigger.yaml": ("Trigger", [], ["Broker", "Subscriber_URI", "Age", "Ready", "Reason"]),
    "300-kafkasink.yaml": ("KafkaSink", [], ["URL", "Age", "Ready", "Reason"]),
    "300-eventtype.yaml": (
        "EventType",
        [],
        [
            "Type",
            "Source",
            "Schema",
            "Reference Name",
            "Reference Kind",
            "Description",
            "Ready",
            "Reason",
        ],
    ),
}


@pytest.mark.parametrize(("name", "expected"), NAMES.items(), ids=NAMES.keys())
def test_names_columns_and_status_subresource(
    name: str, expected: tuple[str, list[str], list[str]]
) -> None:
    kind, short, columns = expected
    doc = crd(name)
    assert doc["spec"]["names"]["kind"] == kind
    assert doc["spec"]["names"].get("shortNames", []) == short
    assert doc["spec"]["scope"] == "Namespaced"
    assert "all" in doc["spec"]["names"]["categories"]
    storage = [v["name"] for v in doc["spec"]["versions"] if v["storage"]]
    assert len(storage) == 1
    for version in doc["spec"]["versions"]:
        assert version["subresources"] == {"status": {}}
        if not version.get("deprecated"):  # legacy v1alpha1: its own (test_controller_conversion)
            assert [c["name"] for c in version["additionalPrinterColumns"]] == columns


def test_pingsource_serves_v1beta2_and_stores_v1() -> None:
    versions = {v["name"]: v["storage"] for v in crd("300-pingsource.yaml")["spec"]["versions"]}
    assert versions == {"v1beta2": False, "v1": True}


def test_apiserversource_defaults() -> None:
    spec = crd("300-apiserversource.yaml")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    props = spec["properties"]["spec"]["properties"]
    assert props["mode"]["default"] == "Reference"
    # No enum: the admission webhook refuses another mode in Knative's words.
    assert "enum" not in props["mode"]
    assert props["serviceAccountName"]["default"] == "default"
