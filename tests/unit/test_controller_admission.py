"""The words of an admission refusal, as Knative's clients compare them (rekt's
ApiServerSource webhook test uses `assert.EqualError`): the webhook's name and
`validation failed: <apis.FieldError>`."""

from __future__ import annotations

import pathlib
from typing import Any

import yaml

from controller import admission

REPO = pathlib.Path(__file__).resolve().parents[2]


def _review(
    kind: str, group: str, obj: dict[str, Any], old: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "uid": "u", "kind": {"group": group, "version": "v1", "kind": kind},
        "operation": "UPDATE" if old else "CREATE", "object": obj, "oldObject": old,
    }  # fmt: skip


SPEC: dict[str, Any] = {
    "mode": "Unknown", "serviceAccountName": "foo-sa",
    "resources": [{"apiVersion": "v1", "kind": "Event"}],
    "sink": {"ref": {"apiVersion": "v1", "kind": "Service", "name": "foo-svc"}},
}  # fmt: skip
SOURCE = {"metadata": {"name": "s", "namespace": "n"}, "spec": SPEC}


def test_an_invalid_apiserversource_mode_is_refused_in_knatives_words() -> None:
    response = admission.verdict(_review("ApiServerSource", "sources.knative.dev", SOURCE))
    assert response["allowed"] is False
    assert response["status"]["message"] == "validation failed: invalid value: Unknown: spec.mode"
    for mode in ("Reference", "Resource", ""):
        valid = {**SOURCE, "spec": {**SPEC, "mode": mode}}
        assert admission.verdict(_review("ApiServerSource", "sources.knative.dev", valid)) == {
            "allowed": True
        }


def test_a_broker_class_change_is_refused_in_knatives_words() -> None:
    def broker(cls: str) -> dict[str, Any]:
        annotations = {"eventing.knative.dev/broker.class": cls}
        return {"metadata": {"name": "b", "namespace": "n", "annotations": annotations}}

    old, new = broker("MTChannelBasedBroker"), broker("Rekt.brokerClassIsImmutable")
    response = admission.verdict(_review("Broker", "eventing.knative.dev", new, old))
    assert response["status"]["message"] == (
        "validation failed: Immutable fields changed (-old +new): annotations\n{string}:\n"
        '\t-: "MTChannelBasedBroker"\n\t+: "Rekt.brokerClassIsImmutable"\n'
    )


def test_the_validating_webhook_carries_knatives_name() -> None:
    """kubectl prints `admission webhook "<webhooks[].name>" denied the request: ...`."""
    docs = list(yaml.safe_load_all((REPO / "manifests" / "500-webhook.yaml").read_text()))
    validating = [d for d in docs if d and d["kind"] == "ValidatingWebhookConfiguration"]
    names = [hook["name"] for d in validating for hook in d["webhooks"]]
    assert names == ["validation.webhook.eventing.knative.dev"]
