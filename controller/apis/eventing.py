"""CRDs of `eventing.knative.dev`: Broker and Trigger (`v1`), EventType (`v1beta2`, the
version Knative v0.49 stores), KafkaSink (`v1alpha1`, from
knative-extensions/eventing-kafka-broker).

What Knative's webhook validates and CEL can express is a rule here: Trigger attribute
names (`^[a-z][a-z0-9]*$`), exactly one dialect per top-level `spec.filters` entry,
`spec.broker` and Broker `spec.config` immutable, broker or brokerRef required. Nested
`all`/`any`/`not` filters are kept as they come (`x-kubernetes-preserve-unknown-fields`, a
recursive schema is not possible) and CESQL syntax needs a parser: the Trigger reconciler
checks both with `kevents.eventfilter.trigger.validate` and reports `FilterInvalid`.
"""

from __future__ import annotations

from controller.apis import schema as s
from controller.apis import v1alpha1

GROUP = "eventing.knative.dev"
CATEGORIES = ["all", "knative", "eventing"]
ATTRIBUTE_NAME = "^[a-z][a-z0-9]*$"
DIALECTS = ("exact", "prefix", "suffix", "all", "any", "not", "cesql")
MAX_ATTRIBUTES = 64
"""Bounds the CEL cost of the key checks (the apiserver refuses unbounded rules)."""
MAX_FILTERS = 64


def _attribute_map(description: str, field: str) -> s.Schema:
    return {
        "maxProperties": MAX_ATTRIBUTES,
        **s.string_map(description),
        "x-kubernetes-validations": [
            s.rule(
                f"self.all(k, k.matches('{ATTRIBUTE_NAME}'))",
                f"{field} keys must start with a lowercase letter and contain only lowercase "
                "letters and digits (CloudEvents attribute names)",
            )
        ],
    }


def _single_attribute(description: str, field: str) -> s.Schema:
    """exact/prefix/suffix: one or more attributes, all of which must match (Knative's
    ValidateAttributesNames), each with a non-empty value (the matchers refuse "")."""
    out = _attribute_map(description, field)
    out["x-kubernetes-validations"] += [
        s.rule("self.size() >= 1", f"{field} must have at least one attribute"),
        s.rule("self.all(k, self[k] != '')", f"{field} values must not be empty"),
    ]
    return out


def _nested(description: str) -> s.Schema:
    return s.preserved(description)


def _filter() -> s.Schema:
    """One SubscriptionsAPIFilter (top level; nested ones are checked by the reconciler)."""
    one_of = ", ".join(f"has(self.{d})" for d in DIALECTS)
    return s.obj(
        "A filter in one dialect: exact, prefix, suffix, all, any, not or cesql.",
        {
            "exact": _single_attribute(
                "Matches when the attribute equals the value exactly.", "spec.filters[].exact"
            ),
            "prefix": _single_attribute(
                "Matches when the attribute starts with the value.", "spec.filters[].prefix"
            ),
            "suffix": _single_attribute(
                "Matches when the attribute ends with the value.", "spec.filters[].suffix"
            ),
            "all": {
                "type": "array",
                "description": "Matches when every nested filter matches.",
                "items": _nested("A nested filter."),
            },
            "any": {
                "type": "array",
                "description": "Matches when at least one nested filter matches.",
                "items": _nested("A nested filter."),
            },
            "not": _nested("Matches when the nested filter does not match."),
            "cesql": s.string("A CloudEvents SQL expression the event must satisfy."),
        },
        **{
            "x-kubernetes-validations": [
                s.rule(
                    f"[{one_of}].filter(x, x).size() == 1",
                    "each spec.filters entry must set exactly one of exact, prefix, suffix, "
                    "all, any, not, cesql",
                )
            ]
        },
    )


def broker() -> s.Schema:
    spec = s.obj(
        "The broker's configuration (channel template) and delivery options.",
        {
            "config": s.kreference(
                "Configuration of the broker implementation, e.g. the ConfigMap holding the "
                "channel template (defaulted from ConfigMap config-br-defaults); immutable."
            ),
            "delivery": s.delivery(),
        },
        **{
            "x-kubernetes-validations": [
                s.rule(
                    "!has(oldSelf.config) || (has(self.config) && self.config == oldSelf.config)",
                    "spec.config is immutable: create a new Broker to change it",
                )
            ]
        },
    )
    status = s.obj(
        "Observed state of the Broker.",
        {
            **s.duck_status_properties(),
            **s.addressable_status_properties(),
            **s.delivery_status_properties(),
            "policies": {
                "type": "array",
                "description": "EventPolicies that apply to the broker.",
                "items": s.obj(
                    "A policy reference.",
                    {"apiVersion": s.string("API version."), "name": s.string("Name.")},
                ),
            },
        },
    )
    return s.crd(
        group=GROUP,
        kind="Broker",
        plural="brokers",
        singular="broker",
        versions=["v1"],
        storage="v1",
        description="Receives events and delivers them to the subscribers of its Triggers.",
        spec=spec,
        status=status,
        columns=[
            s.url_column(),
            {
                "name": "Class",
                "type": "string",
                "description": "The broker class (eventing.knative.dev/broker.class).",
                "jsonPath": r".metadata.annotations.eventing\.knative\.dev/broker\.class",
            },
            *s.ready_columns(),
        ],
        categories=CATEGORIES,
        labels={"duck.knative.dev/addressable": "true"},
    )


