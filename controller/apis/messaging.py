"""CRDs of `messaging.knative.dev`: InMemoryChannel, Channel, Subscription (v1) and
KafkaChannel (v1beta1)."""

from __future__ import annotations

from controller.apis import schema as s
from controller.apis import v1alpha1

GROUP = "messaging.knative.dev"
CHANNEL_LABELS = {
    "messaging.knative.dev/subscribable": "true",
    "duck.knative.dev/addressable": "true",
}
CHANNEL_CATEGORIES = ["all", "knative", "messaging", "channel"]


def _subscriber_spec() -> s.Schema:
    """eventingduckv1.SubscriberSpec: one resolved subscription as the channel sees it."""
    return s.obj(
        "A subscriber of the channel, resolved by its Subscription.",
        {
            "uid": s.string("UID of the Subscription."),
            "generation": {
                "type": "integer",
                "format": "int64",
                "description": "Generation of the Subscription this entry was made from.",
            },
            "name": s.string("Name of the Subscription."),
            "subscriberUri": s.string("Where events are delivered."),
            "subscriberCACerts": s.string("CA certificates of the subscriber."),
            "subscriberAudience": s.string("OIDC audience of the subscriber."),
            "replyUri": s.string("Where the subscriber's replies are sent."),
            "replyCACerts": s.string("CA certificates of the reply destination."),
            "replyAudience": s.string("OIDC audience of the reply destination."),
            "delivery": s.delivery(validated=False),
        },
    )


def _channelable_spec(description: str, **extra: s.Schema) -> s.Schema:
    return s.obj(
        description,
        {
            **extra,
            "subscribers": {
                "type": "array",
                "description": "The subscribers events are fanned out to.",
                "items": _subscriber_spec(),
            },
            "delivery": s.delivery(),
        },
    )


def _channelable_status(description: str, **extra: s.Schema) -> s.Schema:
    return s.obj(
        description,
        {
            **s.duck_status_properties(),
            **s.addressable_status_properties(),
            **s.delivery_status_properties(),
            "subscribers": {
                "type": "array",
                "description": "Readiness of each subscriber.",
                "items": s.obj(
                    "Status of one subscriber.",
                    {
                        "uid": s.string("UID of the Subscription."),
                        "observedGeneration": {"type": "integer", "format": "int64"},
                        "ready": s.string("True, False or Unknown."),
                        "message": s.string("Why the subscriber is not ready."),
                    },
                ),
            },
            "policies": {
                "type": "array",
                "description": "EventPolicies that apply to the channel.",
                "items": s.obj(
                    "A policy reference.",
                    {"apiVersion": s.string("API version."), "name": s.string("Name.")},
                ),
            },
            "auth": s.auth_status(),
            **extra,
        },
    )


def inmemorychannel() -> s.Schema:
    return s.crd(
        group=GROUP,
        kind="InMemoryChannel",
        plural="inmemorychannels",
        singular="inmemorychannel",
        versions=["v1"],
        storage="v1",
        description="A best-effort channel that fans events out to its subscribers in memory.",
        spec=_channelable_spec("Subscribers and default delivery options."),
        status=_channelable_status("Observed state of the InMemoryChannel."),
        columns=[s.url_column(), *s.ready_columns()],
        categories=CHANNEL_CATEGORIES,
        short_names=["imc"],
        labels=CHANNEL_LABELS,
    )


def kafkachannel() -> s.Schema:
    """Knative's KafkaChannel (eventing-kafka-broker `messaging.knative.dev/v1beta1`)."""
    return s.crd(
        group=GROUP,
        kind="KafkaChannel",
        plural="kafkachannels",
        singular="kafkachannel",
        versions=["v1beta1"],
        storage="v1beta1",
        description="A channel whose events are stored in a Kafka topic.",
        spec=_channelable_spec(
            "The topic's shape, subscribers and default delivery options.",
            numPartitions={
                "type": "integer",
                "format": "int32",
                "default": 1,
                "minimum": 1,
                "description": "Partitions of the channel's topic (immutable once created).",
            },
            replicationFactor={
                "type": "integer",
                "format": "int16",
                "default": 1,
                "minimum": 1,
                "description": "Replicas of each partition of the channel's topic.",
            },
            retentionDuration=s.string(
                "How long events are kept in the topic (ISO 8601 duration).", default="PT168H"
            ),
        ),
        status=_channelable_status("Observed state of the KafkaChannel."),
        columns=[s.url_column(), *s.ready_columns()],
        categories=CHANNEL_CATEGORIES,
        short_names=["kc"],
        labels=CHANNEL_LABELS,
    )


