"""The generic reconciler: one object's lifecycle around a kind's `reconcile` and `finalize`
(knative.dev/pkg's generated reconcilers, `ReconcileKind` / `FinalizeKind`).

A kind subclasses `Kind` and writes only what is its own: `reconcile(obj, state)` computes the
status fields and conditions from the object and the world, `finalize(obj, state)` undoes
what the object made outside the cluster. `GenericReconciler` does the rest, once for all
kinds, for the key the work queue hands it:

1. GET the object. Gone -> the kind's `forget(key)`, tracking dropped; done.
2. Being deleted -> `finalize` once, while our finalizer is on the object, then the finalizer
   (and any `stale_finalizers`) removed with a resourceVersion-guarded patch; `forget(key)`.
3. Alive -> our finalizer added first when the kind has one, stale ones dropped.
4. `reconcile` with a `State`: `observedGeneration` set, conditions started from the
   object's own (new dependents Unknown), a `Dependencies` whose reads are tracked.
   Then the rules of `kevents.validation` (the admission webhook's): a spec that breaks
   them (stored before the webhook existed, or while it failed open) and is not already
   Ready False is Ready False `InvalidSpec` with the webhook's message, so Ready means
   "accepted by the rules", like admission.
5. Status written with `statuses.write`: only what changed, nothing when nothing changed,
   guarded by resourceVersion (a 409 `Conflict` propagates and the controller requeues the
   key, which is read fresh). Ready transitions are logged there.
6. Errors: `ReconcileError` (a step could not complete) writes the status reached, then
   propagates; failures recorded with `State.retry_later` are raised after the write. An
   `ApiError` the kind did not handle (a 422 for a child it applies, a 403) sets Ready False
   with the apiserver's reason and message verbatim (capped at `MESSAGE_LIMIT`), so the
   status carries the real failure rather than an earlier guess; a `Conflict` only
   requeues. The controller (`loop.py`) requeues each with per-key exponential backoff; any
   other exception propagates without a status write.

A kind that changed its object itself (defaults written, a label fixed) or found it belongs
to another controller returns an `Outcome` instead of None: no status is written.

Events (`kevents.kubeevents`, source `<kind>-controller` as Knative's generated reconcilers
name theirs), recorded on the object so `kubectl describe` tells its story:
- a failed reconcile: Warning `InternalError` with the error (Knative's generated reconciler),
  or the kind's own reason (`SinkNotFound` "Sink not found: {destination}" as Knative's
  sources); a failed status write: Warning `UpdateFailed`;
- Ready changing, when no failure was recorded for it: Normal `Ready` on True, Warning with
  the condition's reason and message on False.
Repeats are one Event with a growing count (the recorder's correlation), so a failing
object retried with backoff does not flood.
"""

from __future__ import annotations

import abc
import enum
import json
import logging
from collections.abc import Collection
from typing import ClassVar, cast

from controller.framework import (
    conditions,
    dependencies,
    discovery,
    reconciling,
    sinks,
    statuses,
    tracking,
)
from kevents import kubeapi, kubeevents, validation

logger = logging.getLogger(__name__)

SINK_CONDITION = "SinkProvided"
"""The sources' sink condition: its resolution failures are Knative's `SinkNotFound` Event."""


class Outcome(enum.Enum):
    """What a reconcile that writes no status did (None: the status is written)."""

    CHANGED = "changed"
    """The kind updated the object itself; its watch event brings it back."""
    IGNORED = "ignored"
    """Not this controller's object (another class): left as it is."""


