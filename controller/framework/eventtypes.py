"""The EventTypes of a source: one `eventtypes.eventing.knative.dev` object per CloudEvents
type the source declares in `status.ceAttributes`, as Knative's source duck reconciler
(`pkg/reconciler/source/duck`) makes them, so `kubectl get eventtypes` (and `kn eventtype
list`) shows what each source in a namespace sends.

Each EventType is named by the md5 of type + source + schema + the source's uid (Knative's
name: stable across reconciles, unique per source), labelled
`eventing.knative.dev/sourceName: <source>`, controlled by the source (garbage-collected
with it) and says `spec.type`, `spec.source` and `spec.reference` (the sink's ref).

One difference from Knative, on purpose: Knative makes them only for a sink given as a ref;
kevents makes them for a sink given as a URI too (without `spec.reference`), since what a
source sends does not depend on how its sink is written (Knative's rekt
`SendsEventsWithEventTypes` gives an ApiServerSource its broker's URI and expects the
source's three types).

Writing them never fails the source: an EventType is a registry entry, not a condition of
delivery. A refusal (the CRD not installed, RBAC withheld) is logged and retried at the
next reconcile.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence

from kevents import kubeapi

logger = logging.getLogger(__name__)

EVENTTYPES = kubeapi.Resource("eventing.knative.dev", "v1beta2", "eventtypes")
SOURCE_NAME_LABEL = "eventing.knative.dev/sourceName"
FIELD_MANAGER = "kevents-controller"


def name_for(ce_type: str, ce_source: str, schema: str, uid: str) -> str:
    """Knative's EventType name for one of a source's types (md5 hex, 32 characters)."""
    digest = hashlib.md5((ce_type + ce_source + schema + uid).encode(), usedforsecurity=False)
    return digest.hexdigest()


def desired(
    source: kubeapi.Json, ce_attributes: Sequence[kubeapi.Json], sink_ref: kubeapi.Json | None
) -> list[kubeapi.Json]:
    """The EventTypes `source` should have: one per `ceAttributes` entry (the status the
    reconcile publishes) with a type, referencing `sink_ref` (the sink's ref, its namespace
    defaulted) when there is one."""
    meta = source["metadata"]
    out: list[kubeapi.Json] = []
    seen: set[str] = set()
    for attribute in ce_attributes:
        ce_type, ce_source = attribute.get("type") or "", attribute.get("source") or ""
        if not ce_type:
            continue  # an EventType needs spec.type
        name = name_for(ce_type, ce_source, "", meta["uid"])
        if name in seen:
            continue
        seen.add(name)
        spec: kubeapi.Json = {"type": ce_type}
        if ce_source:
            spec["source"] = ce_source
        if sink_ref is not None:
            spec["reference"] = sink_ref
        out.append(
            {
                "apiVersion": EVENTTYPES.api_version,
                "kind": "EventType",
                "metadata": {
                    "name": name,
                    "namespace": meta["namespace"],
                    "labels": {SOURCE_NAME_LABEL: meta["name"]},
                    "ownerReferences": [
                        {
                            "apiVersion": source["apiVersion"],
                            "kind": source["kind"],
                            "name": meta["name"],
                            "uid": meta["uid"],
                            "controller": True,
                            "blockOwnerDeletion": True,
                        }
                    ],
                },
                "spec": spec,
            }
        )
    return out


def sink_reference(sink: kubeapi.Json | None, namespace: str) -> kubeapi.Json | None:
    """The sink's ref as an EventType's `spec.reference` (namespace defaulted), or None for
    a URI sink."""
    ref = (sink or {}).get("ref")
    if not ref:
        return None
    out = {k: v for k, v in ref.items() if k in ("apiVersion", "kind", "name", "address")}
    out["namespace"] = ref.get("namespace") or namespace
    return out


def _controlled_by(obj: kubeapi.Json, uid: str) -> bool:
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return any(r.get("uid") == uid and r.get("controller") for r in refs)


_SYNCED: dict[str, str] = {}
"""source uid -> the fingerprint of the EventTypes last written for it: a reconcile that
wants the same ones makes no API call (thousands of PingSources resynced would otherwise
cost a list and an apply each). Emptied past `_SYNCED_MAX` entries (deleted sources' uids
stay until then), so it stays bounded; a restart forgets it too."""
_SYNCED_MAX = 20_000


def _fingerprint(wanted: Sequence[kubeapi.Json]) -> str:
    return json.dumps([[w["metadata"]["name"], w["spec"]] for w in wanted], sort_keys=True)


async def sync(api: kubeapi.KubeApi, source: kubeapi.Json, wanted: Sequence[kubeapi.Json]) -> None:
    """Make the source's EventTypes `wanted`: apply each, delete those it controls that are
    no longer wanted (its mode or sink changed). Failures are logged, never raised."""
    meta = source["metadata"]
    namespace, key = meta["namespace"], f"{meta['namespace']}/{meta['name']}"
    fingerprint = _fingerprint(wanted)
    if _SYNCED.get(meta["uid"]) == fingerprint:
        return
    try:
        listed = await api.request(
            "GET",
            EVENTTYPES.path(namespace),
            query=[("labelSelector", f"{SOURCE_NAME_LABEL}={meta['name']}")],
        )
        names = {str(w["metadata"]["name"]) for w in wanted}
        for existing in listed.get("items") or []:
            name = existing["metadata"]["name"]
            if name not in names and _controlled_by(existing, meta["uid"]):
                await api.delete(EVENTTYPES, namespace, name)
                logger.info("Deleted EventType %s of %s %s.", name, source["kind"], key)
        present = {str(e["metadata"]["name"]) for e in listed.get("items") or []}
        for eventtype in wanted:
            await api.apply(EVENTTYPES, namespace, eventtype, FIELD_MANAGER)
            if eventtype["metadata"]["name"] not in present:
                logger.info(
                    "Created EventType %s (%s) of %s %s.",
                    eventtype["metadata"]["name"], eventtype["spec"]["type"], source["kind"], key,
                )  # fmt: skip
        if len(_SYNCED) >= _SYNCED_MAX:
            _SYNCED.clear()
        _SYNCED[meta["uid"]] = fingerprint
    except kubeapi.NamespaceTerminating as exc:
        _SYNCED.pop(meta["uid"], None)  # the source goes with its namespace
        logger.debug("The EventTypes of %s %s were not written: %s", source["kind"], key, exc)
    except kubeapi.ApiError as exc:
        _SYNCED.pop(meta["uid"], None)
        logger.warning(
            "The EventTypes of %s %s could not be written (retried at its next reconcile): %s",
            source["kind"], key, exc,
        )  # fmt: skip
