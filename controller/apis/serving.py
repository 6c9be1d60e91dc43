"""CRDs of a minimal `serving.knative.dev`: Service (`ksvc`), Configuration, Revision.

Enough of Knative Serving for a tutorial's sink: the same group, kinds, names, short names,
categories and printer columns, served at `v1` (storage) and at `v1beta1` and `v1alpha1` for
old YAML. Every version has one schema, so no conversion webhook is needed: the v1alpha1
shapes that differ from v1 (`spec.runLatest.configuration.revisionTemplate`) are accepted
at every version and read as `spec.template` by the reconciler
(`controller/serving/resources.py`); the other 2019 modes (`release`, `pinned`, `manual`)
and traffic splits are refused with a message that says what to write instead.

Rendered into `manifests/serving/`, a separate manifest set: a cluster running the real
Knative Serving does not apply it, and the controller reconciles these kinds only when the
installed CRD is this one (label `serving.kevents.dev/implementation: kevents`).
"""

from __future__ import annotations

from controller.apis import schema as s

GROUP = "serving.knative.dev"
VERSIONS = ["v1alpha1", "v1beta1", "v1"]
CATEGORIES = ["all", "knative", "serving"]
IMPLEMENTATION_LABEL = "serving.kevents.dev/implementation"
"""On each of our serving CRDs; the controller's `SERVING=auto` checks it on the Service CRD."""
LABELS = {IMPLEMENTATION_LABEL: "kevents"}


def _ready_columns() -> list[s.Schema]:
    return [col for col in s.ready_columns() if col["name"] != "Age"]


def _template(description: str) -> s.Schema:
    pod_spec = s.preserved(
        "The pod spec (corev1.PodSpec) plus Knative's containerConcurrency and timeoutSeconds."
    )
    pod_spec["properties"] = {
        "containers": {
            "type": "array",
            "description": "The containers; the one serving requests is named user-container "
            "when unnamed and gets PORT (its containerPort, default 8080).",
            "items": s.preserved("A container (corev1.Container)."),
        }
    }
    template = s.preserved(description)
    template["properties"] = {
        "metadata": s.preserved("Revision metadata: labels, annotations, optional name."),
        "spec": pod_spec,
    }
    return template


def _traffic() -> s.Schema:
    target = s.obj(
        "One traffic target.",
        {
            "tag": s.string("A name for a sub-route (not supported: single route only)."),
            "revisionName": s.string("A pinned revision (not supported)."),
            "configurationName": s.string("The Configuration to follow (v1alpha1)."),
            "latestRevision": {
                "type": "boolean",
                "description": "Follow the latest ready revision.",
            },
            "percent": {"type": "integer", "format": "int64", "description": "Share of traffic."},
            "url": s.string("URL of the target (status only)."),
        },
        **{
            "x-kubernetes-validations": [
                s.rule(
                    "!has(self.revisionName) && !has(self.tag) "
                    "&& (!has(self.latestRevision) || self.latestRevision) "
                    "&& (!has(self.percent) || self.percent == 100)",
                    "spec.traffic: only {latestRevision: true, percent: 100} is supported (no "
                    "pinned revisionName, no tag): kevents routes all traffic to the latest "
                    "ready revision",
                )
            ]
        },
    )
    return {
        "type": "array",
        "description": "Where requests go: kevents routes all traffic to the latest ready "
        "revision; a single target {latestRevision: true, percent: 100} may be written.",
        "items": target,
        "maxItems": 64,
        "x-kubernetes-validations": [
            s.rule(
                "size(self) <= 1",
                "spec.traffic: splitting traffic between several targets is not supported by "
                "kevents' minimal Knative Service (all traffic goes to the latest ready "
                "revision); write at most one target {latestRevision: true, percent: 100}",
            ),
        ],
    }


def _status(**extra: s.Schema) -> s.Schema:
    return s.obj(
        "Observed state.",
        {
            **s.duck_status_properties(),
            "latestCreatedRevisionName": s.string("The last Revision created from the template."),
            "latestReadyRevisionName": s.string("The last Revision that became ready."),
            **extra,
        },
    )


