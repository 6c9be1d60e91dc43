"""The Configuration reconciler (knative/serving `pkg/reconciler/configuration`, with the
labeler's `routingState`):

1. Create the Revision of the current generation (`NAME-0000G`) when missing; it is never
   changed afterwards (a new template is a new generation, so a new Revision).
2. `latestCreatedRevisionName` is that Revision; `latestReadyRevisionName` the ready
   Revision of the highest generation, never moving back to an older one (as Knative's).
   Ready follows the latest created Revision: True when it is ready, False with its reason
   when it failed, Unknown while it starts.
"""

from __future__ import annotations

from controller import context
from controller.framework import children, conditions, lifecycle, reconciling
from controller.serving import resources
from kevents import kubeapi

KIND = "Configuration"
CONDITION_SET = conditions.ConditionSet(())


class Reconciler(lifecycle.Kind):
    kind = KIND
    resource = resources.CONFIGURATIONS
    condition_set = CONDITION_SET

    def __init__(self, ctx: context.Context) -> None:
        self.api = ctx.api

    async def reconcile(
        self, config: kubeapi.Json, state: lifecycle.State
    ) -> lifecycle.Outcome | None:
        meta = config["metadata"]
        name = resources.revision_name(config)
        latest = await self.api.get_or_none(resources.REVISIONS, meta["namespace"], name)
        if latest is None:
            latest = await children.apply(
                self.api, resources.REVISIONS, config, resources.revision(config),
                conditions.READY, state,
            )  # fmt: skip
        else:
            children.refuse_unowned(latest, config, conditions.READY, state)
        state.status["latestCreatedRevisionName"] = name
        revisions = await revisions_of(self.api, config)
        others = [r for r in revisions if r["metadata"]["name"] != name]
        previous = (config.get("status") or {}).get("latestReadyRevisionName")
        ready = resources.latest_ready([*others, latest], previous)
        if ready:
            state.status["latestReadyRevisionName"] = ready
        cond = conditions.ready_of(latest)
        if cond is not None and cond.get("status") == "False":
            state.mark_false(
                conditions.READY, "RevisionFailed",
                f"Revision '{name}' failed with message: {cond.get('message', '')}.",
            )  # fmt: skip
        elif ready == name:
            state.mark_true(conditions.READY)
        else:
            state.mark_unknown(
                conditions.READY, "RevisionNotReady", f"Revision '{name}' is not ready yet."
            )
        return None


async def revisions_of(api: kubeapi.KubeApi, config: kubeapi.Json) -> list[kubeapi.Json]:
    """The Revisions the Configuration owns."""
    meta = config["metadata"]
    listed = await api.request(
        "GET",
        resources.REVISIONS.path(meta["namespace"]),
        query=[("labelSelector", f"{resources.CONFIGURATION_LABEL}={meta['name']}")],
    )
    uid = meta["uid"]
    return [r for r in listed.get("items") or [] if reconciling.controlled_by(r, uid)]
