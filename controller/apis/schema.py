"""Building blocks of the structural OpenAPI v3 schemas shared by every Knative kind.

Each function returns a fresh dict (callers may extend it). Field names, defaults and the
rules in `x-kubernetes-validations` follow Knative's Go types and webhook validation
(`knative.dev/pkg/apis/duck/v1`, `knative.dev/eventing/pkg/apis/duck/v1`); the messages are
ours and name the field and the fix.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

# An absolute URI has a scheme ("http:", "https:", "kafka:" ...), RFC 3986 section 3.1.
ABSOLUTE_URI = "^[a-zA-Z][a-zA-Z0-9+.-]*:"
# ...and, for a sink, an authority (host) after the scheme.
ABSOLUTE_URI_WITH_HOST = "^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]+"
# Bounds the cost of the CEL rules that inspect a URI (the apiserver refuses unbounded ones).
URI_MAX_LENGTH = 8192
# "v1" or "group/v1"; Kubernetes' schema.ParseGroupVersion accepts at most one slash.
GROUP_VERSION = "^([^/]+/)?[^/]+$"
# An ISO-8601 duration as Knative's DeliverySpec uses it ("PT0.2S", "P1DT2H", "-PT1S").
_NUM = "[0-9]+([.,][0-9]+)?"
ISO_DURATION = f"^-?P({_NUM}Y)?({_NUM}M)?({_NUM}W)?({_NUM}D)?(T({_NUM}H)?({_NUM}M)?({_NUM}S)?)?$"


def rule(expression: str, message: str, field_path: str | None = None) -> dict[str, str]:
    """One CEL validation rule with a readable message."""
    out = {"rule": expression, "message": message}
    if field_path is not None:
        out["fieldPath"] = field_path
    return out


def string(description: str, **extra: Any) -> Schema:
    return {"type": "string", "description": description, **extra}


def string_map(description: str) -> Schema:
    return {
        "type": "object",
        "description": description,
        "additionalProperties": {"type": "string"},
    }


def string_list(description: str) -> Schema:
    return {"type": "array", "description": description, "items": {"type": "string"}}


def obj(description: str, properties: Schema, **extra: Any) -> Schema:
    return {"type": "object", "description": description, "properties": properties, **extra}


def preserved(description: str) -> Schema:
    """An object whose content the apiserver keeps as is (Knative does this for PodTemplateSpec)."""
    return {
        "type": "object",
        "description": description,
        "x-kubernetes-preserve-unknown-fields": True,
    }


def duration(description: str, field: str) -> Schema:
    return string(
        description,
        maxLength=64,
        **{
            "x-kubernetes-validations": [
                rule(
                    f"self.matches('{ISO_DURATION}') && self != 'P' && self != '-P' "
                    "&& !self.endsWith('T')",
                    f"{field} must be an ISO-8601 duration such as PT0.2S or PT10S",
                )
            ]
        },
    )


def kreference(description: str) -> Schema:
    """duckv1.KReference: a typed reference to an object, resolved by the controller."""
    return obj(
        description,
        {
            "apiVersion": string(
                "API version of the referent, e.g. v1 or messaging.knative.dev/v1.",
                pattern=GROUP_VERSION,
            ),
            "kind": string("Kind of the referent, e.g. Service or InMemoryChannel."),
            "name": string("Name of the referent."),
            "namespace": string(
                "Namespace of the referent; defaults to the namespace of the object holding "
                "the reference."
            ),
            "group": string("API group of the referent (instead of apiVersion; feature-gated)."),
            "address": string("Name of one of the referent's addresses (status.addresses[].name)."),
        },
        required=["kind", "name"],
        **{
            "x-kubernetes-validations": [
                rule(
                    "has(self.apiVersion) || has(self.group)",
                    "ref.apiVersion is required (e.g. v1 for a Service)",
                ),
            ]
        },
    )


def destination(description: str, *, validated: bool = True) -> Schema:
    """duckv1.Destination: ref to an Addressable, an absolute URI, or ref + relative URI.

    `validated=False` leaves out the CEL rules, for copies the controller writes itself
    (inside unbounded lists, where the apiserver's CEL cost budget would refuse them).
    """
    out = obj(
        description,
        {
            "ref": kreference("Ref points to an Addressable (or a core Service)."),
            "uri": string(
                "An absolute URL (scheme and host) pointing to the target, or a URI relative "
                "to the address of ref.",
                maxLength=URI_MAX_LENGTH,
            ),
            "CACerts": string("PEM-encoded CA certificates used to verify the destination's TLS."),
            "audience": string("OIDC audience of the destination."),
        },
        **{
            "x-kubernetes-validations": [
                rule(
                    "has(self.ref) || has(self.uri)",
                    "expected at least one, got none: ref, uri (give a ref to an Addressable "
                    "or Service, or an absolute uri)",
                ),
                rule(
                    "!has(self.ref) || !has(self.uri) || !self.uri.matches('" + ABSOLUTE_URI + "')",
                    "an absolute uri is not allowed together with ref: use a relative uri "
                    "(resolved against the ref's address) or drop ref",
                ),
                rule(
                    "has(self.ref) || !has(self.uri) || self.uri.matches('"
                    + ABSOLUTE_URI_WITH_HOST
                    + "')",
                    "uri must be an absolute URL with a scheme and a host (e.g. "
                    "http://sink.default.svc.cluster.local) when ref is not set",
                ),
            ]
        },
    )
    if not validated:
        out.pop("x-kubernetes-validations")
        out["properties"]["ref"].pop("x-kubernetes-validations")
    return out


def ce_overrides() -> Schema:
    """duckv1.CloudEventOverrides: extensions set on every event the source sends."""
    return obj(
        "Defines overrides to control the output format and modifications of the event "
        "sent to the sink.",
        {
            "extensions": {
                "maxProperties": 64,
                **string_map(
                    "Attributes added to or overridden on every outbound event; keys are "
                    "CloudEvents extension names."
                ),
                "x-kubernetes-validations": [
                    rule(
                        "self.all(k, k.matches('^[a-zA-Z0-9]+$'))",
                        "ceOverrides.extensions keys must be non-empty and contain only ASCII "
                        "letters and digits (CloudEvents extension names)",
                    )
                ],
            }
        },
    )


def label_selector(description: str) -> Schema:
    """metav1.LabelSelector."""
    return obj(
        description,
        {
            "matchLabels": string_map("{key: value} pairs, ANDed; same as an In expression."),
            "matchExpressions": {
                "type": "array",
                "description": "Label selector requirements, ANDed.",
                "items": obj(
                    "A label selector requirement.",
                    {
                        "key": string("The label key the selector applies to."),
                        "operator": string(
                            "How the key relates to the values.",
                            enum=["In", "NotIn", "Exists", "DoesNotExist"],
                        ),
                        "values": string_list(
                            "Values for In and NotIn (non-empty); empty for Exists and "
                            "DoesNotExist."
                        ),
                    },
                    required=["key", "operator"],
                    **{
                        "x-kubernetes-validations": [
                            rule(
                                "self.operator in ['Exists', 'DoesNotExist'] "
                                "? !has(self.values) || size(self.values) == 0 "
                                ": has(self.values) && size(self.values) > 0",
                                "values must be non-empty for In and NotIn and empty for "
                                "Exists and DoesNotExist",
                            )
                        ]
                    },
                ),
            },
        },
    )


def delivery(*, validated: bool = True) -> Schema:
    """eventingduckv1.DeliverySpec: retries, backoff and dead letter sink.

    `validated=False`: the same fields without CEL rules (see `destination`).
    """
    out = obj(
        "Delivery options: retries, backoff, timeout and dead letter sink.",
        {
            "deadLetterSink": destination(
                "Where events go after all retries failed; absent means they are dropped.",
                validated=validated,
            ),
            "retry": {
                "type": "integer",
                "format": "int32",
                "description": "Additional attempts after the first one (total = 1 + retry).",
                "x-kubernetes-validations": [
                    rule("self >= 0", "delivery.retry must be greater than or equal to 0")
                ],
            },
            "backoffPolicy": string(
                "Backoff between retries: linear (delay * n) or exponential (delay * 2^n).",
                enum=["linear", "exponential"],
            ),
            "backoffDelay": duration(
                "Base delay between retries (ISO-8601 duration, e.g. PT0.2S).",
                "delivery.backoffDelay",
            ),
            "timeout": duration(
                "Per-attempt request timeout (ISO-8601 duration, e.g. PT10S).", "delivery.timeout"
            ),
            "retryAfterMax": duration(
                "Cap for honouring Retry-After on 429/503 (ISO-8601 duration).",
                "delivery.retryAfterMax",
            ),
            "format": string(
                "CloudEvents HTTP content mode used for delivery.", enum=["json", "binary"]
            ),
        },
        **{
            "x-kubernetes-validations": [
                rule(
                    "!has(self.timeout) || (self.timeout.matches('[1-9]') "
                    "&& !self.timeout.startsWith('-'))",
                    "delivery.timeout must be greater than zero",
                ),
                rule(
                    "!has(self.retryAfterMax) || !self.retryAfterMax.startsWith('-')",
                    "delivery.retryAfterMax must not be negative",
                ),
            ]
        },
    )
    if not validated:
        out.pop("x-kubernetes-validations")
        for name in ("retry", "backoffDelay", "timeout", "retryAfterMax"):
            out["properties"][name].pop("x-kubernetes-validations")
    return out


def conditions() -> Schema:
    """The duck Status conditions list (knative.dev/pkg/apis.Condition)."""
    return {
        "type": "array",
        "description": "The latest available observations of the resource's current state.",
        "items": obj(
            "One condition.",
            {
                "type": string("Type of condition, e.g. Ready."),
                "status": string("Status of the condition: True, False or Unknown."),
                "severity": string("Error (default when empty), Warning or Info."),
                "lastTransitionTime": string("When the condition last changed its status."),
                "reason": string("One-word CamelCase reason for the last transition."),
                "message": string("Human readable details about the last transition."),
            },
            required=["type", "status"],
        ),
    }


def duck_status_properties() -> Schema:
    """duckv1.Status: observedGeneration, conditions, annotations."""
    return {
        "observedGeneration": {
            "type": "integer",
            "format": "int64",
            "description": "The generation last processed by the controller.",
        },
        "conditions": conditions(),
        "annotations": preserved("Extra information about the status, set by the controller."),
    }


def auth_status() -> Schema:
    return obj(
        "OIDC identity of the resource.",
        {
            "serviceAccountName": string("ServiceAccount whose OIDC token the resource uses."),
            "serviceAccountNames": string_list("ServiceAccounts used for OIDC tokens."),
        },
    )


def source_status(description: str, **extra_properties: Schema) -> Schema:
    """duckv1.SourceStatus plus kind-specific fields."""
    return obj(
        description,
        {
            **duck_status_properties(),
            "sinkUri": string("The resolved URI of the sink events are sent to."),
            "sinkCACerts": string("CA certificates of the resolved sink."),
            "sinkAudience": string("OIDC audience of the resolved sink."),
            "ceAttributes": {
                "type": "array",
                "description": "The CloudEvent type and source attributes this source emits.",
                "items": obj(
                    "One emitted type/source pair.",
                    {
                        "type": string("CloudEvent type attribute."),
                        "source": string("CloudEvent source attribute."),
                    },
                ),
            },
            "auth": auth_status(),
            **extra_properties,
        },
    )


def addressable_status_properties() -> Schema:
    """duckv1.AddressStatus: status.address and status.addresses."""
    address = obj(
        "An address the resource receives events on.",
        {
            "name": string("Name of the address (e.g. http, https)."),
            "url": string("URL of the address."),
            "CACerts": string("CA certificates of the address."),
            "audience": string("OIDC audience of the address."),
        },
    )
    return {
        "address": address,
        "addresses": {"type": "array", "description": "All addresses.", "items": address},
    }


def delivery_status_properties() -> Schema:
    return {
        "deadLetterSinkUri": string("Resolved URI of the dead letter sink."),
        "deadLetterSinkCACerts": string("CA certificates of the dead letter sink."),
        "deadLetterSinkAudience": string("OIDC audience of the dead letter sink."),
    }


def ready_columns() -> list[Schema]:
    return [
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {
            "name": "Ready",
            "type": "string",
            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
        },
        {
            "name": "Reason",
            "type": "string",
            "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
        },
    ]


def sink_column() -> Schema:
    return {"name": "Sink", "type": "string", "jsonPath": ".status.sinkUri"}


def url_column() -> Schema:
    return {"name": "URL", "type": "string", "jsonPath": ".status.address.url"}


def crd(
    *,
    group: str,
    kind: str,
    plural: str,
    singular: str,
    versions: list[str],
    storage: str,
    spec: Schema,
    status: Schema,
    columns: list[Schema],
    categories: list[str],
    short_names: list[str] | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    description: str,
    root_rules: list[dict[str, str]] | None = None,
) -> Schema:
    """A complete CustomResourceDefinition; every served version has the same schema."""
    root: Schema = {
        "type": "object",
        "description": description,
        "properties": {"spec": spec, "status": status},
    }
    if root_rules:
        root["x-kubernetes-validations"] = root_rules
    names: Schema = {
        "kind": kind,
        "plural": plural,
        "singular": singular,
        "categories": categories,
    }
    if short_names:
        names["shortNames"] = short_names
    metadata: Schema = {
        "name": f"{plural}.{group}",
        "labels": {"app.kubernetes.io/part-of": "kevents", **(labels or {})},
    }
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": metadata,
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": names,
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": version == storage,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": root},
                    "additionalPrinterColumns": columns,
                }
                for version in versions
            ],
        },
    }
