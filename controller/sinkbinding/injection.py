"""What a SinkBinding puts into its subjects' pods (SinkBinding `Do`/`Undo`), pure.

Into every container and every initContainer of the pod spec: `K_SINK` (the resolved sink
URL), `K_CE_OVERRIDES` (JSON of `spec.ceOverrides`, empty string when there are none) and,
only when the sink has CA certificates, `K_CA_CERTS`. Any earlier values of the three are
removed first (Undo, then Do), so re-binding after a sink change replaces rather than
duplicates, and unbinding (`Binding(None)`) removes them. Other env entries keep their order.

`desired(obj)` returns the containers to write, or None when the object already holds exactly
them -- the reconciler and the admission webhook then leave the object alone, which keeps
both idempotent and stops a rollout loop.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kevents import kubeapi

K_SINK = "K_SINK"
K_CE_OVERRIDES = "K_CE_OVERRIDES"
K_CA_CERTS = "K_CA_CERTS"
NAMES = frozenset({K_SINK, K_CE_OVERRIDES, K_CA_CERTS})
LISTS = ("initContainers", "containers")


@dataclass(frozen=True, slots=True)
class Sink:
    url: str
    ca_certs: str | None = None
    ce_overrides: str = ""
    """The JSON text of `spec.ceOverrides`, "" without overrides."""


def ce_overrides_json(overrides: Mapping[str, Any] | None) -> str:
    """Go's json.Marshal of duckv1.CloudEventOverrides: `{"extensions":{...}}`, keys sorted,
    no spaces; `{}` for overrides without extensions."""
    if overrides is None:
        return ""
    out: dict[str, Any] = {}
    if overrides.get("extensions"):
        out["extensions"] = dict(overrides["extensions"])
    return json.dumps(out, separators=(",", ":"), sort_keys=True)


def env_of(sink: Sink) -> list[dict[str, str]]:
    env = [{"name": K_SINK, "value": sink.url}]
    if sink.ca_certs:
        env.append({"name": K_CA_CERTS, "value": sink.ca_certs})
    # An empty value is left out, as the apiserver stores it (EnvVar.value is omitempty),
    # so a bound object compares equal to what we would write.
    env.append(
        {"name": K_CE_OVERRIDES, **({"value": sink.ce_overrides} if sink.ce_overrides else {})}
    )
    return env


def rebind(container: Mapping[str, Any], sink: Sink | None) -> dict[str, Any]:
    """A copy of `container` with the binding's env removed, then (with a sink) appended."""
    out = copy.deepcopy(dict(container))
    env = [e for e in out.get("env") or [] if e.get("name") not in NAMES]
    if sink is not None:
        env.extend(env_of(sink))
    if env:
        out["env"] = env
    else:
        out.pop("env", None)
    return out


def pod_spec(obj: kubeapi.Json, path: Sequence[str]) -> dict[str, Any]:
    node: Any = obj
    for part in path:
        node = (node or {}).get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def desired(
    obj: kubeapi.Json, path: Sequence[str], sink: Sink | None
) -> dict[str, list[dict[str, Any]]] | None:
    """{"containers": [...], "initContainers": [...]} to write into the pod spec at `path`,
    or None when nothing changes."""
    spec = pod_spec(obj, path)
    out: dict[str, list[dict[str, Any]]] = {}
    changed = False
    for key in LISTS:
        current = spec.get(key)
        if not current:
            continue
        wanted = [rebind(c, sink) for c in current]
        out[key] = wanted
        changed = changed or wanted != current
    return out if changed else None


def merge_patch(
    path: Sequence[str], lists: Mapping[str, Any], resource_version: str
) -> dict[str, Any]:
    """A merge patch writing `lists` at `path`, guarded by the object's resourceVersion."""
    body: dict[str, Any] = dict(lists)
    for part in reversed(path):
        body = {part: body}
    body.setdefault("metadata", {})["resourceVersion"] = resource_version
    return body


def json_patch(path: Sequence[str], lists: Mapping[str, Any]) -> list[dict[str, Any]]:
    """RFC 6902 operations replacing the lists at `path` (for an admission response)."""
    prefix = "".join(f"/{p}" for p in path)
    return [{"op": "replace", "path": f"{prefix}/{key}", "value": value}
            for key, value in lists.items()]  # fmt: skip
