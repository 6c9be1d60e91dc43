"""Knative "duck" status conditions and the living condition set.

A `ConditionSet` names the dependent condition types of a kind; `Ready` is True only when
all of them are True, False as soon as one is False (with that condition's reason and
message), Unknown otherwise (knative.dev/pkg/apis `NewLivingConditionSet`).

`Conditions` is an immutable value: every `mark_*` returns a new one. `lastTransitionTime`
changes only when a condition's status changes, so re-running a reconcile that reaches
the same conclusion writes the same status (and the controller can skip the write).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, NotRequired, TypedDict, cast

READY = "Ready"
Status = Literal["True", "False", "Unknown"]


class ConditionDict(TypedDict):
    """One condition as it appears in `status.conditions` (knative.dev/pkg/apis.Condition)."""

    type: str
    status: str
    lastTransitionTime: NotRequired[str]
    reason: NotRequired[str]
    message: NotRequired[str]
    severity: NotRequired[str]


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: Status
    reason: str = ""
    message: str = ""
    last_transition: str = ""
    severity: str = ""
    """Empty means Error (the default); dependents of Ready are always Error severity."""

    def to_dict(self) -> ConditionDict:
        out: ConditionDict = {"type": self.type, "status": self.status}
        if self.last_transition:
            out["lastTransitionTime"] = self.last_transition
        if self.reason:
            out["reason"] = self.reason
        if self.message:
            out["message"] = self.message
        if self.severity:
            out["severity"] = self.severity
        return out

    @classmethod
    def from_dict(cls, raw: ConditionDict) -> Condition:
        status = raw.get("status", "Unknown")
        return cls(
            type=raw["type"],
            status=status if status in ("True", "False") else "Unknown",  # type: ignore[arg-type]
            reason=raw.get("reason", ""),
            message=raw.get("message", ""),
            last_transition=raw.get("lastTransitionTime", ""),
            severity=raw.get("severity", ""),
        )


def ready_of(obj: Mapping[str, Any]) -> ConditionDict | None:
    """The object's `Ready` condition as it stands in its status, None when it has none."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == READY:
            return cast(ConditionDict, cond)
    return None


def now() -> str:
    """RFC 3339 UTC with second precision, the format of metav1.Time / apis.VolatileTime."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class ConditionSet:
    """The dependent condition types of a kind; Ready is derived from them."""

    dependents: tuple[str, ...]

    def initial(self, existing: Iterable[ConditionDict] = (), clock: str = "") -> Conditions:
        """Start from what the object has, adding missing dependents (and Ready) as Unknown."""
        known = {c.type: c for c in (Condition.from_dict(raw) for raw in existing)}
        stamp = clock or now()
        for kind in (*self.dependents, READY):
            if kind not in known:
                known[kind] = Condition(kind, "Unknown", last_transition=stamp)
        return Conditions(self, tuple(known.values()), stamp)


@dataclass(frozen=True, slots=True)
class Conditions:
    condition_set: ConditionSet
    items: tuple[Condition, ...]
    clock: str
    """The timestamp used for transitions made through this value."""

    def get(self, kind: str) -> Condition | None:
        return next((c for c in self.items if c.type == kind), None)

    def mark_true(self, kind: str, reason: str = "", message: str = "") -> Conditions:
        return self._set(Condition(kind, "True", reason, message))

    def mark_false(self, kind: str, reason: str, message: str) -> Conditions:
        return self._set(Condition(kind, "False", reason, message))

    def mark_unknown(self, kind: str, reason: str, message: str) -> Conditions:
        return self._set(Condition(kind, "Unknown", reason, message))

    def propagate(
        self, kind: str, source: ConditionDict | None, reason: str, message: str
    ) -> Conditions:
        """`kind` takes the status, reason and message of another object's condition (its
        Ready, usually); `source` None (not reconciled yet) is Unknown with reason/message."""
        if source is None:
            return self.mark_unknown(kind, reason, message)
        status = source.get("status")
        if status == "True":
            return self.mark_true(kind)
        if status == "False":
            return self.mark_false(kind, source.get("reason", ""), source.get("message", ""))
        return self.mark_unknown(kind, source.get("reason", ""), source.get("message", ""))

    def is_ready(self) -> bool:
        ready = self.get(READY)
        return ready is not None and ready.status == "True"

    def to_list(self) -> list[ConditionDict]:
        """Sorted by type like knative.dev/pkg, so equal states serialize equally."""
        return [c.to_dict() for c in sorted(self.items, key=lambda c: c.type)]

    def _set(self, new: Condition) -> Conditions:
        updated = _upsert(self.items, new, self.clock)
        if new.type == READY:
            return replace(self, items=updated)
        return replace(self, items=_upsert(updated, self._ready(updated), self.clock))

    def _ready(self, items: Sequence[Condition]) -> Condition:
        by_type = {c.type: c for c in items}
        dependents = [by_type.get(kind) for kind in self.condition_set.dependents]
        for cond in dependents:
            if cond is not None and cond.status == "False":
                return Condition(READY, "False", cond.reason, cond.message)
        for cond in dependents:
            if cond is None or cond.status == "Unknown":
                reason = cond.reason if cond is not None else ""
                message = cond.message if cond is not None else ""
                return Condition(READY, "Unknown", reason, message)
        return Condition(READY, "True")


def _upsert(items: Sequence[Condition], new: Condition, clock: str) -> tuple[Condition, ...]:
    old = next((c for c in items if c.type == new.type), None)
    if old is not None and old.status == new.status and old.last_transition:
        stamp = old.last_transition
    else:
        stamp = clock
    stamped = replace(new, last_transition=stamp)
    rest = tuple(c for c in items if c.type != new.type)
    return (*rest, stamped)
