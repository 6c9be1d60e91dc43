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

from controller import channelable, context
from controller.channel import backing
from controller.framework import children, conditions, discovery, lifecycle
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


class Reconciler(lifecycle.Kind):
    kind = backing.KIND
    resource = backing.CHANNELS
    condition_set = CONDITION_SET

    def __init__(self, ctx: context.Context) -> None:
        self.api = ctx.api
        self.kinds = ctx.kinds
        self.system_namespace = ctx.options.system_namespace

    async def reconcile(
        self, channel: kubeapi.Json, state: lifecycle.State
    ) -> lifecycle.Outcome | None:
        meta = channel["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        template = cast(
            backing.TemplateDict | None, (channel.get("spec") or {}).get("channelTemplate")
        )
        if template is None:
            await self._default_template(channel, state)
            return lifecycle.Outcome.CHANGED  # the spec update brings the Channel back
        try:
            resource = await self.kinds.resource_for(template["apiVersion"], template["kind"])
        except discovery.UnknownKind as exc:
            state.mark_false(BACKING_CHANNEL_READY, "ChannelTemplateInvalid", str(exc))
            raise state.fail(str(exc)) from exc
        state.deps.targets.append((resource, namespace, name))
        existing = await self.api.get_or_none(resource, namespace, name)
        children.refuse_unowned(existing, channel, BACKING_CHANNEL_READY, state)
        desired = backing.backing_channel(channel, template)
        child = await self.api.apply(resource, namespace, desired, FIELD_MANAGER)
        if existing is None:
            logger.info("Created %s %s for Channel %s.", template["kind"], name, state.key)
        state.status["channel"] = backing.reference(template, name, namespace)
        conds = propagate(state.conditions, state.status, channel, child)
        state.conditions = channelable.mark_event_policies(conds)
        return None

    async def _default_template(self, channel: kubeapi.Json, state: lifecycle.State) -> None:
        meta = channel["metadata"]
        configmap = await self.api.get_or_none(
            backing.CONFIGMAPS, self.system_namespace, backing.DEFAULTS_CONFIGMAP
        )
        try:
            template = backing.default_template(configmap, meta["namespace"])
        except backing.TemplateError as exc:
            state.mark_false(BACKING_CHANNEL_READY, "ChannelTemplateInvalid", str(exc))
            raise state.fail(str(exc)) from exc
        await self.api.merge_patch(
            backing.CHANNELS, meta["namespace"], meta["name"],
            {"metadata": {"resourceVersion": meta["resourceVersion"]},
             "spec": {"channelTemplate": template}},
        )  # fmt: skip
        logger.info(
            "Channel %s/%s defaults to a %s.", meta["namespace"], meta["name"], template["kind"]
        )