class State:
    """What one reconcile works on: `status` fields and `conditions` to write, the
    dependencies it reads (`deps`, tracked), and failures that do not stop it."""

    def __init__(
        self,
        key: str,
        obj: kubeapi.Json,
        status: kubeapi.Json,
        conds: conditions.Conditions,
        deps: dependencies.Dependencies,
        writer: GenericReconciler,
    ) -> None:
        self.key = key
        self.obj = obj
        """The object as last read or written (replaced by `publish`)."""
        self.status = status
        self.conditions = conds
        self.deps = deps
        self.failures: list[str] = []
        self.recheck: float | None = None
        """Seconds within which to reconcile again at the latest (`recheck_within`)."""
        self._writer = writer

    def mark_true(self, kind: str, reason: str = "", message: str = "") -> None:
        self.conditions = self.conditions.mark_true(kind, reason, message)

    def mark_false(self, kind: str, reason: str, message: str) -> None:
        self.conditions = self.conditions.mark_false(kind, reason, message)

    def mark_unknown(self, kind: str, reason: str, message: str) -> None:
        self.conditions = self.conditions.mark_unknown(kind, reason, message)

    def propagate(
        self, kind: str, source: conditions.ConditionDict | None, reason: str, message: str
    ) -> None:
        """`kind` follows another object's condition (`Conditions.propagate`)."""
        self.conditions = self.conditions.propagate(kind, source, reason, message)

    def fail(self, message: str) -> reconciling.ReconcileError:
        """The error to raise when a step cannot complete: the status reached so far is
        written, and the key retried with backoff. `raise state.fail(...) from exc`."""
        return reconciling.ReconcileError(f"{self.key}: {message}", self.conditions)

    def retry_later(self, message: str) -> None:
        """A failure the reconcile goes on after (its condition already marked): the status
        is written at the end, then the key is retried with backoff."""
        self.failures.append(message)

    def recheck_within(self, seconds: float) -> None:
        """Reconcile again within `seconds`, failed or not: for a dependency no watch reports
        (an object the controller may only get by name), instead of the resync or the
        growing backoff."""
        self.recheck = seconds if self.recheck is None else min(self.recheck, seconds)

    async def resolve(self, destination: object, condition: str) -> sinks.Address:
        """Resolve a Destination (its ref tracked): `condition` True, or False with the
        resolver's reason and message, and the reconcile stopped."""
        try:
            address = await self.deps.resolve(cast(sinks.DestinationDict, destination or {}))
        except sinks.SinkError as exc:
            self.mark_false(condition, exc.reason, exc.message)
            failure = self.fail(exc.message)
            if condition == SINK_CONDITION:
                failure.event = ("SinkNotFound", f"Sink not found: {_shown(destination)}")
            raise failure from exc
        self.mark_true(condition)
        return address

    def set_address(self, prefix: str, address: sinks.Address) -> None:
        """`<prefix>Uri`, `<prefix>CACerts`, `<prefix>Audience` from a resolved address."""
        self.status[f"{prefix}Uri"] = address.url
        if address.ca_certs:
            self.status[f"{prefix}CACerts"] = address.ca_certs
        if address.audience:
            self.status[f"{prefix}Audience"] = address.audience

    async def publish(self) -> None:
        """Write the status reached so far now (before touching objects that read it)."""
        await self._writer.write(self)


class Kind(abc.ABC):
    """What a kind implements; the class attributes describe it to `GenericReconciler`."""

    kind: ClassVar[str]
    """The kind reconciled (metrics label, log messages)."""
    resource: ClassVar[kubeapi.Resource]
    condition_set: ClassVar[conditions.ConditionSet | None]
    """The kind's dependent conditions; None: the kind has no status (a Namespace)."""
    finalizer: ClassVar[str | None] = None
    """Kept on every live object; `finalize` runs before it is removed."""
    stale_finalizers: ClassVar[tuple[str, ...]] = ()
    """Finalizers earlier versions set and this one no longer wants: removed when seen."""
    keep: ClassVar[Collection[str]] = statuses.KEEP
    """Status fields owned by others, never removed by the status write."""

    @abc.abstractmethod
    async def reconcile(self, obj: kubeapi.Json, state: State) -> Outcome | None:
        """Bring the world to what `obj` asks; say how it went in `state`."""

    async def finalize(self, obj: kubeapi.Json, state: State) -> None:
        """Undo what the object made that garbage collection will not (only called for
        kinds with a `finalizer`, once per deletion). A hook: nothing by default."""
        return None

    async def forget(self, key: str) -> None:
        """The object is gone or going: drop what the kind remembers about it. A hook:
        nothing by default."""
        return None


