"""What the serving kinds make, pure (knative/serving `pkg/reconciler/*/resources`).

- A Service owns a Configuration `NAME` (its template) and a Kubernetes Service `NAME`,
  port 80 to the container port named `user-port`, selecting the pods of the latest ready
  revision (`http://NAME.NS.svc.cluster.local`; Knative's Route). The selector moves to a
  new revision once its pods are ready, while the old pods still run: the endpoints switch
  in one update and no request reaches a pod that is stopping.
- A Configuration owns one Revision per template generation: `NAME-00001`, `NAME-00002`...
  (Knative's `kmeta.ChildName(config, "-%05d" % generation)`), or the template's own
  `metadata.name` when the user gives one.
- A Revision owns a Deployment `REVISION-deployment` running its pod spec: the serving
  container is named `user-container` when unnamed, its port (first `containerPort`, else
  8080) is named `user-port` and given as env `PORT`, with `K_SERVICE`, `K_CONFIGURATION`,
  `K_REVISION` (Knative's runtime contract) and a TCP readiness probe on it unless the user
  wrote one. It runs one pod while the revision routes traffic (`routingState` active) and
  none once it has been out of the route for `RESERVE_GRACE` (`reserve`, since the
  `routingStateModified` annotation), as Knative's scale-to-zero leaves it. The routing
  state (`ROUTING_ONLY` labels and annotations) never reaches the Deployment: a change of its
  pod template would roll the revision out again, and the pod that was serving until the
  switch would be replaced at once instead of draining for `RESERVE_GRACE`
  (knative/serving's `excludeLabels`/`excludeAnnotations` in revision/resources/meta.go).
"""

from __future__ import annotations

import copy
import datetime
from typing import Any

from controller.apiserversource import adapter
from controller.framework import reconciling
from kevents import kubeapi

API_VERSION = "serving.knative.dev/v1"
SERVICES = kubeapi.Resource("serving.knative.dev", "v1", "services")
CONFIGURATIONS = kubeapi.Resource("serving.knative.dev", "v1", "configurations")
REVISIONS = kubeapi.Resource("serving.knative.dev", "v1", "revisions")
CORE_SERVICES = kubeapi.Resource("", "v1", "services")

PREFIX = "serving.knative.dev/"
SERVICE_LABEL = PREFIX + "service"
CONFIGURATION_LABEL = PREFIX + "configuration"
GENERATION_LABEL = PREFIX + "configurationGeneration"
REVISION_LABEL = PREFIX + "revision"
REVISION_UID_LABEL = PREFIX + "revisionUID"
ROUTING_STATE_LABEL = PREFIX + "routingState"
ROUTING_STATE_MODIFIED = PREFIX + "routingStateModified"
RESERVE_GRACE = 10.0
"""Seconds a revision keeps its pod after leaving the route (Knative's scale-to-zero grace,
30 s by default, is the same idea): the endpoints of the Kubernetes Service already moved to
the new revision, and kube-proxy needs a moment to program them on every node, so requests
sent just before still find the old pod running. Kept-alive connections opened before the
switch stay on the old pod (conntrack) until kevents' pool retires them
(`kevents.connections.MAX_AGE_SECONDS`, 5 s, then the answer in flight): the grace outlasts
that, so no delivery reaches a pod that is being stopped."""
ACTIVE, RESERVE = "active", "reserve"
ROUTING_ONLY = frozenset(
    {
        ROUTING_STATE_LABEL,
        ROUTING_STATE_MODIFIED,
        PREFIX + "route",
        PREFIX + "routes",
        PREFIX + "lastPinned",
        PREFIX + "no-gc",
    }
)
"""Revision labels and annotations about routing, not about what runs: kept off the
Deployment and its pod template, whose change would replace the running pod."""

USER_CONTAINER = "user-container"
USER_PORT_NAME = "user-port"
DEFAULT_PORT = 8080
"""Knative's default user port (`config-deployment`'s queue-proxy forwards to 8080)."""
REVISION_SPEC_ONLY = (
    "containerConcurrency",
    "timeoutSeconds",
    "responseStartTimeoutSeconds",
    "idleTimeoutSeconds",
)
"""RevisionSpec fields that are not PodSpec fields: kept on the Revision, not the pods."""
RESERVED_ENV = ("PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION")


