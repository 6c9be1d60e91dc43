"""Server-side apply of a child object, refusing to take over one its parent does not
control (Knative's `NotOwned` reasons, `kmeta.IsControlledBy`), for any kind.

Kinds written before it (ContainerSource, Channel, flows, Trigger, legacy sources) carry
their own copy of this check; new kinds use this one.
"""

from __future__ import annotations

import logging

from controller.framework import lifecycle, reconciling
from kevents import kubeapi

logger = logging.getLogger(__name__)

FIELD_MANAGER = "kevents-controller"


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
    if existing is not None and not reconciling.controlled_by(existing, owner["metadata"]["uid"]):
        kind = desired["kind"]
        message = (
            f"There is an existing {kind} '{meta['name']}' that we do not own "
            f"({owner.get('kind', 'its owner')} '{owner['metadata']['name']}' is not its "
            "controller)."
        )
        state.mark_false(condition, "NotOwned", message)
        raise state.fail(message)
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
