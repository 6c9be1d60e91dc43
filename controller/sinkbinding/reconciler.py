"""Level-based reconciler of SinkBinding (knative/eventing `pkg/reconciler/sinkbinding` with
knative.dev/pkg `webhook/psbinding`).

1. Parse `spec.subject` (`subjects.py`); an unsupported kind, a foreign namespace or a bad
   selector is SinkBindingAvailable False `SubjectInvalid` with a readable message.
2. Resolve the sink (tracked) -> `status.sinkUri` (SinkProvided). The status is written
   *before* any subject is touched: the admission webhook injects from `status.sinkUri`,
   so a subject update racing with it can only carry the new URL.
3. Patch every selected Deployment, StatefulSet, DaemonSet and CronJob in place (Undo then
   Do on each container and initContainer, `binder.py`); a changed pod template rolls the
   pods. An object another binding already owns is left to it (reason
   `SubjectsBoundElsewhere` on SinkBindingAvailable, still True). A named
   subject that does not exist is SinkBindingAvailable False `SubjectMissing` until it
   appears (the subject watches wake the binding up). Jobs and Pods are immutable and are
   bound at admission only; an object labelled `bindings.knative.dev/exclude: "true"` is
   never bound, by the webhook or here.
4. Once the binding is gone (or being deleted): release every object it owns (Undo, and
   its annotation removed). No finalizer, so a namespace never waits for this controller;
   the owner annotation on the objects makes the release happen even after a restart
   (`binder.py`). A finalizer left by an earlier kevents version is removed.

The reconciler does the binding on its own; the webhook only spares a second rollout for
objects created in opted-in namespaces (see `webhook.py` for why that split).
"""

from __future__ import annotations

import logging
from typing import cast

from controller import conditions, context, dependencies, reconciling, sinks, statuses, tracking
from controller.sinkbinding import binder, injection, subjects
from kevents import kubeapi

logger = logging.getLogger(__name__)

SINKBINDINGS = kubeapi.Resource("sources.knative.dev", "v1", "sinkbindings")
KIND = "SinkBinding"
LEGACY_FINALIZER = "sinkbindings.sources.knative.dev"
"""Set by kevents before bindings were released through the owner annotation; removed."""
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
        self.binder = binder.Binder(ctx.api)

    async def reconcile(self, key: str) -> None:
        namespace, name = reconciling.split(key)
        binding = await self.api.get_or_none(SINKBINDINGS, namespace, name)
        if binding is None or binding["metadata"].get("deletionTimestamp"):
            self._forget(key)
            released = await self.binder.release(namespace, name)
            if released:
                logger.info("SinkBinding %s is gone; released %d object(s).", key, released)
            if binding is not None:
                await self._drop_legacy_finalizer(binding)
            return
        meta = binding["metadata"]
        binding = await self._drop_legacy_finalizer(binding)
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
        if sink is None:  # a sink without URL cannot happen past SinkProvided
            return conds
        try:
            outcome = await self.binder.bind(subject, meta["name"], sink)
        except kubeapi.ApiError as exc:
            conds = conds.mark_false(AVAILABLE, "BindingFailed", exc.message or str(exc))
            raise reconciling.ReconcileError(f"{key}: {exc}", conds) from exc
        if outcome is None:
            return conds.mark_true(
                AVAILABLE, "BoundAtAdmission",
                f"{subject.kind}s are bound by the webhook when they are created",
            )  # fmt: skip
        if subject.name and not outcome.selected:
            return conds.mark_false(AVAILABLE, "SubjectMissing", f"{subject.describe()} not found")
        if outcome.held_by:
            held = ", ".join(f'"{o}" (by SinkBinding "{b}")' for o, b in sorted(
                outcome.held_by.items()))  # fmt: skip
            return conds.mark_true(
                AVAILABLE, "SubjectsBoundElsewhere", f"{subject.kind} {held} already bound"
            )
        return conds.mark_true(AVAILABLE)

    async def _drop_legacy_finalizer(self, binding: kubeapi.Json) -> kubeapi.Json:
        meta = binding["metadata"]
        finalizers: list[str] = list(meta.get("finalizers") or [])
        if LEGACY_FINALIZER not in finalizers:
            return binding
        keep = [f for f in finalizers if f != LEGACY_FINALIZER]
        body = {"metadata": {"finalizers": keep or None,
                             "resourceVersion": meta["resourceVersion"]}}  # fmt: skip
        result: kubeapi.Json = await self.api.merge_patch(
            SINKBINDINGS, meta["namespace"], meta["name"], body
        )
        return result

    def _forget(self, key: str) -> None:
        self.index.pop(key, None)
        self.scope.forget(key)

    async def _write(
        self, binding: kubeapi.Json, status: kubeapi.Json, conds: conditions.Conditions
    ) -> None:
        await statuses.write(self.api, SINKBINDINGS, self.kind, binding, status, conds)
