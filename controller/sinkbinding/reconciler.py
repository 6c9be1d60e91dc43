"""Level-based reconciler of SinkBinding (knative/eventing `pkg/reconciler/sinkbinding` with
knative.dev/pkg `webhook/psbinding`).

1. Keep the finalizer `sinkbindings.sources.knative.dev` while the binding lives.
2. Parse `spec.subject` (`subjects.py`); an unsupported kind, a foreign namespace or a bad
   selector is SinkBindingAvailable False `SubjectInvalid` with a readable message.
3. Resolve the sink (tracked) -> `status.sinkUri` (SinkProvided). The status is written
   *before* any subject is touched: the admission webhook injects from `status.sinkUri`,
   so a subject update racing with it can only carry the new URL.
4. Patch every selected Deployment, StatefulSet, DaemonSet and CronJob in place (Undo then
   Do on each container and initContainer); a changed pod template rolls the pods. A named
   subject that does not exist is SinkBindingAvailable False `SubjectMissing` until it
   appears (the subject watches wake the binding up). Jobs and Pods are immutable and are
   bound at admission only; an object labelled `bindings.knative.dev/exclude: "true"` is
   never bound, by the webhook or here.
5. On deletion: Undo on every subject still selected, then drop the finalizer.

The reconciler does the binding on its own; the webhook only spares a second rollout for
objects created in opted-in namespaces (see `webhook.py` for why that split).
"""

from __future__ import annotations

import logging
from typing import Any, cast

from controller import (
    conditions,
    context,
    dependencies,
    kubeapi,
    reconciling,
    sinks,
    statuses,
    tracking,
)
from controller.apiserversource import adapter
from controller.sinkbinding import injection, subjects

logger = logging.getLogger(__name__)

SINKBINDINGS = kubeapi.Resource("sources.knative.dev", "v1", "sinkbindings")
KIND = "SinkBinding"
FINALIZER = "sinkbindings.sources.knative.dev"
AVAILABLE = "SinkBindingAvailable"
SINK_PROVIDED = "SinkProvided"
OIDC_IDENTITY_CREATED = "OIDCIdentityCreated"
OIDC_TOKEN_SECRET_CREATED = "OIDCTokenSecretCreated"
TRUST_BUNDLE_PROPAGATED = "TrustBundlePropagated"
CONDITION_SET = conditions.ConditionSet(
    (AVAILABLE, SINK_PROVIDED, OIDC_IDENTITY_CREATED, OIDC_TOKEN_SECRET_CREATED,
     TRUST_BUNDLE_PROPAGATED)
)  # fmt: skip
OIDC_DISABLED = "authentication-oidc feature disabled"
EXCLUDE = "bindings.knative.dev/exclude"


def excluded(obj: kubeapi.Json) -> bool:
    """`bindings.knative.dev/exclude: "true"` on an object keeps every binding off it."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(EXCLUDE) == "true")


def sink_of(binding: kubeapi.Json) -> injection.Sink | None:
    """What to inject, from the binding's status (None until the sink has resolved)."""
    status = binding.get("status") or {}
    url = status.get("sinkUri")
    if not url:
        return None
    overrides = (binding.get("spec") or {}).get("ceOverrides")
    return injection.Sink(
        str(url), status.get("sinkCACerts") or None, injection.ce_overrides_json(overrides)
    )


