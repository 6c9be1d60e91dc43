"""CRDs of the old `sources.eventing.knative.dev/v1alpha1` group (knative/eventing-sources
v0.2-v0.8 and eventing v0.8-v0.14): ApiServerSource, KubernetesEventSource, ContainerSource,
GitHubSource, GcpPubSubSource, in the shapes the 2018-2019 docs write them.

The group differs from today's (`sources.knative.dev`), so these are CRDs of their own, not
served versions of today's: `controller.legacysources` mirrors each object into the
`sources.knative.dev` object it owns and copies that object's status back. The schemas keep
the old field names; `sink` is the old `corev1.ObjectReference` (`{apiVersion, kind, name}`),
also accepted in the later Destination shape (`{ref, uri}`).

They render to `manifests/legacy/` (opt-in, not applied by `kubectl apply -f manifests/`):
with both groups installed a plain `kubectl get apiserversources` resolves to the old group,
since kubectl orders CRD groups by name and `sources.eventing` sorts first.
"""

from __future__ import annotations

from controller.apis import schema as s
from controller.apis import sources

GROUP = "sources.eventing.knative.dev"
VERSION = "v1alpha1"
CATEGORIES = ["all", "knative", "eventing", "sources"]


def _sink() -> s.Schema:
    """The old sink: an ObjectReference, or (eventing v0.10+) a Destination."""
    return s.obj(
        "Where events are sent: an object reference {apiVersion, kind, name} to an "
        "Addressable (or a Knative Service), or a Destination {ref, uri}.",
        {
            "apiVersion": s.string("API version of the sink, e.g. serving.knative.dev/v1alpha1."),
            "kind": s.string("Kind of the sink, e.g. Service or Channel."),
            "name": s.string("Name of the sink."),
            "namespace": s.string("Namespace of the sink; defaults to the source's."),
            "ref": s.kreference("Ref points to an Addressable (Destination shape)."),
            "uri": s.string("An absolute URL of the sink (Destination shape)."),
        },
    )


def _spec(description: str, required: list[str], **properties: s.Schema) -> s.Schema:
    return s.obj(description, {**properties, "sink": _sink()}, required=required)


def _service_account() -> s.Schema:
    return s.string("The ServiceAccount the source's pods run as.")


def _crd(kind: str, plural: str, description: str, spec: s.Schema, **status: s.Schema) -> s.Schema:
    return s.crd(
        group=GROUP,
        kind=kind,
        plural=plural,
        singular=plural[:-1],
        versions=[VERSION],
        storage=VERSION,
        description=description,
        spec=spec,
        status=s.source_status(f"Observed state of the {kind}.", **status),
        columns=[s.sink_column(), *s.ready_columns()],
        categories=CATEGORIES,
        labels=sources.SOURCE_LABELS,
        root_rules=[s.rule("has(self.spec)", "spec is required")],
    )


def apiserversource() -> s.Schema:
    resource = s.obj(
        "A kind of object to watch.",
        {
            "apiVersion": s.string("API version, e.g. v1 or apps/v1.", pattern=s.GROUP_VERSION),
            "kind": s.string("Kind, e.g. Event or Pod.", pattern="\\S"),
            "labelSelector": s.label_selector("Restricts the watch to objects with these labels."),
            "controller": {
                "type": "boolean",
                "description": "Old field (Ref mode: reference the controlling object); "
                "accepted, not mirrored.",
            },
            "controllerSelector": s.obj(
                "Only objects controlled by an owner of this apiVersion/kind (v1 spec.owner).",
                {
                    "apiVersion": s.string("API version of the owner."),
                    "kind": s.string("Kind of the owner."),
                    "name": s.string("Ignored (v1 selects owners by apiVersion and kind)."),
                    "uid": s.string("Ignored (v1 selects owners by apiVersion and kind)."),
                },
            ),
        },
        required=["apiVersion", "kind"],
    )
    spec = _spec(
        "Which Kubernetes objects to watch and where to send their events.",
        ["resources"],
        resources={"type": "array", "description": "The kinds to watch.", "items": resource},
        serviceAccountName=_service_account(),
        mode=s.string(
            "Ref sends a reference to the object (v1 Reference); Resource the whole object.",
            enum=["Ref", "Resource"],
        ),
    )
    spec["x-kubernetes-validations"] = [
        s.rule(
            "size(self.resources) > 0",
            "resources must list at least one {apiVersion, kind} to watch",
            ".resources",
        )
    ]
    return _crd(
        "ApiServerSource",
        "apiserversources",
        "Old-group ApiServerSource, mirrored into a sources.knative.dev/v1 ApiServerSource.",
        spec,
    )


