"""Level-based reconciler of Subscription (knative/eventing `pkg/reconciler/subscription`).

1. Keep the finalizer `subscriptions.messaging.knative.dev` while the Subscription lives.
2. Read the channel (tracked): ReferencesResolved Unknown `ChannelReferenceFailed` if absent.
3. Resolve subscriber, reply and delivery.deadLetterSink (tracked) -> physicalSubscription;
   a failure is ReferencesResolved False (SubscriberResolveFailed, ReplyResolveFailed,
   DeadLetterSinkResolveFailed).
4. Write the entry into the channel's `spec.subscribers` (AddedToChannel). The channel may
   be an InMemoryChannel or a Channel, which passes it on to its backing channel.
5. ChannelReady from the channel's `status.subscribers` report for this uid + generation.

On deletion the entry is removed from the channel, then the finalizer.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from controller import (
    conditions,
    context,
    dependencies,
    discovery,
    reconciling,
    sinks,
    statuses,
    tracking,
)
from controller.subscription import entry
from kevents import kubeapi

logger = logging.getLogger(__name__)

REFERENCES_RESOLVED = "ReferencesResolved"
ADDED_TO_CHANNEL = "AddedToChannel"
OIDC_IDENTITY_CREATED = "OIDCIdentityCreated"
CONDITION_SET = conditions.ConditionSet(
    (REFERENCES_RESOLVED, ADDED_TO_CHANNEL, entry.CHANNEL_READY, OIDC_IDENTITY_CREATED)
)
OIDC_DISABLED = "authentication-oidc feature disabled"
DESTINATIONS = (
    ("subscriber", "SubscriberResolveFailed", "spec.subscriber"),
    ("reply", "ReplyResolveFailed", "spec.reply"),
)


class Reconciler:
    kind = entry.KIND

    def __init__(self, ctx: context.Context, scope: tracking.Scope) -> None:
        self.api = ctx.api
        self.kinds = ctx.kinds
        self.scope = scope

    async def reconcile(self, key: str) -> None:
        namespace, name = reconciling.split(key)
        sub = await self.api.get_or_none(entry.SUBSCRIPTIONS, namespace, name)
        if sub is None:
            self.scope.forget(key)
            return
        meta = sub["metadata"]
        if meta.get("deletionTimestamp"):
            await self._finalize(key, sub)
            return
        if entry.FINALIZER not in (meta.get("finalizers") or []):
            await self._set_finalizers(sub, [*(meta.get("finalizers") or []), entry.FINALIZER])
            return  # the update brings the Subscription back
        status: kubeapi.Json = {"observedGeneration": meta.get("generation", 0)}
        conds = CONDITION_SET.initial((sub.get("status") or {}).get("conditions") or [])
        conds = conds.mark_true(OIDC_IDENTITY_CREATED, OIDC_DISABLED)
        deps = dependencies.Dependencies(self.api, self.kinds, namespace)
        try:
            conds = await self._reconcile(key, sub, status, conds, deps)
        except reconciling.ReconcileError as failure:
            await self._write(sub, status, failure.conditions)
            raise
        finally:
            self.scope.track_only(key, deps.targets)
        await self._write(sub, status, conds)

    async def _channel(
        self, sub: kubeapi.Json, deps: dependencies.Dependencies
    ) -> tuple[kubeapi.Resource, kubeapi.Json]:
        ref = (sub.get("spec") or {}).get("channel") or {}
        resource = await self.kinds.resource_for(ref.get("apiVersion", ""), ref.get("kind", ""))
        return resource, await deps.get(resource, sub["metadata"]["namespace"], ref["name"])

    async def _reconcile(
        self,
        key: str,
        sub: kubeapi.Json,
        status: kubeapi.Json,
        conds: conditions.Conditions,
        deps: dependencies.Dependencies,
    ) -> conditions.Conditions:
        spec = sub.get("spec") or {}
        # 1. The channel.
        try:
            resource, channel = await self._channel(sub, deps)
        except (discovery.UnknownKind, kubeapi.NotFound) as exc:
            message = f"Failed to get Spec.Channel or backing channel: {_describe(exc)}"
            conds = conds.mark_unknown(REFERENCES_RESOLVED, "ChannelReferenceFailed", message)
            raise reconciling.ReconcileError(f"{key}: {message}", conds) from exc

        # 2. Destinations.
        found: dict[str, sinks.Address | None] = {}
        for field, reason, path in DESTINATIONS:
            destination = cast(sinks.DestinationDict | None, spec.get(field))
            found[field] = None
            if destination:
                try:
                    found[field] = await deps.resolve(destination)
                except sinks.SinkError as exc:
                    message = f"Failed to resolve {path}: {exc.message}"
                    conds = conds.mark_false(REFERENCES_RESOLVED, reason, message)
                    raise reconciling.ReconcileError(f"{key}: {message}", conds) from exc
        delivery = cast(dependencies.DeliveryDict | None, spec.get("delivery"))
        try:
            dls = await deps.dead_letter_sink(delivery)
        except sinks.SinkError as exc:
            message = f"Failed to resolve spec.delivery.deadLetterSink: {exc.message}"
            conds = conds.mark_false(REFERENCES_RESOLVED, "DeadLetterSinkResolveFailed", message)
            raise reconciling.ReconcileError(f"{key}: {message}", conds) from exc
        subscriber, reply = found["subscriber"], found["reply"]
        physical = entry.Physical(
            subscriber_uri=subscriber.url if subscriber else None,
            subscriber_ca_certs=subscriber.ca_certs if subscriber else None,
            subscriber_audience=subscriber.audience if subscriber else None,
            reply_uri=reply.url if reply else None,
            reply_ca_certs=reply.ca_certs if reply else None,
            reply_audience=reply.audience if reply else None,
            dls_uri=(dls or {}).get("deadLetterSinkUri"),
            dls_ca_certs=(dls or {}).get("deadLetterSinkCACerts"),
            dls_audience=(dls or {}).get("deadLetterSinkAudience"),
        )
        status["physicalSubscription"] = physical.status()
        conds = conds.mark_true(REFERENCES_RESOLVED)

        # 3. Into the channel.
        try:
            await self._sync(resource, channel, entry.subscriber_spec(sub, physical))
        except kubeapi.ApiError as exc:
            message = f"Failed to sync physical Channel: {exc.message}"
            conds = conds.mark_false(ADDED_TO_CHANNEL, "PhysicalChannelSyncFailed", message)
            raise reconciling.ReconcileError(f"{key}: {message}", conds) from exc
        conds = conds.mark_true(ADDED_TO_CHANNEL)

        # 4. The channel's report.
        return entry.channel_ready(conds, channel, sub)

    async def _sync(
        self, resource: kubeapi.Resource, channel: kubeapi.Json, wanted: entry.SubscriberSpecDict
    ) -> None:
        current = list((channel.get("spec") or {}).get("subscribers") or [])
        updated = entry.upsert(current, wanted)
        if updated is not None:
            await self._patch_subscribers(resource, channel, updated)
            logger.info(
                "Subscription %s (generation %d) written into %s %s/%s.",
                wanted.get("name"), wanted["generation"], channel.get("kind"),
                channel["metadata"]["namespace"], channel["metadata"]["name"],
            )  # fmt: skip

    async def _patch_subscribers(
        self, resource: kubeapi.Resource, channel: kubeapi.Json, subscribers: list[Any]
    ) -> None:
        """Replace `spec.subscribers`, guarded by the channel's resourceVersion: another
        Subscription writing at the same time gets a 409 and is reconciled again."""
        meta = channel["metadata"]
        await self.api.merge_patch(
            resource, meta["namespace"], meta["name"],
            {"metadata": {"resourceVersion": meta["resourceVersion"]},
             "spec": {"subscribers": subscribers}},
        )  # fmt: skip

    async def _finalize(self, key: str, sub: kubeapi.Json) -> None:
        meta = sub["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if entry.FINALIZER not in finalizers:
            self.scope.forget(key)
            return
        deps = dependencies.Dependencies(self.api, self.kinds, meta["namespace"])
        try:
            resource, channel = await self._channel(sub, deps)
        except (discovery.UnknownKind, kubeapi.NotFound):
            pass  # no channel, nothing to remove from
        else:
            current = list((channel.get("spec") or {}).get("subscribers") or [])
            updated = entry.remove(current, meta["uid"])
            if updated is not None:
                await self._patch_subscribers(resource, channel, updated)
                logger.info("Subscription %s removed from its channel.", key)
        await self._set_finalizers(sub, [f for f in finalizers if f != entry.FINALIZER])
        self.scope.forget(key)

    async def _set_finalizers(self, sub: kubeapi.Json, finalizers: list[str]) -> None:
        meta = sub["metadata"]
        await self.api.merge_patch(
            entry.SUBSCRIPTIONS, meta["namespace"], meta["name"],
            {"metadata": {"resourceVersion": meta["resourceVersion"], "finalizers": finalizers}},
        )  # fmt: skip

    async def _write(
        self, sub: kubeapi.Json, status: kubeapi.Json, conds: conditions.Conditions
    ) -> None:
        await statuses.write(self.api, entry.SUBSCRIPTIONS, self.kind, sub, status, conds)


def _describe(exc: Exception) -> str:
    return exc.message if isinstance(exc, kubeapi.ApiError) else str(exc)