def trigger() -> s.Schema:
    broker_name = s.string("Name of the Broker in the Trigger's namespace (immutable).")
    broker_name["x-kubernetes-validations"] = [
        s.rule("self == oldSelf", "spec.broker is immutable: create a new Trigger")
    ]
    spec = s.obj(
        "The broker, the filter, the subscriber and delivery options.",
        {
            "broker": broker_name,
            "brokerRef": s.kreference("Reference to the Broker (instead of broker)."),
            # Defaulted to {} (match everything), as Knative's TriggerSpec.SetDefaults: the
            # apiserver writes it even while the defaulting webhook is unavailable.
            "filter": {
                **s.obj(
                    "Legacy exact-match filter on CloudEvents attributes.",
                    {
                        "attributes": _attribute_map(
                            "Attribute name -> value; an empty value matches any non-empty value.",
                            "spec.filter.attributes",
                        )
                    },
                ),
                "default": {},
            },
            "filters": {
                "type": "array",
                "maxItems": MAX_FILTERS,
                "description": "SubscriptionsAPI filters, all of which must match; when set "
                "and non-empty, spec.filter is ignored.",
                "items": _filter(),
            },
            "subscriber": s.destination("Where matching events are delivered."),
            "delivery": s.delivery(),
        },
        required=["subscriber"],
        **{
            "x-kubernetes-validations": [
                s.rule(
                    "has(self.broker) || has(self.brokerRef)",
                    "expected exactly one, got neither: spec.broker, spec.brokerRef",
                ),
                s.rule(
                    "!has(self.broker) || !has(self.brokerRef)",
                    "expected exactly one, got both: spec.broker, spec.brokerRef",
                ),
            ]
        },
    )
    status = s.obj(
        "Observed state of the Trigger.",
        {
            **s.duck_status_properties(),
            "subscriberUri": s.string("The resolved URI of the subscriber."),
            "subscriberCACerts": s.string("CA certificates of the subscriber."),
            "subscriberAudience": s.string("OIDC audience of the subscriber."),
            **s.delivery_status_properties(),
            "auth": s.auth_status(),
        },
    )
    return s.crd(
        group=GROUP,
        kind="Trigger",
        plural="triggers",
        singular="trigger",
        versions=["v1"],
        storage="v1",
        description="Delivers the events of a Broker that match its filter to a subscriber.",
        spec=spec,
        status=status,
        columns=[
            {"name": "Broker", "type": "string", "jsonPath": ".spec.broker"},
            {"name": "Subscriber_URI", "type": "string", "jsonPath": ".status.subscriberUri"},
            *s.ready_columns(),
        ],
        categories=CATEGORIES,
        root_rules=[s.rule("has(self.spec)", "spec is required")],
    )


KAFKA_CONTENT_MODES = ("binary", "structured")
MAX_TOPIC_LENGTH = 249
"""Kafka's own limit on a topic name (`org.apache.kafka.common.internals.Topic`)."""


