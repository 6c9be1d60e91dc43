"""A container's environment, as the kubelet builds it (pure functions).

Order of precedence, lowest first: service links (`KUBERNETES_SERVICE_HOST`, `<SVC>_SERVICE_*`),
`envFrom` sources in order, then `env` entries in order. An `env` value may refer to any
variable defined before it as `$(NAME)`; `$$` escapes a dollar. `command` and `args` are
expanded with the final environment. Unresolvable references stay as written, like Kubernetes.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hack.agent import errors, quantities

Obj = dict[str, Any]
"""A raw Kubernetes object or sub-object, as JSON decoded it."""

_C_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Replace `$(NAME)` with env[NAME]; `$$` -> `$`; unknown names stay as `$(NAME)`."""
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = text.find(")", i + 2)
            if end < 0:
                out.append(text[i:])
                break
            name = text[i + 2 : end]
            if name and name in env:
                out.append(env[name])
            else:
                out.append(text[i : end + 1])
            i = end + 1
        else:
            out.append(text[i : i + 2])
            i += 2
    return "".join(out)


@dataclass(frozen=True)
class Sources:
    """Everything a container's env may read, fetched beforehand.

    `configmaps`/`secrets` map a name to the object, or to None when it does not exist.
    `allocatable` is the node's allocatable resources, the default for unset limits.
    """

    pod: Obj
    configmaps: Mapping[str, Obj | None]
    secrets: Mapping[str, Obj | None]
    allocatable: Mapping[str, str]


def references(container: Obj) -> tuple[set[str], set[str]]:
    """Names of the ConfigMaps and Secrets a container's env and envFrom refer to."""
    cms: set[str] = set()
    secrets: set[str] = set()
    for src in container.get("envFrom") or ():
        if "configMapRef" in src:
            cms.add(src["configMapRef"]["name"])
        if "secretRef" in src:
            secrets.add(src["secretRef"]["name"])
    for var in container.get("env") or ():
        value_from = var.get("valueFrom") or {}
        if "configMapKeyRef" in value_from:
            cms.add(value_from["configMapKeyRef"]["name"])
        if "secretKeyRef" in value_from:
            secrets.add(value_from["secretKeyRef"]["name"])
    return cms, secrets


def _data(obj: Obj, *, secret: bool) -> dict[str, str]:
    result: dict[str, str] = {}
    if secret:
        for key, value in (obj.get("data") or {}).items():
            result[key] = base64.b64decode(value).decode("utf-8", errors="replace")
        for key, value in (obj.get("stringData") or {}).items():
            result[key] = str(value)
    else:
        for key, value in (obj.get("data") or {}).items():
            result[key] = str(value)
        for key, value in (obj.get("binaryData") or {}).items():
            result[key] = base64.b64decode(value).decode("utf-8", errors="replace")
    return result


def _quote_map(values: Mapping[str, str]) -> str:
    return "\n".join(f"{k}={json.dumps(v)}" for k, v in sorted(values.items()))


def field_value(pod: Obj, path: str) -> str:
    """A downward API `fieldRef.fieldPath` of the pod, rendered as the kubelet does."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.hostIP": status.get("hostIP", ""),
        "status.podIP": status.get("podIP", ""),
        "status.hostIPs": ",".join(a["ip"] for a in status.get("hostIPs") or ()),
        "status.podIPs": ",".join(a["ip"] for a in status.get("podIPs") or ()),
    }
    if path in simple:
        return str(simple[path])
    if path == "metadata.labels":
        return _quote_map(meta.get("labels") or {})
    if path == "metadata.annotations":
        return _quote_map(meta.get("annotations") or {})
    for prefix, key in (("metadata.labels", "labels"), ("metadata.annotations", "annotations")):
        if path.startswith(prefix + "[") and path.endswith("]"):
            name = path[len(prefix) + 1 : -1].strip("'\"")
            return str((meta.get(key) or {}).get(name, ""))
    raise errors.ContainerConfigError(f"unsupported fieldRef fieldPath {path!r}")


def resource_value(pod: Obj, container_name: str, ref: Obj, allocatable: Mapping[str, str]) -> str:
    """A `resourceFieldRef`, defaulting an unset limit to the node's allocatable amount."""
    resource = str(ref["resource"])
    target = ref.get("containerName") or container_name
    containers = (pod.get("spec") or {}).get("containers") or ()
    found = next((c for c in containers if c.get("name") == target), None)
    if found is None:
        raise errors.ContainerConfigError(f"resourceFieldRef names unknown container {target!r}")
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or not name:
        raise errors.ContainerConfigError(f"unsupported resourceFieldRef resource {resource!r}")
    resources = found.get("resources") or {}
    value = (resources.get(kind) or {}).get(name)
    if value is None and kind == "requests":
        value = (resources.get("limits") or {}).get(name)
    if value is None:
        value = allocatable.get(name, "0") if kind == "limits" else "0"
    try:
        return quantities.divide_ceil(str(value), ref.get("divisor"))
    except ValueError as err:
        raise errors.ContainerConfigError(str(err)) from err


