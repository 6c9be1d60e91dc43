"""Watch changes to CloudEvents, exactly as Knative's ApiServerSource adapter makes them.

type     dev.knative.apiserver.{resource|ref}.{add|update|delete}
source   the API server URL the adapter talks to
subject  /apis/<apiVersion>/namespaces/<ns>/<guessed plural>/<name>
ext      kind, apiversion, name, namespace of the object
data     Resource mode: the object; Reference mode: {kind, namespace, name, apiVersion}
"""

from __future__ import annotations

import uuid
from typing import Any

from kevents import cloudevent, informer
from sources.apiserver import config

JSON = "application/json"


def event_type(change: informer.Change, mode: config.Mode) -> str:
    kind = "resource" if mode is config.Mode.RESOURCE else "ref"
    return f"dev.knative.apiserver.{kind}.{change.value}"


def guess_plural(kind: str) -> str:
    """Kubernetes' `UnsafeGuessKindToResource`: lower-case, then s / es / ies."""
    if not kind:
        return ""
    singular = kind.lower()
    if singular.endswith("s"):
        return singular + "es"
    if singular.endswith("y"):
        return singular[:-1] + "ies"
    return singular + "s"


def subject(api_version: str, kind: str, namespace: str, name: str) -> str:
    """The selfLink-like subject Knative sets (plural guessed from the kind, as upstream)."""
    version = api_version
    if "." in version and "/" not in version:
        version += "/versionUnknown"
    return f"/apis/{version}/namespaces/{namespace}/{guess_plural(kind)}/{name}"


def reference(obj: dict[str, Any]) -> dict[str, str]:
    """corev1.ObjectReference with only kind, namespace, name, apiVersion (empty ones omitted)."""
    meta = obj.get("metadata", {})
    ref = {
        "kind": obj.get("kind", ""),
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "apiVersion": obj.get("apiVersion", ""),
    }
    return {k: v for k, v in ref.items() if v}


def make(
    change: informer.Change,
    obj: dict[str, Any],
    *,
    source: str,
    mode: config.Mode,
) -> cloudevent.CloudEvent:
    """The CloudEvent for one change of `obj` (which carries its kind and apiVersion)."""
    meta = obj.get("metadata", {})
    kind = str(obj.get("kind", ""))
    api_version = str(obj.get("apiVersion", ""))
    name = str(meta.get("name", ""))
    namespace = str(meta.get("namespace", ""))
    data: dict[str, Any] = obj if mode is config.Mode.RESOURCE else reference(obj)
    return cloudevent.build(
        event_type(change, mode),
        source,
        data,
        id=str(uuid.uuid4()),
        subject=subject(api_version, kind, namespace, name),
        datacontenttype=JSON,
        extensions={"kind": kind, "apiversion": api_version, "name": name, "namespace": namespace},
    )


def owned_by(obj: dict[str, Any], owner: config.Owner | None) -> bool:
    """True when no owner filter is set or `obj` has an ownerReference of that apiVersion/kind."""
    if owner is None:
        return True
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return any(
        r.get("apiVersion") == owner.api_version and r.get("kind") == owner.kind for r in refs
    )
