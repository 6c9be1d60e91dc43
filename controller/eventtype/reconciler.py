"""Level-based reconciler of EventType, as Knative's (`pkg/reconciler/eventtype`): the one
condition `ReferenceExists` decides Ready.

- no `spec.reference` (or an empty one): True `ReferenceNotSet` -- a registry entry need
  not name where its events go;
- the referenced object exists: True (its kind resolved through discovery, the read
  tracked, so a Broker created later turns the EventType Ready);
- it does not (or its kind is unknown): False `ResourceDoesNotExist`, Ready False.
"""

from __future__ import annotations

from controller.framework import conditions, discovery, lifecycle
from kevents import kubeapi

EVENTTYPES = kubeapi.Resource("eventing.knative.dev", "v1beta2", "eventtypes")
REFERENCE_EXISTS = "ReferenceExists"
CONDITION_SET = conditions.ConditionSet((REFERENCE_EXISTS,))
DOES_NOT_EXIST = "ResourceDoesNotExist"
DOES_NOT_EXIST_MESSAGE = "Resource in spec.reference does not exist"


def empty(reference: kubeapi.Json | None) -> bool:
    return not reference or not any(
        reference.get(k) for k in ("kind", "group", "name", "apiVersion", "namespace", "address")
    )


class Reconciler(lifecycle.Kind):
    kind = "EventType"
    resource = EVENTTYPES
    condition_set = CONDITION_SET

    def __init__(self, kinds: discovery.Discovery) -> None:
        self.kinds = kinds

    async def reconcile(self, eventtype: kubeapi.Json, state: lifecycle.State) -> None:
        reference = (eventtype.get("spec") or {}).get("reference")
        if empty(reference):
            state.mark_true(REFERENCE_EXISTS, "ReferenceNotSet", "spec.reference is not set")
            return
        assert reference is not None
        namespace = reference.get("namespace") or eventtype["metadata"]["namespace"]
        api_version = reference.get("apiVersion") or f"{reference.get('group', '')}/"
        try:
            resource = await self.kinds.resource_for(api_version, reference.get("kind", ""))
            await state.deps.get(resource, namespace, reference.get("name", ""))
        except (discovery.UnknownKind, kubeapi.NotFound):
            state.mark_false(REFERENCE_EXISTS, DOES_NOT_EXIST, DOES_NOT_EXIST_MESSAGE)
            return
        state.mark_true(REFERENCE_EXISTS)
