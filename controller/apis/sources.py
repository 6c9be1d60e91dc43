"""CRDs of `sources.knative.dev`: ApiServerSource, PingSource, ContainerSource, SinkBinding,
GitHubSource (v1alpha1, from knative-extensions/eventing-github), KafkaSource (v1beta1, from
knative-extensions/eventing-kafka-broker)."""

from __future__ import annotations

import json

from controller.apis import schema as s

GROUP = "sources.knative.dev"
SOURCE_LABELS = {"duck.knative.dev/source": "true", "eventing.knative.dev/source": "true"}
SOURCE_CATEGORIES = ["all", "knative", "sources"]


def _event_types(*types: str) -> dict[str, str]:
    lines = ",\n".join("  " + json.dumps({"type": t}) for t in types)
    return {"registry.knative.dev/eventTypes": "[\n" + lines + "\n]\n"}


def _source_spec(description: str, required: list[str], **properties: s.Schema) -> s.Schema:
    """A source spec: the kind's own fields plus the inlined duckv1.SourceSpec."""
    return s.obj(
        description,
        {
            **properties,
            "sink": s.destination("Where events are sent: a ref to an Addressable, or a URI."),
            "ceOverrides": s.ce_overrides(),
        },
        required=[*required, "sink"],
    )


def _columns(*middle: s.Schema) -> list[s.Schema]:
    return [s.sink_column(), *middle, *s.ready_columns()]


def _api_version_kind(description: str) -> s.Schema:
    return s.obj(
        description,
        {
            "apiVersion": s.string(
                "API version ('version' or 'group/version'), e.g. v1 or apps/v1.",
                pattern=s.GROUP_VERSION,
            ),
            "kind": s.string("Kind, e.g. Pod or Deployment.", pattern="\\S"),
        },
        required=["apiVersion", "kind"],
    )


def apiserversource() -> s.Schema:
    resource = _api_version_kind("A kind of object to watch.")
    resource["properties"]["selector"] = s.label_selector(
        "Restricts the watch to objects with these labels."
    )
    spec = _source_spec(
        "Which Kubernetes objects to watch and where to send their events.",
        ["resources"],
        resources={"type": "array", "description": "The kinds to watch.", "items": resource},
        owner=_api_version_kind(
            "Only send events for objects with an owner reference of this apiVersion/kind."
        ),
        # Reference or Resource: refused by the admission webhook (kevents.validation), not
        # by an enum here, so the refusal has Knative's words (`invalid value: X: spec.mode`).
        mode=s.string(
            "Reference sends only a reference to the object; Resource sends the whole object.",
            default="Reference",
        ),
        serviceAccountName=s.string(
            "The ServiceAccount the adapter runs as; it needs get, list and watch on the "
            "resources.",
            default="default",
        ),
        namespaceSelector=s.label_selector(
            "Watch every namespace matching this selector ({} = all namespaces) instead of "
            "only the source's own namespace."
        ),
        filters={
            "type": "array",
            "description": "CloudEvents Subscriptions API filters (feature "
            "new-apiserversource-filters, disabled).",
            "items": s.preserved("One filter expression."),
        },
    )
    spec["x-kubernetes-validations"] = [
        s.rule(
            "size(self.resources) > 0",
            "resources must list at least one {apiVersion, kind} to watch",
            ".resources",
        ),
        s.rule(
            "!has(self.filters) || size(self.filters) == 0",
            "filters is not empty but the new-apiserversource-filters feature is disabled",
            ".filters",
        ),
    ]
    return s.crd(
        group=GROUP,
        kind="ApiServerSource",
        plural="apiserversources",
        singular="apiserversource",
        versions=["v1"],
        storage="v1",
        description="Sends Kubernetes API server events (add, update, delete of watched "
        "objects) to a sink as CloudEvents.",
        spec=spec,
        status=s.source_status(
            "Observed state of the ApiServerSource.",
            namespaces=s.string_list("The namespaces being watched."),
        ),
        columns=_columns(),
        categories=SOURCE_CATEGORIES,
        labels=SOURCE_LABELS,
        annotations=_event_types(
            *(
                f"dev.knative.apiserver.{mode}.{verb}"
                for mode in ("resource", "ref")
                for verb in ("add", "delete", "update")
            )
        ),
        root_rules=[s.rule("has(self.spec)", "spec is required")],
    )


