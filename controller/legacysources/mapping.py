"""Old `sources.eventing.knative.dev/v1alpha1` specs -> today's `sources.knative.dev` specs.

Pure functions, one per old kind; the mirroring reconciler applies what they return.

- ApiServerSource -> ApiServerSource v1: `resources[].labelSelector` -> `selector`,
  `controllerSelector` -> `owner`, `mode: Ref` -> `Reference`, `serviceAccountName`, `sink`.
- KubernetesEventSource -> ApiServerSource v1 `<name>-k8sevents` on `v1/Event`, `mode:
  Resource` (the whole Event, as the 2018 source sent it); a `namespace` other than its own
  -> `namespaceSelector` on `kubernetes.io/metadata.name`.
- ContainerSource -> ContainerSource v1: one container `source` from `image`, `args` (the
  `--sink=` argument carries the resolved sink URI, appended when absent), `env` (a list or
  a map; plus `SINK`), `serviceAccountName`.
- GitHubSource -> GitHubSource (`sources.knative.dev/v1alpha1`): the same fields, `sink`.

`sink` as an ObjectReference `{apiVersion, kind, name, namespace?}` becomes the Destination
`{ref: {...}}`; a sink already in the Destination shape (`ref`/`uri`) is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kevents import kubeapi

SINK_ARG = "--sink="
CONTAINER_NAME = "source"
"""The container's name in the mirrored ContainerSource (old Knative named it `source`)."""

Spec = Mapping[str, Any]


def destination(sink: Mapping[str, Any] | None) -> kubeapi.Json:
    """The old sink (ObjectReference or Destination) as a Destination; {} when absent."""
    if not sink:
        return {}
    if "ref" in sink or "uri" in sink:
        return {k: sink[k] for k in ("ref", "uri", "CACerts", "audience") if k in sink}
    ref = {k: sink[k] for k in ("apiVersion", "kind", "name", "namespace") if sink.get(k)}
    return {"ref": ref}


def apiserversource(spec: Spec) -> kubeapi.Json:
    resources = []
    owner: kubeapi.Json | None = None
    for old in spec.get("resources") or []:
        new: kubeapi.Json = {"apiVersion": old.get("apiVersion"), "kind": old.get("kind")}
        if old.get("labelSelector"):
            new["selector"] = old["labelSelector"]
        resources.append(new)
        selector = old.get("controllerSelector") or {}
        if owner is None and selector.get("apiVersion") and selector.get("kind"):
            owner = {"apiVersion": selector["apiVersion"], "kind": selector["kind"]}
    out: kubeapi.Json = {
        "resources": resources,
        "mode": "Resource" if spec.get("mode") == "Resource" else "Reference",
        "sink": destination(spec.get("sink")),
    }
    if owner is not None:
        out["owner"] = owner
    if spec.get("serviceAccountName"):
        out["serviceAccountName"] = spec["serviceAccountName"]
    return out


def kuberneteseventsource(spec: Spec, namespace: str) -> kubeapi.Json:
    """An ApiServerSource on v1/Event of `spec.namespace` (the source's own by default),
    sending the whole Event as the 2018 source did."""
    out: kubeapi.Json = {
        "resources": [{"apiVersion": "v1", "kind": "Event"}],
        "mode": "Resource",
        "sink": destination(spec.get("sink")),
    }
    watched = spec.get("namespace") or namespace
    if watched != namespace:
        out["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": watched}}
    if spec.get("serviceAccountName"):
        out["serviceAccountName"] = spec["serviceAccountName"]
    return out


def container_sink(spec: Spec) -> kubeapi.Json:
    """The ContainerSource's sink: `spec.sink`, else the URI of a `--sink=` argument (old
    Knative let the args carry the sink)."""
    found = destination(spec.get("sink"))
    if found:
        return found
    for arg in spec.get("args") or []:
        if isinstance(arg, str) and arg.startswith(SINK_ARG) and len(arg) > len(SINK_ARG):
            return {"uri": arg[len(SINK_ARG) :]}
    return {}


def env_list(env: object) -> list[kubeapi.Json]:
    """`spec.env` as a list of corev1.EnvVar: a list kept, a {NAME: value} map converted
    (in its order)."""
    if isinstance(env, Mapping):
        return [{"name": str(k), "value": "" if v is None else str(v)} for k, v in env.items()]
    if isinstance(env, list):
        return [dict(e) for e in env if isinstance(e, Mapping) and e.get("name")]
    return []


def containersource(spec: Spec, sink_uri: str) -> kubeapi.Json:
    """A v1 ContainerSource running `spec.image` with `--sink=<sink_uri>` among its args
    (in place of any given, else appended) and `SINK` in its env, as old Knative did; the
    v1 source's SinkBinding adds `K_SINK`."""
    args = [str(a) for a in spec.get("args") or []]
    kept = [a for a in args if not a.startswith(SINK_ARG)]
    if len(kept) == len(args):
        kept.append(SINK_ARG + sink_uri)
    else:
        at = next(i for i, a in enumerate(args) if a.startswith(SINK_ARG))
        kept.insert(at, SINK_ARG + sink_uri)
    env = [e for e in env_list(spec.get("env")) if e["name"] != "SINK"]
    env.append({"name": "SINK", "value": sink_uri})
    pod: kubeapi.Json = {
        "containers": [
            {"name": CONTAINER_NAME, "image": spec.get("image"), "args": kept, "env": env}
        ]
    }
    if spec.get("serviceAccountName"):
        pod["serviceAccountName"] = spec["serviceAccountName"]
    return {"template": {"spec": pod}, "sink": container_sink(spec)}


GITHUB_FIELDS = (
    "ownerAndRepository",
    "eventTypes",
    "accessToken",
    "secretToken",
    "githubAPIURL",
    "secure",
    "serviceAccountName",
)


def githubsource(spec: Spec) -> kubeapi.Json:
    out: kubeapi.Json = {k: spec[k] for k in GITHUB_FIELDS if spec.get(k) not in (None, "")}
    out["sink"] = destination(spec.get("sink"))
    return out