class Reconciler:
    kind = KIND

    def __init__(
        self, ctx: context.Context, scope: tracking.Scope, index: dict[str, subjects.Subject]
    ) -> None:
        self.api = ctx.api
        self.kinds = ctx.kinds
        self.scope = scope
        self.index = index
        """binding key -> its parsed subject, read by the subject watches."""

    async def reconcile(self, key: str) -> None:
        namespace, name = reconciling.split(key)
        binding = await self.api.get_or_none(SINKBINDINGS, namespace, name)
        if binding is None:
            self._forget(key)
            return
        meta = binding["metadata"]
        finalizers: list[str] = list(meta.get("finalizers") or [])
        if meta.get("deletionTimestamp"):
            await self._finalize(key, binding, finalizers)
            return
        if FINALIZER not in finalizers:
            binding = await self._set_finalizers(binding, [*finalizers, FINALIZER])
        status: kubeapi.Json = {"observedGeneration": meta.get("generation", 0)}
        conds = CONDITION_SET.initial((binding.get("status") or {}).get("conditions") or [])
        conds = conds.mark_true(OIDC_IDENTITY_CREATED, OIDC_DISABLED)
        conds = conds.mark_true(OIDC_TOKEN_SECRET_CREATED, OIDC_DISABLED)
        conds = conds.mark_true(TRUST_BUNDLE_PROPAGATED)
        deps = dependencies.Dependencies(self.api, self.kinds, namespace)
        latest = [binding]
        try:
            conds = await self._reconcile(key, latest, status, conds, deps)
        except reconciling.ReconcileError as failure:
            await self._write(latest[0], status, failure.conditions)
            raise
        finally:
            self.scope.track_only(key, deps.targets)
        await self._write(latest[0], status, conds)

    async def _reconcile(
        self,
        key: str,
        latest: list[kubeapi.Json],
        status: kubeapi.Json,
        conds: conditions.Conditions,
        deps: dependencies.Dependencies,
    ) -> conditions.Conditions:
        """`latest[0]` is the binding as last read; replaced when the status is written
        early, so the final status write carries the current resourceVersion."""
        binding = latest[0]
        meta, spec = binding["metadata"], binding.get("spec") or {}
        # 1. The subject.
        try:
            subject = subjects.parse(spec.get("subject") or {}, meta["namespace"])
        except subjects.InvalidSubject as exc:
            self.index.pop(key, None)
            conds = conds.mark_false(AVAILABLE, "SubjectInvalid", str(exc))
            raise reconciling.ReconcileError(f"{key}: {exc}", conds) from exc
        self.index[key] = subject

        # 2. The sink, published before any subject is patched.
        try:
            address = await deps.resolve(cast(sinks.DestinationDict, spec.get("sink") or {}))
        except sinks.SinkError as exc:
            conds = conds.mark_false(SINK_PROVIDED, exc.reason, exc.message)
            raise reconciling.ReconcileError(f"{key}: {exc.message}", conds) from exc
        conds = conds.mark_true(SINK_PROVIDED)
        status["sinkUri"] = address.url
        if address.ca_certs:
            status["sinkCACerts"] = address.ca_certs
        if address.audience:
            status["sinkAudience"] = address.audience
        old = binding.get("status") or {}
        if any(old.get(k) != status.get(k) for k in ("sinkUri", "sinkCACerts")):
            await self._write(binding, status, conds)
            latest[0] = await self.api.get(SINKBINDINGS, meta["namespace"], meta["name"])
        sink = sink_of({"spec": spec, "status": status})

        # 3. The subjects.
        try:
            found = await self.bind(subject, sink)
        except kubeapi.ApiError as exc:
            conds = conds.mark_false(AVAILABLE, "BindingFailed", exc.message or str(exc))
            raise reconciling.ReconcileError(f"{key}: {exc}", conds) from exc
        if found is None:
            return conds.mark_true(
                AVAILABLE, "BoundAtAdmission",
                f"{subject.kind}s are bound by the webhook when they are created",
            )  # fmt: skip
        if subject.name and not found:
            return conds.mark_false(AVAILABLE, "SubjectMissing", f"{subject.describe()} not found")
        return conds.mark_true(AVAILABLE)

    async def bind(self, subject: subjects.Subject, sink: injection.Sink | None) -> int | None:
        """Inject `sink` (None: remove) into every object the subject selects; returns how
        many it selects, None for Jobs and Pods (immutable: bound at admission only)."""
        kind = subject.spec
        if not kind.mutable:
            return None
        objects = await self._selected(subject)
        for obj in objects:
            if excluded(obj):
                continue
            lists = injection.desired(obj, kind.pod_spec, sink)
            if lists is None:
                continue
            om = obj["metadata"]
            body = injection.merge_patch(kind.pod_spec, lists, om["resourceVersion"])
            await self.api.merge_patch(kind.resource, om["namespace"], om["name"], body)
            logger.info(
                "%s %s %s/%s (%s).", "Bound" if sink else "Unbound", subject.kind,
                om["namespace"], om["name"], sink.url if sink else "env removed",
                extra={"namespace": om["namespace"], "object_name": om["name"]},
            )  # fmt: skip
        return len(objects)

    async def _selected(self, subject: subjects.Subject) -> list[kubeapi.Json]:
        resource = subject.spec.resource
        if subject.name:
            obj = await self.api.get_or_none(resource, subject.namespace, subject.name)
            return [] if obj is None else [obj]
        selector = adapter.selector_string(
            cast(adapter.LabelSelectorDict, dict(subject.selector or {}))
        )
        listed = await self.api.request(
            "GET", resource.path(subject.namespace), query=[("labelSelector", selector)]
        )
        return [dict(item) for item in listed.get("items") or []]

    async def _finalize(self, key: str, binding: kubeapi.Json, finalizers: list[str]) -> None:
        if FINALIZER not in finalizers:
            self._forget(key)
            return
        meta = binding["metadata"]
        try:
            subject = subjects.parse((binding.get("spec") or {}).get("subject") or {},
                                     meta["namespace"])  # fmt: skip
        except subjects.InvalidSubject:
            pass
        else:
            await self.bind(subject, None)
        await self._set_finalizers(binding, [f for f in finalizers if f != FINALIZER])
        self._forget(key)
        logger.info("SinkBinding %s is deleted; its subjects are unbound.", key)

    async def _set_finalizers(self, binding: kubeapi.Json, finalizers: list[str]) -> Any:
        meta = binding["metadata"]
        body = {"metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}}
        return await self.api.merge_patch(SINKBINDINGS, meta["namespace"], meta["name"], body)

    def _forget(self, key: str) -> None:
        self.index.pop(key, None)
        self.scope.forget(key)

    async def _write(
        self, binding: kubeapi.Json, status: kubeapi.Json, conds: conditions.Conditions
    ) -> None:
        await statuses.write(self.api, SINKBINDINGS, self.kind, binding, status, conds)