def kuberneteseventsource() -> s.Schema:
    spec = _spec(
        "The namespace whose Kubernetes Events are sent, and where to.",
        [],
        namespace=s.string("Namespace whose Events are watched; defaults to the source's."),
        serviceAccountName=_service_account(),
    )
    return _crd(
        "KubernetesEventSource",
        "kuberneteseventsources",
        "Sends Kubernetes Events (v1/Event) of a namespace to a sink; mirrored into a "
        "sources.knative.dev/v1 ApiServerSource on v1/Event in Resource mode.",
        spec,
    )


def containersource() -> s.Schema:
    env: s.Schema = {
        "description": "Environment of the container: a list of {name, value, valueFrom} "
        "(corev1.EnvVar) or a {NAME: value} map.",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    spec = _spec(
        "The image to run, its arguments and environment, and its sink.",
        ["image"],
        image=s.string("The container image.", pattern="\\S"),
        args=s.string_list(
            "Arguments; a --sink= argument gets the resolved sink URI (appended when absent)."
        ),
        env=env,
        serviceAccountName=_service_account(),
    )
    return _crd(
        "ContainerSource",
        "containersources",
        "Runs an image that sends events to the sink given as --sink= (and K_SINK); mirrored "
        "into a sources.knative.dev/v1 ContainerSource.",
        spec,
    )


def githubsource() -> s.Schema:
    spec = _spec(
        "The repository (or organization), the GitHub events to receive and the secrets.",
        ["ownerAndRepository", "eventTypes", "accessToken", "secretToken"],
        ownerAndRepository=s.string(
            "owner/repository, or just owner for an organization-wide webhook.",
            pattern="^[^/ ]+(/[^/ ]+)?$",
        ),
        eventTypes={
            **s.string_list("GitHub webhook event names, e.g. push, pull_request."),
            "minItems": 1,
        },
        accessToken=sources._secret_ref("Personal access token used to create the webhook."),
        secretToken=sources._secret_ref("Secret used to verify the webhook's signature."),
        githubAPIURL=s.string("GitHub Enterprise API URL; empty means api.github.com."),
        secure={"type": "boolean", "description": "Whether the webhook URL uses https."},
        serviceAccountName=_service_account(),
    )
    return _crd(
        "GitHubSource",
        "githubsources",
        "Old-group GitHubSource, mirrored into a sources.knative.dev/v1alpha1 GitHubSource.",
        spec,
        webhookIDKey=s.string("ID of the webhook created on GitHub."),
    )


def gcppubsubsource() -> s.Schema:
    spec = s.preserved("googleCloudProject, topic, gcpCredsSecret, serviceAccountName, sink.")
    return _crd(
        "GcpPubSubSource",
        "gcppubsubsources",
        "Accepted for old YAML; always Ready=False: Google Cloud Pub/Sub is out of reach.",
        spec,
    )


ALL = {
    "legacy/300-apiserversource.yaml": apiserversource,
    "legacy/300-kuberneteseventsource.yaml": kuberneteseventsource,
    "legacy/300-containersource.yaml": containersource,
    "legacy/300-githubsource.yaml": githubsource,
    "legacy/300-gcppubsubsource.yaml": gcppubsubsource,
}