def template_of(spec: kubeapi.Json) -> dict[str, Any]:
    """The revision template: `spec.template` (v1, v1beta1, late v1alpha1), else the 2019
    v1alpha1 `spec.runLatest.configuration.revisionTemplate`, whose single `container` (the
    v1alpha1 RevisionSpec field) becomes `containers: [container]`."""
    if spec.get("template"):
        template = copy.deepcopy(dict(spec["template"]))
    else:
        legacy = ((spec.get("runLatest") or {}).get("configuration") or {}).get("revisionTemplate")
        template = copy.deepcopy(dict(legacy or {}))
    pod = template.get("spec")
    if isinstance(pod, dict) and "container" in pod:
        single = pod.pop("container")
        if single and not pod.get("containers"):
            pod["containers"] = [single]
    return template


def traffic_problems(spec: kubeapi.Json) -> list[str]:
    """What of `spec.traffic` kevents cannot honour (the CRD's rules say the same): traffic
    always goes to the latest ready revision."""
    targets = list(spec.get("traffic") or [])
    if len(targets) > 1:
        return [
            "spec.traffic: splitting traffic between several targets is not supported by "
            "kevents' minimal Knative Service (all traffic goes to the latest ready revision)"
        ]
    for t in targets:
        if t.get("revisionName") or t.get("tag") or t.get("latestRevision") is False:
            return ["spec.traffic: only {latestRevision: true, percent: 100} is supported"]
        if t.get("percent") not in (None, 100):
            return ["spec.traffic: the single target must carry percent 100"]
    return []


def service_url(name: str, namespace: str) -> str:
    return f"http://{name}.{namespace}.svc.cluster.local"


def revision_name(config: kubeapi.Json) -> str:
    """The Revision of the Configuration's current generation."""
    meta = config["metadata"]
    template = (config.get("spec") or {}).get("template") or {}
    given = (template.get("metadata") or {}).get("name")
    if given:
        return str(given)
    return adapter.child_name(meta["name"], f"-{int(meta.get('generation', 1)):05d}")


def deployment_name(revision: str) -> str:
    return adapter.child_name(revision, "-deployment")


def _owner(obj: kubeapi.Json, kind: str) -> dict[str, Any]:
    return reconciling.owner_reference(obj, API_VERSION, kind)


def configuration(service: kubeapi.Json) -> dict[str, Any]:
    meta = service["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": "Configuration",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": {SERVICE_LABEL: meta["name"]},
            "ownerReferences": [_owner(service, "Service")],
        },
        "spec": {"template": template_of(service.get("spec") or {})},
    }


def kubernetes_service(service: kubeapi.Json, ready_revision: str | None) -> dict[str, Any]:
    """The Service behind `http://NAME.NS.svc.cluster.local`: the pods of the latest ready
    revision (none selected before one is ready)."""
    meta = service["metadata"]
    selector = {SERVICE_LABEL: meta["name"]}
    if ready_revision:
        selector[REVISION_LABEL] = ready_revision
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": {SERVICE_LABEL: meta["name"]},
            "ownerReferences": [_owner(service, "Service")],
        },
        "spec": {
            "selector": selector,
            "ports": [
                {"name": "http", "port": 80, "protocol": "TCP", "targetPort": USER_PORT_NAME}
            ],
        },
    }


def revision(config: kubeapi.Json) -> dict[str, Any]:
    """The Revision of the Configuration's current template (created once, never changed)."""
    meta = config["metadata"]
    template = copy.deepcopy((config.get("spec") or {}).get("template") or {})
    tmeta = template.get("metadata") or {}
    labels = {
        **(tmeta.get("labels") or {}),
        CONFIGURATION_LABEL: meta["name"],
        GENERATION_LABEL: str(meta.get("generation", 1)),
        ROUTING_STATE_LABEL: ACTIVE,
    }
    service = (meta.get("labels") or {}).get(SERVICE_LABEL)
    if service:
        labels[SERVICE_LABEL] = service
    body: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "Revision",
        "metadata": {
            "name": revision_name(config),
            "namespace": meta["namespace"],
            "labels": labels,
            "ownerReferences": [_owner(config, "Configuration")],
        },
        "spec": template.get("spec") or {},
    }
    if tmeta.get("annotations"):
        body["metadata"]["annotations"] = dict(tmeta["annotations"])
    return body


def user_port(container: kubeapi.Json) -> int:
    for port in container.get("ports") or []:
        if port.get("containerPort"):
            return int(port["containerPort"])
    return DEFAULT_PORT


def serving_index(containers: list[dict[str, Any]]) -> int:
    """The container that receives requests: the one declaring a port, else the first."""
    for index, container in enumerate(containers):
        if container.get("ports"):
            return index
    return 0


