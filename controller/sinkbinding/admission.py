"""The SinkBinding mutating admission handler: AdmissionReview in, JSON patch out.

For a Deployment, StatefulSet, DaemonSet, Job, CronJob or Pod being created or updated, the
handler lists the SinkBindings of its namespace and applies the live binding that selects the
object and whose sink has resolved (`status.sinkUri`): the one recorded on the object if any,
else the first by name (`binder.py`), and records it on the object. Bindings being deleted
are skipped, so the reconciler's release is not undone here. Nothing to change -> allowed,
no patch.

Each review costs one namespaced LIST of SinkBindings (always fresh, the same in every
replica, leader or not); the selection mode (`selection.py`) and the namespaces the
configuration skips bound that load.
If the bindings cannot be read the answer is HTTP 500: the apiserver then applies the
webhook's `failurePolicy` (Ignore lets the object through and the reconciler binds it a
moment later; Fail rejects it with the apiserver's message naming this webhook).
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

from aiohttp import web

from controller.sinkbinding import binder, injection, reconciler, subjects
from kevents import kubeapi

logger = logging.getLogger(__name__)

PATH = "/sinkbindings"
API_KEY = web.AppKey("api", kubeapi.KubeApi)
LIST_TIMEOUT = 5.0
"""Seconds to list the bindings: well inside the webhook's 10 s `timeoutSeconds`."""


def review_response(uid: str, patch: list[dict[str, Any]] | None) -> dict[str, Any]:
    response: dict[str, Any] = {"uid": uid, "allowed": True}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


def mutate(
    group: str, kind: str, namespace: str, obj: kubeapi.Json, bindings: list[kubeapi.Json]
) -> list[dict[str, Any]] | None:
    """The JSON patch binding `obj` to its binding, None when nothing changes.

    The binding recorded on the object (`binder.ANNOTATION`) keeps it while it is live and
    selects it; otherwise the first such binding by name takes it, as the reconciler would."""
    spec = subjects.kind_of(group, kind)
    if spec is None or binder.excluded(obj):
        return None
    candidates: dict[str, injection.Sink] = {}
    for item in sorted(bindings, key=lambda b: str(b["metadata"].get("name", ""))):
        sink = reconciler.sink_of(item)
        if item["metadata"].get("deletionTimestamp") or sink is None:
            continue
        try:
            subject = subjects.parse((item.get("spec") or {}).get("subject") or {}, namespace)
        except subjects.InvalidSubject:
            continue
        if subject.spec is spec and subject.selects(obj):
            candidates[str(item["metadata"]["name"])] = sink
    if not candidates:
        return None
    owner = binder.owner_of(obj)
    name = owner if owner in candidates else next(iter(candidates))
    if owner and owner != name:
        obj = _without_owner(obj)  # its binding is gone or no longer selects it
    todo = binder.plan(obj, spec.pod_spec, name, candidates[name])
    return None if todo is None else binder.json_patch(obj, spec.pod_spec, todo)


def _without_owner(obj: kubeapi.Json) -> kubeapi.Json:
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    meta["annotations"] = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k != binder.ANNOTATION
    }
    out["metadata"] = meta
    return out


async def review(request: web.Request) -> web.Response:
    body = await request.json()
    req = body.get("request") or {}
    uid = str(req.get("uid", ""))
    kind = req.get("kind") or {}
    namespace = str(req.get("namespace") or "")
    obj = req.get("object") or {}
    if req.get("operation") not in ("CREATE", "UPDATE") or not namespace or not obj:
        return web.json_response(review_response(uid, None))
    if subjects.kind_of(str(kind.get("group", "")), str(kind.get("kind", ""))) is None:
        return web.json_response(review_response(uid, None))
    api = request.app[API_KEY]
    try:
        listed = await api.request(
            "GET", reconciler.SINKBINDINGS.path(namespace), request_timeout=LIST_TIMEOUT
        )
    except kubeapi.ApiError as exc:
        logger.warning("Cannot list the SinkBindings of %s for admission: %s", namespace, exc)
        raise web.HTTPInternalServerError(text=f"cannot list SinkBindings: {exc}") from exc
    patch = mutate(
        str(kind.get("group", "")), str(kind.get("kind", "")), namespace, obj,
        [dict(b) for b in listed.get("items") or []],
    )  # fmt: skip
    if patch:
        meta = obj.get("metadata") or {}
        logger.info(
            "Admission: bound %s %s/%s.", kind.get("kind"), namespace,
            meta.get("name") or meta.get("generateName", ""),
            extra={"namespace": namespace, "object_name": meta.get("name", "")},
        )  # fmt: skip
    return web.json_response(review_response(uid, patch))


def make_app(api: kubeapi.KubeApi) -> web.Application:
    app = web.Application()
    app[API_KEY] = api
    app.router.add_post(PATH, review)
    return app