def _lookup(kind: str, store: Mapping[str, Obj | None], ref: Obj, *, secret: bool) -> str | None:
    name = ref.get("name", "")
    key = ref["key"]
    optional = bool(ref.get("optional"))
    obj = store.get(name)
    if obj is None:
        if optional:
            return None
        raise errors.ContainerConfigError(f'{kind} "{name}" not found')
    data = _data(obj, secret=secret)
    if key not in data:
        if optional:
            return None
        raise errors.ContainerConfigError(f"couldn't find key {key} in {kind} {name}")
    return data[key]


def build(container: Obj, sources: Sources, service_env: Mapping[str, str]) -> dict[str, str]:
    """The container's final environment (without image defaults)."""
    env: dict[str, str] = dict(service_env)
    for src in container.get("envFrom") or ():
        prefix = src.get("prefix", "")
        if "configMapRef" in src:
            ref, store, kind, secret = src["configMapRef"], sources.configmaps, "configmap", False
        elif "secretRef" in src:
            ref, store, kind, secret = src["secretRef"], sources.secrets, "secret", True
        else:
            continue
        obj = store.get(ref.get("name", ""))
        if obj is None:
            if ref.get("optional"):
                continue
            raise errors.ContainerConfigError(f'{kind} "{ref.get("name", "")}" not found')
        for key, value in _data(obj, secret=secret).items():
            if _ENV_NAME.match(prefix + key):
                env[prefix + key] = value
    for var in container.get("env") or ():
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand(var.get("value", ""), env)
            continue
        value_from = var["valueFrom"]
        resolved: str | None
        if "fieldRef" in value_from:
            resolved = field_value(sources.pod, value_from["fieldRef"]["fieldPath"])
        elif "resourceFieldRef" in value_from:
            resolved = resource_value(
                sources.pod, container["name"], value_from["resourceFieldRef"], sources.allocatable
            )
        elif "configMapKeyRef" in value_from:
            resolved = _lookup(
                "configmap", sources.configmaps, value_from["configMapKeyRef"], secret=False
            )
        elif "secretKeyRef" in value_from:
            resolved = _lookup("secret", sources.secrets, value_from["secretKeyRef"], secret=True)
        else:
            raise errors.ContainerConfigError(f"env {name}: unsupported valueFrom")
        if resolved is not None:
            env[name] = resolved
    return env


def service_links(services: Iterable[Obj], *, enable_links: bool, namespace: str) -> dict[str, str]:
    """Docker-links style variables for Services with a ClusterIP.

    `kubernetes` in `default` is always included (that is how in-cluster config finds the
    apiserver); other Services of the pod's namespace only with enableServiceLinks.
    """
    env: dict[str, str] = {}
    for svc in services:
        meta = svc.get("metadata") or {}
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        if not ip or ip == "None":
            continue
        is_master = meta.get("namespace") == "default" and meta.get("name") == "kubernetes"
        if not is_master and not (enable_links and meta.get("namespace") == namespace):
            continue
        ports = spec.get("ports") or ()
        if not ports:
            continue
        prefix = meta["name"].upper().replace("-", "_")
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
        first = ports[0]
        proto = str(first.get("protocol", "TCP")).lower()
        env[f"{prefix}_PORT"] = f"{proto}://{ip}:{first['port']}"
        for port in ports:
            if port.get("name"):
                env[f"{prefix}_SERVICE_PORT_{port['name'].upper().replace('-', '_')}"] = str(
                    port["port"]
                )
            p = str(port.get("protocol", "TCP"))
            base = f"{prefix}_PORT_{port['port']}_{p}"
            env[base] = f"{p.lower()}://{ip}:{port['port']}"
            env[f"{base}_PROTO"] = p.lower()
            env[f"{base}_PORT"] = str(port["port"])
            env[f"{base}_ADDR"] = ip
    return env


def valid_name(name: str) -> bool:
    """True for a C identifier (what a shell can export)."""
    return bool(_C_IDENTIFIER.match(name))
