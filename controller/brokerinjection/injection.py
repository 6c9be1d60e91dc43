"""Which namespaces and Triggers ask for an injected Broker, and that Broker (pure).

Knative's sugar controller: a namespace labelled `eventing.knative.dev/injection=enabled`
(or the older `knative-eventing-injection=enabled`) gets a Broker named `default`; a Trigger
annotated the same way gets the Broker its `spec.broker` names when that does not exist.
The Broker is created, never updated or deleted: it is the user's afterwards (a deleted one
comes back while the label stays, as in Knative). It carries the label
`eventing.knative.dev/injected: "true"` and the class annotation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controller.broker import defaults
from kevents import kubeapi

NAMESPACES = kubeapi.Resource("", "v1", "namespaces", namespaced=False)
KEYS = ("eventing.knative.dev/injection", "knative-eventing-injection")
ENABLED = "enabled"
INJECTED_LABEL = "eventing.knative.dev/injected"
DEFAULT_BROKER = "default"


def enabled(marks: Mapping[str, str] | None) -> bool:
    """Labels (of a namespace) or annotations (of a Trigger) asking for injection."""
    return any((marks or {}).get(key) == ENABLED for key in KEYS)


def broker(namespace: str, name: str, broker_class: str) -> dict[str, Any]:
    return {
        "apiVersion": defaults.API_VERSION,
        "kind": defaults.KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {INJECTED_LABEL: "true"},
            "annotations": {defaults.CLASS_ANNOTATION: broker_class},
        },
    }
