"""The legacy `v1alpha1` versions of Broker, Trigger, InMemoryChannel, Channel and Subscription
(Knative eventing v0.7-v0.10, the 2019 tutorials), served next to `v1` and converted by the
controller's webhook (`controller/conversion/`); etcd stores v1 only.

`served(crd, ...)` adds the version (deprecated: kubectl prints a warning naming v1) and
`spec.conversion` pointing at `kevents-webhook` `/convert`; the controller fills in the
`caBundle`. Only v1alpha1 requests are converted, so a webhook outage fails those alone
(`controller/conversion/review.py`). Status is kept as the controller's v1 status converts
(`x-kubernetes-preserve-unknown-fields`); the spec is typed as the old Go types were.
"""

from __future__ import annotations

from controller.apis import schema as s

VERSION = "v1alpha1"
SERVICE = {
    "namespace": "kevents-system",
    "name": "kevents-webhook",
    "path": "/convert",
    "port": 443,
}


def object_reference(description: str) -> s.Schema:
    """corev1.ObjectReference, as v1alpha1 wrote references."""
    return s.obj(
        description,
        {
            "apiVersion": s.string("API version of the referent, e.g. serving.knative.dev/v1."),
            "kind": s.string("Kind of the referent."),
            "name": s.string("Name of the referent."),
            "namespace": s.string("Namespace of the referent (default: the object's)."),
            "uid": s.string("UID of the referent."),
            "resourceVersion": s.string("Resource version of the referent."),
            "fieldPath": s.string("A field inside the referent."),
        },
    )


def destination(description: str) -> s.Schema:
    """v1alpha1 Destination/SubscriberSpec: `ref` or `uri` (older: `dnsName`, or the
    reference's `apiVersion`/`kind`/`name` inline)."""
    return s.obj(
        description,
        {
            "ref": object_reference("The Addressable (or Service) to deliver to."),
            "uri": s.string("An absolute URI, or a path relative to ref's address."),
            "dnsName": s.string("Deprecated: a host name, delivered to as http://<dnsName>/."),
            "apiVersion": s.string("Deprecated: the reference's API version, inline."),
            "kind": s.string("Deprecated: the reference's kind, inline."),
            "name": s.string("Deprecated: the reference's name, inline."),
            "namespace": s.string("Deprecated: the reference's namespace, inline."),
        },
    )


def delivery() -> s.Schema:
    return s.obj(
        "Delivery options: retries, backoff and dead letter sink.",
        {
            "deadLetterSink": destination("Where events go after all retries failed."),
            "retry": {"type": "integer", "format": "int32", "minimum": 0,
                      "description": "Additional attempts after the first one."},
            "backoffPolicy": s.string("linear or exponential.", enum=["linear", "exponential"]),
            "backoffDelay": s.string("Base delay between retries (ISO-8601, e.g. PT0.2S)."),
        },
    )  # fmt: skip


def _template(description: str) -> s.Schema:
    return s.obj(
        description,
        {
            "apiVersion": s.string("API version of the channel kind."),
            "kind": s.string("Kind of the channel, e.g. InMemoryChannel."),
            "spec": s.preserved("Spec of the channel."),
        },
    )


def _subscribable() -> s.Schema:
    entry = s.obj(
        "A subscriber of the channel, resolved by its Subscription.",
        {
            "uid": s.string("UID of the Subscription."),
            "generation": {"type": "integer", "format": "int64",
                           "description": "Generation of the Subscription."},
            "subscriberURI": s.string("Where events are delivered."),
            "replyURI": s.string("Where the subscriber's replies are sent."),
            "deadLetterSink": s.string("Where undeliverable events are sent (URI)."),
            "delivery": delivery(),
        },
    )  # fmt: skip
    return s.obj(
        "The channel's subscribers (written by Subscriptions).",
        {"subscribers": {"type": "array", "description": "Subscribers.", "items": entry}},
    )


def _status(description: str) -> s.Schema:
    return s.preserved(description)