def kafkasink() -> s.Schema:
    """Knative's KafkaSink (`eventing.kafka-broker`'s 100-kafka-sink.yaml and its webhook's
    rules as CEL: topic, numPartitions and replicationFactor immutable, both positive)."""
    immutable = "Immutable field updated: create a new KafkaSink to change it"

    def count(description: str, field: str, fmt: str) -> s.Schema:
        return {
            "type": "integer",
            "format": fmt,
            "minimum": 1,
            "description": description,
            "x-kubernetes-validations": [s.rule("self == oldSelf", f"spec.{field}: {immutable}")],
        }

    topic = s.string(
        "Topic name to send events to.",
        minLength=1,
        maxLength=MAX_TOPIC_LENGTH,
        pattern="^[a-zA-Z0-9._-]+$",
    )
    topic["x-kubernetes-validations"] = [s.rule("self == oldSelf", f"spec.topic: {immutable}")]
    spec = s.obj(
        "Defines the desired state of the Kafka Sink.",
        {
            "topic": topic,
            "numPartitions": count(
                "Number of topic partitions. With replicationFactor, the topic is created "
                "when missing; without, the topic must exist.",
                "numPartitions",
                "int32",
            ),
            "replicationFactor": count(
                "Topic replication factor. With numPartitions, the topic is created when "
                "missing; without, the topic must exist.",
                "replicationFactor",
                "int32",
            ),
            "bootstrapServers": {
                "type": "array",
                "minItems": 1,
                "description": "host:port pairs used for establishing the initial connection "
                "to the Kafka cluster.",
                "items": {"type": "string", "minLength": 1},
            },
            "contentMode": s.string(
                "CloudEvent content mode of the Kafka records written to the topic: binary "
                "(ce_ headers, the default) or structured (a JSON envelope).",
                enum=list(KAFKA_CONTENT_MODES),
                default="binary",
            ),
            "auth": s.obj(
                "Authentication to the Kafka cluster.",
                {
                    "secret": s.obj(
                        "The Secret holding the credentials (keys protocol, sasl.mechanism, "
                        "user, password, ca.crt, user.crt, user.key).",
                        {
                            "ref": s.obj(
                                "Secret reference, in the KafkaSink's namespace.",
                                {"name": s.string("Secret name.", minLength=1)},
                                required=["name"],
                            )
                        },
                    )
                },
            ),
        },
        required=["topic", "bootstrapServers"],
        **{
            "x-kubernetes-validations": [
                s.rule(
                    f"has(self.{field}) == has(oldSelf.{field})",
                    f"spec.{field}: {immutable}",
                )
                for field in ("numPartitions", "replicationFactor")
            ]
        },
    )
    status = s.obj(
        "Represents the current state of the KafkaSink. This data may be out of date.",
        {**s.duck_status_properties(), **s.addressable_status_properties()},
    )
    return s.crd(
        group=GROUP,
        kind="KafkaSink",
        plural="kafkasinks",
        singular="kafkasink",
        versions=["v1alpha1"],
        storage="v1alpha1",
        description="Kafka Sink is Addressable: it receives events and sends them to a Kafka "
        "topic.",
        spec=spec,
        status=status,
        columns=[s.url_column(), *s.ready_columns()],
        categories=CATEGORIES,
        labels={"duck.knative.dev/addressable": "true"},
        root_rules=[s.rule("has(self.spec)", "spec is required")],
    )


def eventtype() -> s.Schema:
    """Knative's EventType at `v1beta2`: the registry entry for events of one type (and
    source) that a source sends or a broker or channel receives. Knative also serves
    `v1beta1` and `v1beta3` through its conversion webhook; kevents serves `v1beta2` only."""
    reference = s.kreference("The Broker, Channel or other Addressable the events reach.")
    reference.pop("x-kubernetes-validations")  # a reference may name a group-less kind
    spec = s.obj(
        "Describes the events of one CloudEvents type.",
        {
            "type": s.string("CloudEvents type, e.g. dev.knative.apiserver.resource.add."),
            "source": s.string("CloudEvents source of the events (a URI reference)."),
            "schema": s.string("URI of the schema of the events' data (dataschema)."),
            "schemaData": s.string("The schema itself, inline; not validated."),
            "reference": reference,
            "broker": s.string("Deprecated (v1beta1): the Broker's name; use reference."),
            "description": s.string("What the events of this type are about."),
        },
    )
    status = s.obj(
        "Observed state of the EventType: Ready when its reference exists (or has none).",
        s.duck_status_properties(),
    )
    column = {"type": "string"}
    return s.crd(
        group=GROUP,
        kind="EventType",
        plural="eventtypes",
        singular="eventtype",
        versions=["v1beta2"],
        storage="v1beta2",
        description="An entry of the event registry: events of one type a source, broker or "
        "channel carries.",
        spec=spec,
        status=status,
        columns=[
            {"name": "Type", **column, "jsonPath": ".spec.type"},
            {"name": "Source", **column, "jsonPath": ".spec.source"},
            {"name": "Schema", **column, "jsonPath": ".spec.schema"},
            {"name": "Reference Name", **column, "jsonPath": ".spec.reference.name"},
            {"name": "Reference Kind", **column, "jsonPath": ".spec.reference.kind"},
            {"name": "Description", **column, "jsonPath": ".spec.description"},
            *s.ready_columns()[1:],
        ],
        categories=CATEGORIES,
    )


ALL = {
    "300-broker.yaml": lambda: v1alpha1.served(broker(), v1alpha1.broker()),
    "300-trigger.yaml": lambda: v1alpha1.served(trigger(), v1alpha1.trigger()),
    "300-eventtype.yaml": eventtype,
    "300-kafkasink.yaml": kafkasink,
}
"""Broker and Trigger are also served at the legacy v1alpha1 (`v1alpha1.py`)."""