def pingsource() -> s.Schema:
    spec = _source_spec(
        "A cron schedule and the data sent at each tick.",
        [],
        schedule=s.string(
            "Cron schedule (optional seconds field, 5 fields, or @hourly/@daily...).",
            default="* * * * *",
            **{
                "x-kubernetes-validations": [
                    s.rule(
                        "!self.startsWith('@every')",
                        "@every schedules are not supported: use a cron expression such as "
                        "'*/5 * * * *'",
                    )
                ]
            },
        ),
        timezone=s.string("IANA time zone of the schedule, e.g. Europe/Madrid (default UTC)."),
        contentType=s.string("Media type of data, e.g. application/json."),
        data=s.string("Event data as a string."),
        dataBase64=s.string(
            "Event data as standard base64; sent as binary.",
            pattern="^[A-Za-z0-9+/]*={0,2}$",
            **{
                "x-kubernetes-validations": [
                    s.rule(
                        "size(self) % 4 == 0",
                        "dataBase64 must be standard base64 (length a multiple of 4)",
                    )
                ]
            },
        ),
    )
    spec["x-kubernetes-validations"] = [
        s.rule(
            "!(has(self.data) && self.data != '' && has(self.dataBase64) && self.dataBase64 != '')",
            "expected exactly one, got both: data, dataBase64",
        )
    ]
    return s.crd(
        group=GROUP,
        kind="PingSource",
        plural="pingsources",
        singular="pingsource",
        versions=["v1beta2", "v1"],
        storage="v1",
        description="Sends a CloudEvent with fixed data to a sink on a cron schedule.",
        spec=spec,
        status=s.source_status("Observed state of the PingSource."),
        columns=_columns(
            {"name": "Schedule", "type": "string", "jsonPath": ".spec.schedule"},
        ),
        categories=SOURCE_CATEGORIES,
        labels=SOURCE_LABELS,
        annotations=_event_types("dev.knative.sources.ping"),
        root_rules=[s.rule("has(self.spec)", "spec is required")],
    )


def containersource() -> s.Schema:
    pod_spec = s.preserved("The pod spec (corev1.PodSpec).")
    pod_spec["properties"] = {
        "containers": {
            "type": "array",
            "description": "The containers; each gets K_SINK and K_CE_OVERRIDES.",
            "items": s.preserved("A container (corev1.Container)."),
        }
    }
    template = s.preserved("The pod template the source runs (corev1.PodTemplateSpec).")
    template["properties"] = {"metadata": s.preserved("Pod metadata."), "spec": pod_spec}
    spec = _source_spec("The pod template to run and its sink.", ["template"], template=template)
    spec["x-kubernetes-validations"] = [
        s.rule(
            "has(self.template.spec) && has(self.template.spec.containers) "
            "&& size(self.template.spec.containers) > 0",
            "template.spec.containers must list at least one container",
            ".template",
        )
    ]
    return s.crd(
        group=GROUP,
        kind="ContainerSource",
        plural="containersources",
        singular="containersource",
        versions=["v1"],
        storage="v1",
        description="Runs a user container that sends events to the sink it finds in K_SINK.",
        spec=spec,
        status=s.source_status("Observed state of the ContainerSource."),
        columns=_columns(),
        categories=SOURCE_CATEGORIES,
        labels=SOURCE_LABELS,
        root_rules=[s.rule("has(self.spec)", "spec is required")],
    )


