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

from controller import context
from controller.framework import conditions, dependencies, discovery, lifecycle, sinks
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


class Reconciler(lifecycle.Kind):
    kind = entry.KIND
    resource = entry.SUBSCRIPTIONS
    condition_set = CONDITION_SET
    finalizer = entry.FINALIZER

    def __init__(self, ctx: context.Context) -> None:
        self.api = ctx.api
        self.kinds = ctx.kinds

    async def reconcile(self, sub: kubeapi.Json, state: lifecycle.State) -> None:
        state.mark_true(OIDC_IDENTITY_CREATED, OIDC_DISABLED)
        # 1. The channel.
        try:
            resource, channel = await self._channel(sub, state.deps)
        except (discovery.UnknownKind, kubeapi.NotFound) as exc:
            message = f"Failed to get Spec.Channel or backing channel: {_describe(exc)}"
            state.mark_unknown(REFERENCES_RESOLVED, "ChannelReferenceFailed", message)
            raise state.fail(message) from exc
        # 2. Destinations.
        physical = await self._physical(sub, state)
        state.status["physicalSubscription"] = physical.status()
        state.mark_true(REFERENCES_RESOLVED)
        # 3. Into the channel.
        try:
            await self._sync(resource, channel, entry.subscriber_spec(sub, physical))
        except kubeapi.ApiError as exc:
            message = f"Failed to sync physical Channel: {exc.message}"
            state.mark_false(ADDED_TO_CHANNEL, "PhysicalChannelSyncFailed", message)
            raise state.fail(message) from exc
        state.mark_true(ADDED_TO_CHANNEL)
        # 4. The channel's report.
        state.conditions = entry.channel_ready(state.conditions, channel, sub)

    async def finalize(self, sub: kubeapi.Json, state: lifecycle.State) -> None:
        """Take the Subscription's entry out of its channel."""
        meta = sub["metadata"]
        try:
            resource, channel = await self._channel(sub, state.deps)
        except (discovery.UnknownKind, kubeapi.NotFound):
            return  # no channel, nothing to remove from
        current = list((channel.get("spec") or {}).get("subscribers") or [])
        updated = entry.remove(current, meta["uid"])
        if updated is not None:
            await self._patch_subscribers(resource, channel, updated)
            logger.info("Subscription %s removed from its channel.", state.key)

    async def _channel(
        self, sub: kubeapi.Json, deps: dependencies.Dependencies
    ) -> tuple[kubeapi.Resource, kubeapi.Json]:
        ref = (sub.get("spec") or {}).get("channel") or {}
        resource = await self.kinds.resource_for(ref.get("apiVersion", ""), ref.get("kind", ""))
        return resource, await deps.get(resource, sub["metadata"]["namespace"], ref["name"])

    async def _physical(self, sub: kubeapi.Json, state: lifecycle.State) -> entry.Physical:
        """Subscriber, reply and dead letter sink resolved (ReferencesResolved False if not)."""
        spec = sub.get("spec") or {}
        found: dict[str, sinks.Address | None] = {}
        for field, reason, path in DESTINATIONS:
            destination = cast(sinks.DestinationDict | None, spec.get(field))
            found[field] = None
            if destination:
                try:
                    found[field] = await state.deps.resolve(destination)
                except sinks.SinkError as exc:
                    message = f"Failed to resolve {path}: {exc.message}"
                    state.mark_false(REFERENCES_RESOLVED, reason, message)
                    raise state.fail(message) from exc
        delivery = cast(dependencies.DeliveryDict | None, spec.get("delivery"))
        try:
            dls = await state.deps.dead_letter_sink(delivery) or {}
        except sinks.SinkError as exc:
            message = f"Failed to resolve spec.delivery.deadLetterSink: {exc.message}"
            state.mark_false(REFERENCES_RESOLVED, "DeadLetterSinkResolveFailed", message)
            raise state.fail(message) from exc
        subscriber, reply = found["subscriber"], found["reply"]
        return entry.Physical(
            subscriber_uri=subscriber.url if subscriber else None,
            subscriber_ca_certs=subscriber.ca_certs if subscriber else None,
            subscriber_audience=subscriber.audience if subscriber else None,
            reply_uri=reply.url if reply else None,
            reply_ca_certs=reply.ca_certs if reply else None,
            reply_audience=reply.audience if reply else None,
            dls_uri=dls.get("deadLetterSinkUri"),
            dls_ca_certs=dls.get("deadLetterSinkCACerts"),
            dls_audience=dls.get("deadLetterSinkAudience"),
        )

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


def _describe(exc: Exception) -> str:
    return exc.message if isinstance(exc, kubeapi.ApiError) else str(exc)