def service() -> s.Schema:
    legacy = s.preserved(
        "v1alpha1 (2019): configuration.revisionTemplate is read as spec.template."
    )
    spec = s.obj(
        "The revision template and traffic of the Service.",
        {
            "template": _template("The template of the Revisions (a PodTemplateSpec)."),
            "traffic": _traffic(),
            "runLatest": legacy,
            "release": s.preserved("v1alpha1 release mode (not supported)."),
            "pinned": s.preserved("v1alpha1 pinned mode (not supported)."),
            "manual": s.preserved("v1alpha1 manual mode (not supported)."),
        },
        **{
            "x-kubernetes-validations": [
                s.rule(
                    "has(self.template) != has(self.runLatest)",
                    "expected exactly one of spec.template or spec.runLatest",
                ),
                s.rule(
                    "!has(self.release) && !has(self.pinned) && !has(self.manual)",
                    "spec.release, spec.pinned and spec.manual (v1alpha1 modes) are not "
                    "supported: write spec.template (or spec.runLatest)",
                ),
            ]
        },
    )
    target = s.obj(
        "Where traffic goes.",
        {
            "revisionName": s.string("The revision."),
            "configurationName": s.string("Its Configuration."),
            "latestRevision": {"type": "boolean", "description": "Follows the latest."},
            "percent": {"type": "integer", "format": "int64", "description": "Share."},
        },
    )
    status = _status(
        url=s.string("Where the Service is reached: http://NAME.NAMESPACE.svc.cluster.local."),
        **s.addressable_status_properties(),
        traffic={"type": "array", "description": "The traffic actually routed.", "items": target},
    )
    return s.crd(
        group=GROUP,
        kind="Service",
        plural="services",
        singular="service",
        versions=VERSIONS,
        storage="v1",
        description="A Knative Service (kevents' minimal implementation): runs the latest ready "
        "Revision of its template behind http://NAME.NAMESPACE.svc.cluster.local.",
        spec=spec,
        status=status,
        columns=[
            {"name": "URL", "type": "string", "jsonPath": ".status.url"},
            {
                "name": "LatestCreated",
                "type": "string",
                "jsonPath": ".status.latestCreatedRevisionName",
            },
            {
                "name": "LatestReady",
                "type": "string",
                "jsonPath": ".status.latestReadyRevisionName",
            },
            *_ready_columns(),
        ],
        categories=CATEGORIES,
        short_names=["kservice", "ksvc"],
        labels={
            **LABELS,
            "duck.knative.dev/addressable": "true",
            "duck.knative.dev/podspecable": "true",
        },
        root_rules=[s.rule("has(self.spec)", "spec is required")],
    )


def configuration() -> s.Schema:
    return s.crd(
        group=GROUP,
        kind="Configuration",
        plural="configurations",
        singular="configuration",
        versions=VERSIONS,
        storage="v1",
        description="The template of a Service's Revisions; each template change makes one.",
        spec=s.obj(
            "The revision template.",
            {"template": _template("The template of the Revisions (a PodTemplateSpec).")},
        ),
        status=_status(),
        columns=[
            {
                "name": "LatestCreated",
                "type": "string",
                "jsonPath": ".status.latestCreatedRevisionName",
            },
            {
                "name": "LatestReady",
                "type": "string",
                "jsonPath": ".status.latestReadyRevisionName",
            },
            *_ready_columns(),
        ],
        categories=CATEGORIES,
        short_names=["config", "cfg"],
        labels={**LABELS, "duck.knative.dev/podspecable": "true"},
    )


def revision() -> s.Schema:
    spec = s.preserved(
        "The pod spec of this revision (immutable snapshot of the Configuration's template)."
    )
    status = s.obj(
        "Observed state.",
        {
            **s.duck_status_properties(),
            "actualReplicas": {"type": "integer", "format": "int32", "description": "Ready pods."},
            "desiredReplicas": {
                "type": "integer",
                "format": "int32",
                "description": "Pods wanted (0 once a newer revision serves).",
            },
            "containerStatuses": {
                "type": "array",
                "description": "Image of each container.",
                "items": s.obj(
                    "A container.",
                    {"name": s.string("Container name."), "imageDigest": s.string("Image.")},
                ),
            },
        },
    )
    label = ".metadata.labels['serving\\.knative\\.dev/%s']"
    return s.crd(
        group=GROUP,
        kind="Revision",
        plural="revisions",
        singular="revision",
        versions=VERSIONS,
        storage="v1",
        description="An immutable snapshot of a Configuration's template, run as a Deployment.",
        spec=spec,
        status=status,
        columns=[
            {"name": "Config Name", "type": "string", "jsonPath": label % "configuration"},
            {
                "name": "Generation",
                "type": "string",
                "jsonPath": label % "configurationGeneration",
            },
            *_ready_columns(),
            {"name": "Actual Replicas", "type": "integer", "jsonPath": ".status.actualReplicas"},
            {"name": "Desired Replicas", "type": "integer", "jsonPath": ".status.desiredReplicas"},
        ],
        categories=CATEGORIES,
        short_names=["rev"],
        labels=LABELS,
    )


ALL = {
    "serving/300-service.yaml": service,
    "serving/300-configuration.yaml": configuration,
    "serving/300-revision.yaml": revision,
}