class GenericReconciler:
    """The `reconciling.Reconciler` of one `Kind` for `loop.Controller`."""

    def __init__(
        self,
        api: kubeapi.KubeApi,
        kinds: discovery.Discovery,
        implementation: Kind,
        scope: tracking.Scope | None = None,
        recorder: kubeevents.Recorder | None = None,
    ) -> None:
        """`scope`: where the dependencies each reconcile reads are tracked (None: the kind
        tracks nothing); `recorder`: where Events go (None: not recorded)."""
        self.api = api
        self.kinds = kinds
        self.implementation = implementation
        self.kind = implementation.kind
        self.resource = implementation.resource
        self.scope = scope
        self.events = kubeevents.Emitter(
            recorder, kubeevents.Source(f"{self.kind.lower()}-controller")
        )
        """Events on this kind's objects (`Manager` hands every kind the shared recorder)."""

    async def reconcile(self, key: str) -> float | None:
        namespace, name = reconciling.split(key)
        obj = await self.api.get_or_none(self.resource, namespace or None, name)
        if obj is None:
            await self._forget(key)
            return None
        if obj["metadata"].get("deletionTimestamp"):
            await self._delete(key, obj)
            return None
        obj = await self._keep_finalizers(obj, self._wanted(obj, alive=True))
        state = self._state(key, obj, {"observedGeneration": obj["metadata"].get("generation", 0)})
        try:
            outcome = await self.implementation.reconcile(obj, state)
        except reconciling.ReconcileError as failure:
            reason, message = failure.event or ("InternalError", str(failure))
            if failure.conditions is not None:
                state.conditions = failure.conditions
                await self.write(state, failed=True)
            self._event(state.obj, kubeevents.WARNING, reason, message)
            if failure.retry_within is None:
                failure.retry_within = state.recheck
            raise
        except kubeapi.Conflict:
            raise  # a stale read: requeued and read fresh, nothing to report
        except kubeapi.ApiError as exc:
            # A request the kind did not handle failed: say so, verbatim, instead of
            # leaving whatever an earlier reconcile guessed in the status.
            if self.implementation.condition_set is not None:
                reason, message = api_failure(exc)
                state.conditions = state.conditions.mark_false(conditions.READY, reason, message)
                await self.write(state, failed=True)
            self._event(state.obj, kubeevents.WARNING, "InternalError", truncate(str(exc)))
            raise
        finally:
            if self.scope is not None:
                self.scope.track_only(key, state.deps.targets)
        if outcome is not None:
            logger.debug("%s %s: %s, no status written.", self.kind, key, outcome.value)
            return None
        self._judge(obj, state)
        await self.write(state, failed=bool(state.failures))
        if state.failures:
            message = f"{key}: {'; '.join(state.failures)}"
            self._event(state.obj, kubeevents.WARNING, "InternalError", truncate(message))
            raise reconciling.ReconcileError(message, state.conditions, state.recheck)
        return state.recheck

    def _judge(self, obj: kubeapi.Json, state: State) -> None:
        """Ready False `InvalidSpec` when the spec breaks the admission rules and the kind
        has not said Ready False itself (its own reason is more precise)."""
        if self.implementation.condition_set is None:
            return
        ready = state.conditions.get(conditions.READY)
        if ready is not None and ready.status == "False":
            return
        spec = obj.get("spec") or {}
        found = validation.spec_problems(self.resource.group, self.kind, spec)
        if found:
            message = truncate("; ".join(found))
            state.conditions = state.conditions.mark_false(conditions.READY, "InvalidSpec", message)

    async def write(self, state: State, *, failed: bool = False) -> None:
        """The guarded status write of `state` (nothing when nothing changed); a Ready
        change is an Event unless `failed` (the failure's own Event tells it)."""
        impl = self.implementation
        if impl.condition_set is None:
            return
        before = statuses.old_ready(state.obj.get("status") or {})
        try:
            written = await statuses.write(
                self.api, self.resource, self.kind, state.obj, state.status, state.conditions,
                impl.keep,
            )  # fmt: skip
        except kubeapi.Conflict:
            raise
        except kubeapi.ApiError as exc:
            name = state.obj["metadata"]["name"]
            message = truncate(f"Failed to update status for {json.dumps(name)}: {exc}")
            self._event(state.obj, kubeevents.WARNING, "UpdateFailed", message)
            raise
        if written is None:
            return
        state.obj = written
        ready = state.conditions.get(conditions.READY)
        if ready is None or ready.status == before or failed:
            return
        if ready.status == "True":
            self._event(written, kubeevents.NORMAL, "Ready", f"{self.kind} is Ready")
        elif ready.status == "False":
            reason = ready.reason or "NotReady"
            self._event(
                written, kubeevents.WARNING, reason, ready.message or f"{self.kind} is not Ready"
            )

    def _event(self, obj: kubeapi.Json, type_: str, reason: str, message: str) -> None:
        """An Event on `obj` (its apiVersion and kind filled in when a list left them out)."""
        full = {"apiVersion": self.resource.api_version, "kind": self.kind, **obj}
        self.events.event(kubeevents.reference(full), type_, reason, message)

    def _state(self, key: str, obj: kubeapi.Json, status: kubeapi.Json) -> State:
        existing = (obj.get("status") or {}).get("conditions") or []
        condition_set = self.implementation.condition_set or conditions.ConditionSet(())
        namespace = obj["metadata"].get("namespace", "")
        deps = dependencies.Dependencies(self.api, self.kinds, namespace)
        return State(key, obj, status, condition_set.initial(existing), deps, self)

    async def _delete(self, key: str, obj: kubeapi.Json) -> None:
        impl = self.implementation
        if impl.finalizer is not None and impl.finalizer in _finalizers(obj):
            old = dict(obj.get("status") or {})
            old.pop("conditions", None)
            state = self._state(key, obj, old)
            try:
                await impl.finalize(obj, state)
            except reconciling.ReconcileError as failure:
                if failure.conditions is not None:
                    state.conditions = failure.conditions
                    await self.write(state)
                raise
            logger.info("%s %s finalized.", self.kind, key)
        await self._keep_finalizers(obj, self._wanted(obj, alive=False))
        await self._forget(key)

    def _wanted(self, obj: kubeapi.Json, *, alive: bool) -> list[str]:
        impl = self.implementation
        drop = {*impl.stale_finalizers, *(() if alive else (impl.finalizer,))}
        wanted = [f for f in _finalizers(obj) if f not in drop]
        if alive and impl.finalizer is not None and impl.finalizer not in wanted:
            wanted.append(impl.finalizer)
        return wanted

    async def _keep_finalizers(self, obj: kubeapi.Json, wanted: list[str]) -> kubeapi.Json:
        """`obj` with exactly `wanted` finalizers (patched when they differ)."""
        if wanted == _finalizers(obj):
            return obj
        meta = obj["metadata"]
        body = {
            "metadata": {"resourceVersion": meta["resourceVersion"], "finalizers": wanted or None}
        }
        return await self.api.merge_patch(
            self.resource, meta.get("namespace") or None, meta["name"], body
        )

    async def _forget(self, key: str) -> None:
        if self.scope is not None:
            self.scope.forget(key)
        await self.implementation.forget(key)


