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
   bound at admission only; a selected Job created since the binding that the webhook did
   not bind (its namespace outside SINK_BINDING_SELECTION_MODE, the webhook down, the sink
   not yet resolved) and not complete is SinkBindingAvailable False `SubjectsNotBound`,
   naming it: Ready means every selected subject runs with K_SINK. An object labelled
   `bindings.knative.dev/exclude: "true"` is never bound, by the webhook or here; in a
   namespace labelled so (Knative's opt-out, either selection mode) nothing is bound, what
   the binding had bound is released, and SinkBindingAvailable is False `NamespaceExcluded`
   (a label change is seen at the next resync, RESYNC_SECONDS).
4. Once the binding is gone (or being deleted): release every object it owns (Undo, and
   its annotation removed). No finalizer, so a namespace never waits for this controller;
   the owner annotation on the objects makes the release happen even after a restart
   (`binder.py`). A finalizer left by an earlier kevents version is removed.

The reconciler binds mutable subjects on its own; the webhook spares them a second rollout
and is the only way to bind Jobs and Pods (see `webhook.py` for why that split).
"""

from __future__ import annotations

import logging

from controller import context
from controller.framework import conditions, lifecycle, reconciling
from controller.sinkbinding import binder, injection, subjects
from kevents import kubeapi

logger = logging.getLogger(__name__)

SINKBINDINGS = kubeapi.Resource("sources.knative.dev", "v1", "sinkbindings")
NAMESPACES = kubeapi.Resource("", "v1", "namespaces", namespaced=False)
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


def unbound_message(names: list[str]) -> str:
    shown = ", ".join(f'"{n}"' for n in names[:5]) + (" ..." if len(names) > 5 else "")
    return (
        f"{len(names)} Job(s) created since this SinkBinding were admitted without K_SINK: "
        f"{shown}. A Job cannot be changed once created, so only the webhook can bind it: "
        "check that its namespace is selected (SINK_BINDING_SELECTION_MODE: not labelled "
        'bindings.knative.dev/exclude: "true" in exclusion mode, labelled '
        'bindings.knative.dev/include: "true" in inclusion mode) and that the webhook is '
        "reachable; then delete these Jobs (a CronJob creates the next one bound)"
    )


class Reconciler(lifecycle.Kind):
    kind = KIND
    resource = SINKBINDINGS
    condition_set = CONDITION_SET
    stale_finalizers = (LEGACY_FINALIZER,)

    def __init__(self, ctx: context.Context, index: dict[str, subjects.Subject]) -> None:
        self.index = index
        """binding key -> its parsed subject, read by the subject watches."""
        self.binder = binder.Binder(ctx.api)
        self.api = ctx.api

    async def reconcile(self, binding: kubeapi.Json, state: lifecycle.State) -> None:
        meta, spec = binding["metadata"], binding.get("spec") or {}
        for oidc in (OIDC_IDENTITY_CREATED, OIDC_TOKEN_SECRET_CREATED):
            state.mark_true(oidc, OIDC_DISABLED)
        state.mark_true(TRUST_BUNDLE_PROPAGATED)
        # 1. The subject.
        try:
            subject = subjects.parse(spec.get("subject") or {}, meta["namespace"])
        except subjects.InvalidSubject as exc:
            self.index.pop(state.key, None)
            state.mark_false(AVAILABLE, "SubjectInvalid", str(exc))
            raise state.fail(str(exc)) from exc
        self.index[state.key] = subject
        # 2. The sink, published before any subject is patched.
        address = await state.resolve(spec.get("sink"), SINK_PROVIDED)
        state.set_address("sink", address)
        old = binding.get("status") or {}
        if any(old.get(k) != state.status.get(k) for k in ("sinkUri", "sinkCACerts")):
            await state.publish()
        sink = sink_of({"spec": spec, "status": state.status})
        # 3. The subjects.
        if sink is not None:  # a sink without URL cannot happen past SinkProvided
            await self._bind(subject, meta["name"], sink, state)

    async def _bind(
        self, subject: subjects.Subject, name: str, sink: injection.Sink, state: lifecycle.State
    ) -> None:
        """Patch the selected subjects (SinkBindingAvailable)."""
        namespace = await self.api.get_or_none(NAMESPACES, None, subject.namespace)
        labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
        if labels.get(binder.EXCLUDE) == "true":
            released = await self.binder.release(subject.namespace, name)
            state.mark_false(
                AVAILABLE, "NamespaceExcluded",
                f'namespace {subject.namespace} is labelled {binder.EXCLUDE}: "true": no '
                f"subject in it is bound{f' ({released} released)' if released else ''}",
            )  # fmt: skip
            return
        try:
            outcome = await self.binder.bind(subject, name, sink)
        except kubeapi.Conflict as exc:
            # Another writer (the deployment controller, a user) changed the subject between
            # our read and our patch: retried at once on its new version. The binding is not
            # failing, so SinkBindingAvailable stays as it was (Ready went False for ~100 ms
            # on every such race before, which `kn` and users saw).
            raise state.fail(str(exc)) from exc
        except kubeapi.ApiError as exc:
            state.mark_false(AVAILABLE, "BindingFailed", exc.message or str(exc))
            raise state.fail(str(exc)) from exc
        if outcome is None and subject.kind == "Job":
            since = str(state.obj["metadata"].get("creationTimestamp") or "")
            try:
                unbound = await self.binder.admitted_unbound(subject, name, sink, since)
            except kubeapi.ApiError as exc:
                state.mark_false(AVAILABLE, "BindingFailed", exc.message or str(exc))
                raise state.fail(str(exc)) from exc
            if unbound:
                state.mark_false(AVAILABLE, "SubjectsNotBound", unbound_message(unbound))
                return
        if outcome is None:
            state.mark_true(
                AVAILABLE, "BoundAtAdmission",
                f"{subject.kind}s are bound by the webhook when they are created",
            )  # fmt: skip
        elif subject.name and not outcome.selected:
            state.mark_false(AVAILABLE, "SubjectMissing", f"{subject.describe()} not found")
        elif outcome.held_by:
            held = ", ".join(f'"{o}" (by SinkBinding "{b}")' for o, b in sorted(
                outcome.held_by.items()))  # fmt: skip
            state.mark_true(
                AVAILABLE, "SubjectsBoundElsewhere", f"{subject.kind} {held} already bound"
            )
        else:
            state.mark_true(AVAILABLE)

    async def forget(self, key: str) -> None:
        """Gone or being deleted: release every object the binding owns."""
        self.index.pop(key, None)
        namespace, name = reconciling.split(key)
        released = await self.binder.release(namespace, name)
        if released:
            logger.info("SinkBinding %s is gone; released %d object(s).", key, released)
