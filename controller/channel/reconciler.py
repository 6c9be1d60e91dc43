"""Level-based reconciler of Channel (knative/eventing `pkg/reconciler/channel`).

Default the channelTemplate (written into the spec once), apply the backing channel with
the Channel's subscribers and delivery, then propagate the backing channel's status:
Ready -> BackingChannelReady, address -> Addressable, `subscribers`, and the dead letter
sink it resolved -> DeadLetterSinkResolved. Subscriptions write into the Channel's
`spec.subscribers`; this reconciler carries them down to the backing channel.
"""

from __future__ import annotations

import logging
from typing import cast

from controller import (
    channelable,
    conditions,
    context,
    dependencies,
    discovery,
    reconciling,
    statuses,
    tracking,
)
from controller.channel import backing
from kevents import kubeapi

logger = logging.getLogger(__name__)

FIELD_MANAGER = "kevents-controller"
BACKING_CHANNEL_READY = "BackingChannelReady"
CONDITION_SET = conditions.ConditionSet(
    (BACKING_CHANNEL_READY, channelable.ADDRESSABLE, channelable.DEAD_LETTER_SINK_RESOLVED,
     channelable.EVENT_POLICIES_READY)
)  # fmt: skip


def propagate(
    conds: conditions.Conditions, status: kubeapi.Json, channel: kubeapi.Json, child: kubeapi.Json
) -> conditions.Conditions:
    """PropagateStatuses: the backing channel's Ready, address, subscribers and DLS."""
    child_status = child.get("status") or {}
    ready = next(
        (c for c in child_status.get("conditions") or [] if c.get("type") == conditions.READY),
        None,
    )
    if ready is None:
        conds = conds.mark_unknown(
            BACKING_CHANNEL_READY,
            "BackingChannelNotConfigured",
            "BackingChannel has not yet been reconciled.",
        )
    elif ready.get("status") == "True":
        conds = conds.mark_true(BACKING_CHANNEL_READY)
    elif ready.get("status") == "False":
        conds = conds.mark_false(
            BACKING_CHANNEL_READY, ready.get("reason", ""), ready.get("message", "")
        )
    else:
        conds = conds.mark_unknown(
            BACKING_CHANNEL_READY, ready.get("reason", ""), ready.get("message", "")
        )
    address = child_status.get("address")
    if isinstance(address, dict) and address.get("url"):
        status["address"] = address
        status["addresses"] = child_status.get("addresses") or [address]
        conds = conds.mark_true(channelable.ADDRESSABLE)
    else:
        conds = conds.mark_false(
            channelable.ADDRESSABLE, "EmptyHostname", "hostname is the empty string"
        )
    if child_status.get("subscribers"):
        status["subscribers"] = child_status["subscribers"]
    wants_dls = bool(((channel.get("spec") or {}).get("delivery") or {}).get("deadLetterSink"))
    if not wants_dls:
        return channelable.mark_dead_letter_sink(conds, status, None)
    if child_status.get("deadLetterSinkUri"):
        fields = ("deadLetterSinkUri", "deadLetterSinkCACerts", "deadLetterSinkAudience")
        resolved = {k: child_status[k] for k in fields if child_status.get(k)}
        return channelable.mark_dead_letter_sink(conds, status, resolved)
    return conds.mark_unknown(
        channelable.DEAD_LETTER_SINK_RESOLVED,
        "DeadLetterSinkNotResolved",
        "The backing channel has not resolved the dead letter sink yet.",
    )


class Reconciler:
    kind = backing.KIND

    def __init__(self, ctx: context.Context, scope: tracking.Scope) -> None:
        self.api = ctx.api
        self.kinds = ctx.kinds
        self.scope = scope
        self.system_namespace = ctx.options.system_namespace

    async def reconcile(self, key: str) -> None:
        namespace, name = reconciling.split(key)
        channel = await self.api.get_or_none(backing.CHANNELS, namespace, name)
        if channel is None or channel["metadata"].get("deletionTimestamp"):
            self.scope.forget(key)
            return
        spec = channel.get("spec") or {}
        template = cast(backing.TemplateDict | None, spec.get("channelTemplate"))
        conds = CONDITION_SET.initial((channel.get("status") or {}).get("conditions") or [])
        status: kubeapi.Json = {"observedGeneration": channel["metadata"].get("generation", 0)}
        if template is None:
            await self._default_template(channel, conds, status)
            return  # the spec update brings the Channel back with its template
        deps = dependencies.Dependencies(self.api, self.kinds, namespace)
        try:
            conds = await self._reconcile(key, channel, template, status, conds, deps)
        except reconciling.ReconcileError as failure:
            await self._write(channel, status, failure.conditions)
            raise
        finally:
            self.scope.track_only(key, deps.targets)
        await self._write(channel, status, conds)

    async def _default_template(
        self, channel: kubeapi.Json, conds: conditions.Conditions, status: kubeapi.Json
    ) -> None:
        meta = channel["metadata"]
        configmap = await self.api.get_or_none(
            backing.CONFIGMAPS, self.system_namespace, backing.DEFAULTS_CONFIGMAP
        )
        try:
            template = backing.default_template(configmap, meta["namespace"])
        except backing.TemplateError as exc:
            conds = conds.mark_false(BACKING_CHANNEL_READY, "ChannelTemplateInvalid", str(exc))
            await self._write(channel, status, conds)
            raise reconciling.ReconcileError(f"{meta['name']}: {exc}", conds) from exc
        await self.api.merge_patch(
            backing.CHANNELS, meta["namespace"], meta["name"],
            {"metadata": {"resourceVersion": meta["resourceVersion"]},
             "spec": {"channelTemplate": template}},
        )  # fmt: skip
        logger.info(
            "Channel %s/%s defaults to a %s.", meta["namespace"], meta["name"], template["kind"]
        )

    async def _reconcile(
        self,
        key: str,
        channel: kubeapi.Json,
        template: backing.TemplateDict,
        status: kubeapi.Json,
        conds: conditions.Conditions,
        deps: dependencies.Dependencies,
    ) -> conditions.Conditions:
        meta = channel["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        try:
            resource = await self.kinds.resource_for(template["apiVersion"], template["kind"])
        except discovery.UnknownKind as exc:
            conds = conds.mark_false(BACKING_CHANNEL_READY, "ChannelTemplateInvalid", str(exc))
            raise reconciling.ReconcileError(f"{key}: {exc}", conds) from exc
        deps.targets.append((resource, namespace, name))
        existing = await self.api.get_or_none(resource, namespace, name)
        if existing is not None and not reconciling.controlled_by(existing, meta["uid"]):
            message = (
                f"{template['kind']} {namespace}/{name} exists and is not owned by this Channel"
            )
            conds = conds.mark_false(BACKING_CHANNEL_READY, "ChannelFailure", message)
            raise reconciling.ReconcileError(f"{key}: {message}", conds)
        desired = backing.backing_channel(channel, template)
        child = await self.api.apply(resource, namespace, desired, FIELD_MANAGER)
        if existing is None:
            logger.info("Created %s %s for Channel %s.", template["kind"], name, key)
        status["channel"] = backing.reference(template, name, namespace)
        conds = propagate(conds, status, channel, child)
        return channelable.mark_event_policies(conds)

    async def _write(
        self, channel: kubeapi.Json, status: kubeapi.Json, conds: conditions.Conditions
    ) -> None:
        await statuses.write(self.api, backing.CHANNELS, self.kind, channel, status, conds)