MESSAGE_LIMIT = 1024
"""Characters of an API error kept in a condition message (Knative caps error data at 1024
too): the apiserver's 422 for a whole pod template can be long."""


def api_failure(exc: kubeapi.ApiError) -> tuple[str, str]:
    """A condition's reason and message for a failed API request: the apiserver's reason
    (`Invalid`, `Forbidden`, ...) and its message verbatim with the request, size-capped."""
    reason = "".join(part[:1].upper() + part[1:] for part in exc.reason.split()) or "ApiError"
    return reason, truncate(str(exc))


def truncate(message: str, limit: int = MESSAGE_LIMIT) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."


_FIELD_ORDER = ("ref", "uri", "CACerts", "audience", "kind", "namespace", "name", "apiVersion")
"""Destination and KReference fields in Go's struct order: the JSON Knative's `SinkNotFound`
message shows (`json.Marshal` of the Destination)."""


def _shown(value: object) -> str:
    def ordered(v: object) -> object:
        if not isinstance(v, dict):
            return v
        rank = {k: i for i, k in enumerate(_FIELD_ORDER)}
        keys = sorted(v, key=lambda k: (rank.get(k, len(rank)), k))
        return {k: ordered(v[k]) for k in keys}

    return json.dumps(ordered(value), separators=(",", ":"))


def _finalizers(obj: kubeapi.Json) -> list[str]:
    return list(obj["metadata"].get("finalizers") or [])