def channel() -> s.Schema:
    template = s.obj(
        "The kind of backing channel to create (default from ConfigMap default-ch-webhook).",
        {
            "apiVersion": s.string("API version of the backing channel kind."),
            "kind": s.string("Kind of the backing channel, e.g. InMemoryChannel."),
            "spec": s.preserved("Spec of the backing channel."),
        },
        required=["apiVersion", "kind"],
    )
    backing = s.obj(
        "The backing channel.",
        {
            "apiVersion": s.string("API version."),
            "kind": s.string("Kind."),
            "name": s.string("Name."),
            "namespace": s.string("Namespace."),
        },
    )
    return s.crd(
        group=GROUP,
        kind="Channel",
        plural="channels",
        singular="channel",
        versions=["v1"],
        storage="v1",
        description="A channel backed by a concrete channel implementation (channelTemplate).",
        spec=_channelable_spec(
            "The backing channel template, subscribers and delivery options.",
            channelTemplate=template,
        ),
        status=_channelable_status("Observed state of the Channel.", channel=backing),
        columns=[s.url_column(), *s.ready_columns()],
        categories=CHANNEL_CATEGORIES,
        short_names=["ch"],
        labels=CHANNEL_LABELS,
    )


def subscription() -> s.Schema:
    channel_ref = s.kreference("The channel to subscribe to (immutable).")
    channel_ref["x-kubernetes-validations"].append(
        s.rule("self == oldSelf", "spec.channel is immutable: create a new Subscription")
    )
    spec = s.obj(
        "The channel, the subscriber, where replies go and delivery options.",
        {
            "channel": channel_ref,
            "subscriber": s.destination("Where events from the channel are delivered."),
            "reply": s.destination("Where the subscriber's responses are sent."),
            "delivery": s.delivery(),
        },
        required=["channel"],
        **{
            "x-kubernetes-validations": [
                s.rule(
                    "has(self.subscriber) || has(self.reply)",
                    "expected at least one, got none: reply, subscriber",
                )
            ]
        },
    )
    physical = s.obj(
        "The resolved URIs of subscriber, reply and dead letter sink.",
        {
            "subscriberUri": s.string("Resolved subscriber URI."),
            "subscriberCACerts": s.string("CA certificates of the subscriber."),
            "subscriberAudience": s.string("OIDC audience of the subscriber."),
            "replyUri": s.string("Resolved reply URI."),
            "replyCACerts": s.string("CA certificates of the reply."),
            "replyAudience": s.string("OIDC audience of the reply."),
            **s.delivery_status_properties(),
        },
    )
    return s.crd(
        group=GROUP,
        kind="Subscription",
        plural="subscriptions",
        singular="subscription",
        versions=["v1"],
        storage="v1",
        description="Routes events from a channel to a subscriber and its reply to a destination.",
        spec=spec,
        status=s.obj(
            "Observed state of the Subscription.",
            {
                **s.duck_status_properties(),
                "physicalSubscription": physical,
                "auth": s.auth_status(),
            },
        ),
        columns=s.ready_columns(),
        categories=["all", "knative", "messaging"],
        short_names=["sub"],
        root_rules=[s.rule("has(self.spec)", "spec is required")],
    )


ALL = {
    "300-inmemorychannel.yaml": lambda: v1alpha1.served(
        inmemorychannel(), v1alpha1.channelable(template=False)
    ),
    "300-channel.yaml": lambda: v1alpha1.served(channel(), v1alpha1.channelable(template=True)),
    "300-subscription.yaml": lambda: v1alpha1.served(subscription(), v1alpha1.subscription()),
    "300-kafkachannel.yaml": kafkachannel,
}
"""Each also served at the legacy v1alpha1 (`v1alpha1.py`)."""