def sinkbinding() -> s.Schema:
    subject = s.obj(
        "The PodSpecable object(s) the sink is injected into.",
        {
            "apiVersion": s.string("API version of the subject, e.g. apps/v1."),
            "kind": s.string("Kind of the subject, e.g. Deployment."),
            "namespace": s.string("Namespace of the subject (the binding's namespace)."),
            "name": s.string("Name of the subject; exclusive with selector."),
            "selector": s.label_selector("Selects subjects by label; exclusive with name."),
        },
        required=["apiVersion", "kind"],
        **{
            "x-kubernetes-validations": [
                s.rule(
                    "has(self.name) != has(self.selector)",
                    "expected exactly one of subject.name or subject.selector",
                )
            ]
        },
    )
    return s.crd(
        group=GROUP,
        kind="SinkBinding",
        plural="sinkbindings",
        singular="sinkbinding",
        versions=["v1"],
        storage="v1",
        description="Injects K_SINK and K_CE_OVERRIDES into the pods of a PodSpecable subject.",
        spec=_source_spec("The subject and its sink.", ["subject"], subject=subject),
        status=s.source_status(
            "Observed state of the SinkBinding.",
            oidcTokenSecretName=s.string("Secret holding the OIDC token of the binding."),
        ),
        columns=_columns(),
        categories=[*SOURCE_CATEGORIES, "bindings"],
        labels={**SOURCE_LABELS, "duck.knative.dev/binding": "true"},
        root_rules=[s.rule("has(self.spec)", "spec is required")],
    )


GITHUB_EVENT_TYPES = (
    "check_run check_suite commit_comment create delete deployment deployment_status fork "
    "gollum installation integration_installation issue_comment issues label member "
    "membership milestone organization org_block page_build ping project_card project_column "
    "project public pull_request pull_request_review pull_request_review_comment push release "
    "repository status team team_add watch"
).split()


def _secret_ref(description: str) -> s.Schema:
    return s.obj(
        description,
        {
            "secretKeyRef": s.obj(
                "A key of a Secret in the source's namespace.",
                {"name": s.string("Secret name."), "key": s.string("Key in the Secret.")},
                required=["name", "key"],
            )
        },
        required=["secretKeyRef"],
    )


def githubsource() -> s.Schema:
    spec = _source_spec(
        "The repository (or organization), the GitHub events to receive and the secrets.",
        ["ownerAndRepository", "eventTypes", "accessToken", "secretToken"],
        ownerAndRepository=s.string(
            "owner/repository, or just owner for an organization-wide webhook.",
            pattern="^[^/ ]+(/[^/ ]+)?$",
        ),
        eventTypes={
            **s.string_list("GitHub webhook event names, e.g. push, pull_request, issues."),
            "x-kubernetes-validations": [
                s.rule("size(self) > 0", "eventTypes must list at least one GitHub event")
            ],
        },
        accessToken=_secret_ref("Personal access token used to create the webhook."),
        secretToken=_secret_ref("Secret used to verify the webhook's HMAC signature."),
        githubAPIURL=s.string("GitHub Enterprise API URL; empty means api.github.com."),
        secure={"type": "boolean", "description": "Whether the webhook URL uses https."},
        serviceAccountName=s.string("ServiceAccount the receive adapter runs as."),
    )
    return s.crd(
        group=GROUP,
        kind="GitHubSource",
        plural="githubsources",
        singular="githubsource",
        versions=["v1alpha1"],
        storage="v1alpha1",
        description="Receives GitHub webhooks and sends them to a sink as CloudEvents.",
        spec=spec,
        status=s.source_status(
            "Observed state of the GitHubSource.",
            webhookIDKey=s.string("ID of the webhook created on GitHub."),
        ),
        columns=_columns(),
        categories=["all", "knative", "eventing", "sources"],
        labels=SOURCE_LABELS,
        annotations=_event_types(*(f"dev.knative.source.github.{t}" for t in GITHUB_EVENT_TYPES)),
        root_rules=[s.rule("has(self.spec)", "spec is required")],
    )


KAFKA_KEY_TYPES = ["string", "int", "float", "byte-array"]
"""Values of the label `kafkasources.sources.knative.dev/key-type` (Knative's)."""


def _secret_value(description: str) -> s.Schema:
    """bindings/v1beta1 SecretValueFromSource: an optional secretKeyRef."""
    return s.obj(
        description,
        {
            "secretKeyRef": s.obj(
                "A key of a Secret in the source's namespace.",
                {
                    "name": s.string("Secret name."),
                    "key": s.string("Key in the Secret."),
                    "optional": {"type": "boolean", "description": "Unused (Kubernetes' type)."},
                },
                required=["name", "key"],
            )
        },
    )