def _serving_container(
    container: dict[str, Any], names: dict[str, str], probe_default: bool
) -> dict[str, Any]:
    port = user_port(container)
    out = dict(container)
    out.setdefault("name", USER_CONTAINER)
    out["ports"] = [{"name": USER_PORT_NAME, "containerPort": port, "protocol": "TCP"}]
    env = [e for e in container.get("env") or [] if e.get("name") not in RESERVED_ENV]
    out["env"] = [
        *env,
        {"name": "PORT", "value": str(port)},
        {"name": "K_REVISION", "value": names["revision"]},
        {"name": "K_CONFIGURATION", "value": names["configuration"]},
        {"name": "K_SERVICE", "value": names["service"]},
    ]
    probe = container.get("readinessProbe")
    if probe is None and probe_default:
        out["readinessProbe"] = {
            "tcpSocket": {"port": port},
            "periodSeconds": 1,
            "successThreshold": 1,
            "failureThreshold": 3,
        }
    elif probe is not None:
        probe = copy.deepcopy(probe)
        for handler in ("tcpSocket", "httpGet"):
            if handler in probe and not probe[handler].get("port"):
                probe[handler]["port"] = port  # Knative: a probe without port uses the user port
        out["readinessProbe"] = probe
    return out


def deployment(rev: kubeapi.Json, replicas: int) -> dict[str, Any]:
    """The Deployment running a Revision with `replicas` pods (`desired_replicas`)."""
    meta = rev["metadata"]
    rlabels = dict(meta.get("labels") or {})
    names = {
        "revision": meta["name"],
        "configuration": rlabels.get(CONFIGURATION_LABEL, ""),
        "service": rlabels.get(SERVICE_LABEL, ""),
    }
    pod = copy.deepcopy(dict(rev.get("spec") or {}))
    for field in REVISION_SPEC_ONLY:
        pod.pop(field, None)
    containers = list(pod.get("containers") or [])
    main = serving_index(containers)
    pod["containers"] = [
        _serving_container(c, names, probe_default=True)
        if i == main
        else {"name": f"container-{i}", **c}
        for i, c in enumerate(containers)
    ]
    pod.setdefault("enableServiceLinks", False)
    labels = {k: v for k, v in rlabels.items() if k not in ROUTING_ONLY}
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k not in ROUTING_ONLY
    }
    labels.update(
        {REVISION_LABEL: meta["name"], REVISION_UID_LABEL: meta["uid"], "app": meta["name"]}
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": labels,
            "ownerReferences": [_owner(rev, "Revision")],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {REVISION_UID_LABEL: meta["uid"]}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": annotations,
                },
                "spec": pod,
            },
        },
    }


def desired_replicas(rev: kubeapi.Json, now: float) -> tuple[int, float | None]:
    """(pods, seconds until that changes): one pod while the revision is active or left
    the route less than `RESERVE_GRACE` ago, none in reserve after that."""
    meta = rev["metadata"]
    if (meta.get("labels") or {}).get(ROUTING_STATE_LABEL, ACTIVE) != RESERVE:
        return 1, None
    stamp = (meta.get("annotations") or {}).get(ROUTING_STATE_MODIFIED, "")
    try:
        since = datetime.datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return 0, None
    left = since + RESERVE_GRACE - now
    return (1, left) if left > 0 else (0, None)


def routing_patch(rev: kubeapi.Json, active: bool, stamp: str) -> dict[str, Any] | None:
    """The merge patch moving a revision to `active` or `reserve` (stamped `stamp`, RFC 3339),
    None when it is there already."""
    meta = rev["metadata"]
    want = ACTIVE if active else RESERVE
    if (meta.get("labels") or {}).get(ROUTING_STATE_LABEL) == want:
        return None
    return {
        "metadata": {
            "resourceVersion": meta["resourceVersion"],
            "labels": {ROUTING_STATE_LABEL: want},
            "annotations": {ROUTING_STATE_MODIFIED: stamp},
        }
    }


def generation_of(rev: kubeapi.Json) -> int:
    try:
        return int((rev["metadata"].get("labels") or {}).get(GENERATION_LABEL, "0"))
    except ValueError:
        return 0


def is_ready(obj: kubeapi.Json) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
    )


def latest_ready(revisions: list[kubeapi.Json], previous: str | None = None) -> str | None:
    """The ready revision of the highest configuration generation, never older than
    `previous` (the current `latestReadyRevisionName`, while it exists): as in Knative it
    only moves forward, so a routed revision whose pod restarts keeps the route instead of
    sending it back to an older revision scaled to zero."""
    ready = [r for r in revisions if is_ready(r) or r["metadata"]["name"] == previous]
    if not ready:
        return None
    return str(max(ready, key=generation_of)["metadata"]["name"])
