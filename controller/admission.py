"""Admission of kevents' own kinds: `/validate` (ValidatingWebhookConfiguration
`validation.webhook.kevents.knative.dev`) refuses what `kevents.validation` refuses, and
`/default` (MutatingWebhookConfiguration `webhook.kevents.knative.dev`) writes the defaults
Knative's webhook writes and our reconcilers would write a moment later anyway:

- ContainerSource: unnamed containers are named `<source>-<index>`
  (`containersource.resources.named_containers`; `kn source container create` sends none);
- Trigger: `spec.filter: {}` when absent, `spec.subscriber.ref.namespace` the Trigger's
  (Knative's `TriggerSpec.SetDefaults`), the label `eventing.knative.dev/broker: <spec.broker>`;
- Channel, InMemoryChannel: the annotation `messaging.knative.dev/subscribable: v1` (the
  Subscribable duck version, as Knative's `SetDefaults`).
- KafkaSource: `spec.consumerGroup` `knative-kafka-source-<uuid>` when created without one
  (Knative's `KafkaSource.SetDefaults`; the field is immutable after).

The defaults that come from ConfigMaps stay with the reconcilers, which write them a moment
after the create (reading a ConfigMap inside an admission call would make every write wait
on it): the Broker's class annotation and `spec.config` (`config-br-defaults`) and the
Channel's `spec.channelTemplate` (`default-ch-webhook`). The class rule here only refuses
changing a class once set.

Served by the SinkBinding webhook's server (`sinkbinding/webhook.py`: one TLS listener, the
certificates it rotates, `caBundle` published to every configuration). Both configurations
are `failurePolicy: Fail` and `timeoutSeconds: 5`: they match only kevents' kinds and skip
`kube-system` and the system namespace, so a webhook outage blocks writes of our kinds only
(never pods, namespaces or the controller's own status writes: `/status` is a subresource
the rules do not match). An update that leaves the spec (and the Broker class) unchanged
is always allowed, so finalizers can always be removed and deletion is never blocked.
Nothing here calls the apiserver: each review is pure work on the request.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

from aiohttp import web

from controller.broker import resources as broker_resources
from controller.containersource import resources as containers
from controller.trigger import reconciler as triggers
from kevents import kafkasourcespec, validation

logger = logging.getLogger(__name__)

VALIDATE = "/validate"
DEFAULT = "/default"
SUBSCRIBABLE = "messaging.knative.dev/subscribable"
SUBSCRIBABLE_VERSION = "v1"
"""The duck version annotation Knative's Channel and InMemoryChannel defaulting writes."""


def _review(uid: str, response: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": uid, **response},
    }


def verdict(request: dict[str, Any]) -> dict[str, Any]:
    """The `response` of a validating review: allowed, or refused with every problem."""
    kind = request.get("kind") or {}
    obj = request.get("object") or {}
    old = request.get("oldObject") if request.get("operation") == "UPDATE" else None
    if request.get("operation") not in ("CREATE", "UPDATE") or not obj:
        return {"allowed": True}
    found = validation.problems(str(kind.get("group", "")), str(kind.get("kind", "")), obj, old)
    if not found:
        return {"allowed": True}
    return {
        "allowed": False,
        "status": {
            "code": 400, "reason": "BadRequest", "status": "Failure",
            # Knative's webhook: "validation failed: " + the FieldErrors, one per line.
            "message": "validation failed: " + "\n".join(found),
        },
    }  # fmt: skip


def defaults(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON patch writing Knative's defaults into the object ([] for none)."""
    kind = request.get("kind") or {}
    obj = request.get("object") or {}
    if request.get("operation") not in ("CREATE", "UPDATE") or not obj:
        return []
    group, name = str(kind.get("group", "")), str(kind.get("kind", ""))
    meta = obj.get("metadata") or {}
    if (group, name) == ("sources.knative.dev", containers.KIND) and meta.get("name"):
        named = containers.named_containers(obj)
        if named is not None:
            return [{"op": "replace", "path": "/spec/template/spec/containers", "value": named}]
    if (group, name) == ("eventing.knative.dev", "Trigger") and meta.get("namespace"):
        return _trigger_defaults(obj, str(meta["namespace"]))
    if (group, name) == ("sources.knative.dev", "KafkaSource"):
        spec = obj.get("spec")
        if request.get("operation") == "CREATE" and isinstance(spec, dict):
            if not spec.get("consumerGroup"):  # Knative's KafkaSource.SetDefaults
                group_id = kafkasourcespec.new_consumer_group()
                return [{"op": "add", "path": "/spec/consumerGroup", "value": group_id}]
    if group == "messaging.knative.dev" and name in ("Channel", "InMemoryChannel"):
        annotations = meta.get("annotations")
        if annotations is None:
            return [{"op": "add", "path": "/metadata/annotations",
                     "value": {SUBSCRIBABLE: SUBSCRIBABLE_VERSION}}]  # fmt: skip
        if SUBSCRIBABLE not in annotations:
            escaped = SUBSCRIBABLE.replace("~", "~0").replace("/", "~1")
            return [{"op": "add", "path": f"/metadata/annotations/{escaped}",
                     "value": SUBSCRIBABLE_VERSION}]  # fmt: skip
    return []


def _trigger_defaults(obj: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    """Knative's `Trigger.SetDefaults`: `spec.filter` an empty filter (match everything)
    when absent, `spec.subscriber.ref.namespace` the Trigger's, the broker label."""
    patch: list[dict[str, Any]] = []
    spec = obj.get("spec")
    if isinstance(spec, dict):
        if spec.get("filter") is None:
            patch.append({"op": "add", "path": "/spec/filter", "value": {}})
        ref = (spec.get("subscriber") or {}).get("ref")
        if isinstance(ref, dict) and not ref.get("namespace"):
            patch.append({"op": "add", "path": "/spec/subscriber/ref/namespace",
                          "value": namespace})  # fmt: skip
    broker = triggers.broker_name(obj)
    labels = (obj.get("metadata") or {}).get("labels")
    if broker is None or (labels or {}).get(broker_resources.BROKER_LABEL) == broker:
        return patch
    if labels is None:
        return [*patch, {"op": "add", "path": "/metadata/labels",
                         "value": {broker_resources.BROKER_LABEL: broker}}]  # fmt: skip
    escaped = broker_resources.BROKER_LABEL.replace("~", "~0").replace("/", "~1")
    return [*patch, {"op": "add", "path": f"/metadata/labels/{escaped}", "value": broker}]


async def validate(request: web.Request) -> web.Response:
    req = (await request.json()).get("request") or {}
    response = verdict(req)
    if not response["allowed"]:
        logger.info(
            "Admission refused %s %s/%s: %s", (req.get("kind") or {}).get("kind"),
            req.get("namespace", ""), req.get("name", ""), response["status"]["message"],
            extra={"namespace": req.get("namespace", ""), "object_name": req.get("name", "")},
        )  # fmt: skip
    return web.json_response(_review(str(req.get("uid", "")), response))


async def default(request: web.Request) -> web.Response:
    req = (await request.json()).get("request") or {}
    response: dict[str, Any] = {"allowed": True}
    patch = defaults(req)
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    return web.json_response(_review(str(req.get("uid", "")), response))


def add_routes(app: web.Application) -> None:
    app.router.add_post(VALIDATE, validate)
    app.router.add_post(DEFAULT, default)