def _kafka_net() -> s.Schema:
    """bindings/v1beta1 KafkaNetSpec: SASL and TLS, every value from a Secret key."""
    return s.obj(
        "How the consumer authenticates to Kafka and encrypts the connection.",
        {
            "sasl": s.obj(
                "SASL authentication.",
                {
                    "enable": {"type": "boolean", "description": "Authenticate with SASL."},
                    "user": _secret_value("The SASL user name."),
                    "password": _secret_value("The SASL password."),
                    "type": _secret_value(
                        "The SASL mechanism: PLAIN (default), SCRAM-SHA-256 or SCRAM-SHA-512."
                    ),
                },
            ),
            "tls": s.obj(
                "TLS to the brokers.",
                {
                    "enable": {"type": "boolean", "description": "Connect with TLS."},
                    "cert": _secret_value("The client certificate (PEM)."),
                    "key": _secret_value("The client key (PEM)."),
                    "caCert": _secret_value("The CA certificate(s) of the brokers (PEM)."),
                },
            ),
        },
    )


def kafkasource() -> s.Schema:
    nonempty = {
        "x-kubernetes-validations": [s.rule("size(self) > 0", "must list at least one entry")]
    }
    spec = _source_spec(
        "The topics to read, the Kafka cluster and its credentials, and the delivery options.",
        ["topics", "bootstrapServers"],
        consumers={
            "type": "integer",
            "format": "int32",
            "minimum": 0,
            "default": 1,
            "description": "Consumers (adapter replicas) in the consumer group; partitions are "
            "spread across them. Defaults to 1.",
        },
        bootstrapServers={
            **s.string_list("Kafka bootstrap servers, host:port (one or comma-separated)."),
            **nonempty,
        },
        net=_kafka_net(),
        topics={**s.string_list("The topics to consume."), **nonempty},
        consumerGroup=s.string(
            "The consumer group id; defaults to knative-kafka-source-<uuid>. Immutable."
        ),
        initialOffset=s.string(
            "Where a consumer group without committed offsets starts: earliest or latest.",
            enum=["earliest", "latest"],
            default="latest",
        ),
        delivery=s.delivery(),
        ordering=s.string(
            "ordered: one event in flight per partition, in offset order; unordered: events of "
            "a partition delivered concurrently.",
            enum=["ordered", "unordered"],
            default="ordered",
        ),
    )
    out = s.crd(
        group=GROUP,
        kind="KafkaSource",
        plural="kafkasources",
        singular="kafkasource",
        versions=["v1beta1"],
        storage="v1beta1",
        description="Reads records of Kafka topics and sends them to a sink as CloudEvents.",
        spec=spec,
        status=s.source_status(
            "Observed state of the KafkaSource.",
            consumers={
                "type": "integer",
                "format": "int32",
                "description": "Consumers actually running in the consumer group.",
            },
            selector=s.string("Label selector of the consumers' pods (scale subresource)."),
            claims=s.string("Partitions claimed by the consumers."),
        ),
        columns=[
            {"name": "Topics", "type": "string", "jsonPath": ".spec.topics"},
            {"name": "BootstrapServers", "type": "string", "jsonPath": ".spec.bootstrapServers"},
            *s.ready_columns()[1:],
            s.ready_columns()[0],
        ],
        categories=["all", "knative", "eventing", "sources"],
        labels=SOURCE_LABELS,
        annotations=_event_types("dev.knative.kafka.event"),
        root_rules=[s.rule("has(self.spec)", "spec is required")],
    )
    for version in out["spec"]["versions"]:
        version["subresources"]["scale"] = {
            "specReplicasPath": ".spec.consumers",
            "statusReplicasPath": ".status.consumers",
            "labelSelectorPath": ".status.selector",
        }
    return out


ALL = {
    "300-apiserversource.yaml": apiserversource,
    "300-pingsource.yaml": pingsource,
    "300-containersource.yaml": containersource,
    "300-sinkbinding.yaml": sinkbinding,
    "300-githubsource.yaml": githubsource,
    "300-kafkasource.yaml": kafkasource,
}
