"""CRDs of `flows.knative.dev/v1`: Sequence and Parallel.

Fields follow knative/eventing `pkg/apis/flows/v1` (`sequence_types.go`,
`parallel_types.go`); the columns are Knative's (URL, Age, Ready, Reason); categories
`all`, `knative`, `flows`, so `kubectl get flows` lists both; the CRDs carry
`duck.knative.dev/addressable: "true"` like Knative's, as both are Addressable.

Destinations inside `steps[]` and `branches[]` carry no CEL rules (the apiserver's cost
budget refuses them inside an unbounded list, and Knative bounds neither list): the
admission webhook and the reconciler judge them with `kevents.validation` instead, which
says the same as the top-level `reply`'s CEL.
"""

from __future__ import annotations

from controller.apis import schema as s

GROUP = "flows.knative.dev"
CATEGORIES = ["all", "knative", "flows"]
LABELS = {"duck.knative.dev/addressable": "true"}


def _channel_template() -> s.Schema:
    """messagingv1.ChannelTemplateSpec (defaulted from ConfigMap default-ch-webhook)."""
    return s.obj(
        "Which channel kind to create for the flow's channels; defaults to the namespace's "
        "(or the cluster's) default channel from ConfigMap default-ch-webhook, else "
        "InMemoryChannel.",
        {
            "apiVersion": s.string("API version of the channel kind."),
            "kind": s.string("Kind of the channel, e.g. InMemoryChannel."),
            "spec": s.preserved("Spec of each channel created."),
        },
        required=["apiVersion", "kind"],
    )


def _object_reference() -> s.Schema:
    """corev1.ObjectReference as Knative's flow statuses use it."""
    return s.obj(
        "The object this status is about.",
        {
            "apiVersion": s.string("API version."),
            "kind": s.string("Kind."),
            "name": s.string("Name."),
            "namespace": s.string("Namespace."),
        },
    )


def _child_status(field: str, description: str) -> s.Schema:
    """{channel|subscription: ObjectReference, ready: Condition}."""
    ready = s.conditions()["items"]
    return s.obj(description, {field: _object_reference(), "ready": ready})


def _status(description: str, **extra: s.Schema) -> s.Schema:
    return s.obj(
        description,
        {
            **s.duck_status_properties(),
            **s.addressable_status_properties(),
            "auth": s.auth_status(),
            **extra,
        },
    )


def sequence() -> s.Schema:
    step = s.destination("One step: a subscriber receiving the event.", validated=False)
    step["properties"]["delivery"] = s.delivery(validated=False)
    step["description"] = (
        "A step: where the event is sent (ref or uri) and its own delivery options; its "
        "reply goes to the next step."
    )
    spec = s.obj(
        "The steps, the channel kind and where the last step's reply goes.",
        {
            "steps": {
                "type": "array",
                "description": "The Destinations called in order; each one's reply feeds the next.",
                "items": step,
                "minItems": 1,
            },
            "channelTemplate": _channel_template(),
            "reply": s.destination("Where the reply of the last step is sent."),
        },
        required=["steps"],
    )
    return s.crd(
        group=GROUP,
        kind="Sequence",
        plural="sequences",
        singular="sequence",
        versions=["v1"],
        storage="v1",
        description="Defines a sequence of subscribers wired in series through channels and "
        "subscriptions.",
        spec=spec,
        status=_status(
            "Observed state of the Sequence.",
            subscriptionStatuses={
                "type": "array",
                "description": "The Subscription of each step, in the order of spec.steps.",
                "items": _child_status("subscription", "A step's Subscription and its Ready."),
            },
            channelStatuses={
                "type": "array",
                "description": "The channel in front of each step, in the order of spec.steps.",
                "items": _child_status("channel", "A step's channel and its Ready."),
            },
        ),
        columns=[s.url_column(), *s.ready_columns()],
        categories=CATEGORIES,
        labels=LABELS,
        root_rules=[s.rule("has(self.spec)", "spec is required")],
    )


def parallel() -> s.Schema:
    branch = s.obj(
        "A branch: an optional filter, the subscriber, where its reply goes, its delivery.",
        {
            "filter": s.destination(
                "Called first: answering with the event (2xx and the event) lets it into the "
                "branch; answering without an event keeps it out. Absent: every event enters.",
                validated=False,
            ),
            "subscriber": s.destination(
                "Receives the events that pass the filter.", validated=False
            ),
            "reply": s.destination(
                "Where the subscriber's reply goes; absent: the Parallel's reply.",
                validated=False,
            ),
            "delivery": s.delivery(validated=False),
        },
        required=["subscriber"],
    )
    spec = s.obj(
        "The branches, the channel kind and the default reply.",
        {
            "branches": {
                "type": "array",
                "description": "Filter/subscriber pairs; every event is offered to each one.",
                "items": branch,
                "minItems": 1,
            },
            "channelTemplate": _channel_template(),
            "reply": s.destination("Where a branch's reply goes when the branch has none."),
        },
        required=["branches"],
    )
    channel_status = _child_status("channel", "A channel and its Ready.")
    subscription_status = _child_status("subscription", "A Subscription and its Ready.")
    return s.crd(
        group=GROUP,
        kind="Parallel",
        plural="parallels",
        singular="parallel",
        versions=["v1"],
        storage="v1",
        description="Defines conditional branches, each a filter and a subscriber, fed from one "
        "channel.",
        spec=spec,
        status=_status(
            "Observed state of the Parallel.",
            ingressChannelStatus=channel_status,
            branchStatuses={
                "type": "array",
                "description": "Each branch's channel and Subscriptions, in the order of "
                "spec.branches.",
                "items": s.obj(
                    "One branch.",
                    {
                        "filterSubscriptionStatus": subscription_status,
                        "filterChannelStatus": channel_status,
                        "subscriberSubscriptionStatus": subscription_status,
                    },
                ),
            },
        ),
        columns=[s.url_column(), *s.ready_columns()],
        categories=CATEGORIES,
        labels=LABELS,
        root_rules=[s.rule("has(self.spec)", "spec is required")],
    )


ALL = {
    "300-sequence.yaml": sequence,
    "300-parallel.yaml": parallel,
}