def _columns(*extra: s.Schema) -> list[s.Schema]:
    ready, reason = s.ready_columns()[1:]
    return [ready, reason, *extra, s.ready_columns()[0]]


def _hostname() -> s.Schema:
    return {"name": "Hostname", "type": "string", "jsonPath": ".status.address.hostname"}


def broker() -> tuple[s.Schema, list[s.Schema]]:
    spec = s.obj(
        "The channel template and delivery options of the broker.",
        {
            "channelTemplateSpec": _template("The kind of channel the broker uses."),
            "channelTemplate": s.preserved("Deprecated (v0.6): the channel provisioner."),
            "delivery": delivery(),
        },
    )
    return spec, _columns(_hostname())


def trigger() -> tuple[s.Schema, list[s.Schema]]:
    pair = s.obj(
        "Deprecated: exact type and source; empty or Any matches every value.",
        {"type": s.string("CloudEvents type."), "source": s.string("CloudEvents source.")},
    )
    broker_name = s.string("Name of the Broker in the Trigger's namespace.", default="default")
    broker_name["x-kubernetes-validations"] = [
        s.rule("self == oldSelf", "spec.broker is immutable: create a new Trigger")
    ]
    spec = s.obj(
        "The broker, the filter and the subscriber.",
        {
            "broker": broker_name,
            "filter": s.obj(
                "Exact-match filter on CloudEvents attributes.",
                {
                    "sourceAndType": pair,
                    "attributes": s.string_map("Attribute name -> value; empty means any."),
                },
            ),
            "subscriber": destination("Where matching events are delivered."),
            "delivery": delivery(),
        },
        required=["subscriber"],
    )
    columns = _columns(
        {"name": "Broker", "type": "string", "jsonPath": ".spec.broker"},
        {"name": "Subscriber_URI", "type": "string", "jsonPath": ".status.subscriberURI"},
    )
    return spec, columns


def channelable(*, template: bool) -> tuple[s.Schema, list[s.Schema]]:
    properties: s.Schema = {"subscribable": _subscribable(), "delivery": delivery()}
    if template:
        properties["channelTemplate"] = _template("The kind of backing channel to create.")
    return s.obj("Subscribers and delivery options.", properties), _columns(_hostname())


def subscription() -> tuple[s.Schema, list[s.Schema]]:
    channel = object_reference("The channel to subscribe to (immutable).")
    channel["x-kubernetes-validations"] = [
        s.rule("self == oldSelf", "spec.channel is immutable: create a new Subscription")
    ]
    reply = destination("Where the subscriber's responses are sent.")
    reply["properties"]["channel"] = object_reference("Deprecated: the channel to reply to.")
    spec = s.obj(
        "The channel, the subscriber, where replies go and delivery options.",
        {
            "channel": channel,
            "subscriber": destination("Where events from the channel are delivered."),
            "reply": reply,
            "delivery": delivery(),
        },
        required=["channel"],
    )
    return spec, _columns()


def served(crd: s.Schema, legacy: tuple[s.Schema, list[s.Schema]]) -> s.Schema:
    """`crd` (storage v1) also serving v1alpha1, converted by the controller's webhook."""
    spec, columns = legacy
    kind = crd["spec"]["names"]["kind"]
    group = crd["spec"]["group"]
    root = {
        "type": "object",
        "description": f"{kind} at the legacy version {VERSION} (stored as v1).",
        "properties": {"spec": spec, "status": _status(f"Observed state of the {kind}.")},
    }
    crd["spec"]["versions"].append({
        "name": VERSION,
        "served": True,
        "storage": False,
        "deprecated": True,
        "deprecationWarning": f"{group}/{VERSION} {kind} is deprecated; use {group}/v1 {kind}",
        "subresources": {"status": {}},
        "schema": {"openAPIV3Schema": root},
        "additionalPrinterColumns": columns,
    })  # fmt: skip
    crd["spec"]["conversion"] = {
        "strategy": "Webhook",
        "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": {"service": SERVICE}},
    }
    return crd
