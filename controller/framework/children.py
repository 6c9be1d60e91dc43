"""A parent's children: refusing to take over an object of a child's name that the parent
does not control (Knative's `NotOwned` reason, `kmeta.IsControlledBy`), and the
server-side apply of a child behind that refusal, for every kind.

Every kind refuses through `refuse_unowned`, so a user meets one condition reason
(`NotOwned`) and one message whichever kind's child name is taken.
"""

from __future__ import annotations

import logging

from controller.framework import lifecycle, reconciling
from kevents import kubeapi

logger = logging.getLogger(__name__)

FIELD_MANAGER = "kevents-controller"

NOT_OWNED = "NotOwned"
"""The condition reason when a child's name is taken by an object the parent does not
control (Knative serving's `MarkResourceNotOwned`)."""


def not_owned_message(child: kubeapi.Json, owner: kubeapi.Json) -> str:
    """The one sentence saying `child` is not `owner`'s to change."""
    kind = child.get("kind") or "object"
    name = child.get("metadata", {}).get("name", "")
    return (
        f"There is an existing {kind} '{name}' that we do not own "
        f"({owner.get('kind') or 'its owner'} '{owner['metadata']['name']}' is not its "
        "controller)."
    )


def refuse_unowned(
    existing: kubeapi.Json | None,
    owner: kubeapi.Json,
    condition: str,
    state: lifecycle.State,
) -> None:
    """Nothing when `existing` is absent or controlled by `owner`; otherwise `condition`
    False `NotOwned` and the reconcile stopped (the status written, the key retried with
    backoff), leaving the foreign object as it is."""
    if existing is None or reconciling.controlled_by(existing, owner["metadata"]["uid"]):
        return
    message = not_owned_message(existing, owner)
    state.mark_false(condition, NOT_OWNED, message)
    raise state.fail(message)


async def apply(
    api: kubeapi.KubeApi,
    resource: kubeapi.Resource,
    owner: kubeapi.Json,
    desired: kubeapi.Json,
    condition: str,
    state: lifecycle.State,
) -> kubeapi.Json:
    """`desired` applied; `condition` False `NotOwned` (and the reconcile stopped) when an
    object of that name exists without `owner` as its controller, or False with the
    apiserver's words when it refuses the apply."""
    meta = desired["metadata"]
    existing = await api.get_or_none(resource, meta["namespace"], meta["name"])
    refuse_unowned(existing, owner, condition, state)
    try:
        applied = await api.apply(resource, meta["namespace"], desired, FIELD_MANAGER)
    except kubeapi.Conflict:
        raise
    except kubeapi.ApiError as exc:
        reason, message = lifecycle.api_failure(exc)
        state.mark_false(condition, reason, message)
        raise state.fail(message) from exc
    if existing is None:
        logger.info("Created %s %s for %s.", desired["kind"], meta["name"], state.key)
    return applied
