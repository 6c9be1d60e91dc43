"""A spec converted field by field, with round-trip annotations for what does not fit.

Each `Field` names a key of the v1alpha1 spec and the key of the v1 spec it becomes, with one
pure function per direction. A field with no home on the other side (v1alpha1
`channelTemplateSpec`, v1 `config`) has `None` as that key. Keys no `Field` names are copied
as they are.

Round trip (as Knative's own conversions do with annotations): when converting a value and
back would not give it again (a `sourceAndType` filter becomes `attributes`; a v1 subscriber's
`CACerts` has no v1alpha1 key; an `ObjectReference`'s `uid` has no KReference key), the
converted object carries the original in an annotation, as `{"was": original, "as":
converted}` under the original key. The way back uses `was` only while the field still holds
`as`: a later edit at either version wins over the remembered value, so the annotation can go
stale but never wrong.

- on v1 objects (what etcd stores): `kevents.knative.dev/v1alpha1-fields`, the v1alpha1
  fragments;
- on v1alpha1 objects (what a v1alpha1 client reads and sends back on update):
  `kevents.knative.dev/v1-fields`, the v1 fragments (so `kubectl apply` of the old YAML
  keeps, say, the Broker's defaulted `spec.config`, which is immutable).
"""

from __future__ import annotations

import copy
import enum
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

V1_MEMO = "kevents.knative.dev/v1alpha1-fields"
"""On v1 objects: v1alpha1 fragments the v1 shape cannot say."""
V1ALPHA1_MEMO = "kevents.knative.dev/v1-fields"
"""On v1alpha1 objects: v1 fragments the v1alpha1 shape cannot say."""
MEMOS = (V1_MEMO, V1ALPHA1_MEMO)

Convert = Callable[[Any], Any]
"""A value of one version -> the value of the other (`None`: nothing to write)."""


def same(value: Any) -> Any:
    return copy.deepcopy(value)


class Direction(enum.Enum):
    UP = "v1alpha1 -> v1"
    DOWN = "v1 -> v1alpha1"


@dataclass(frozen=True, slots=True)
class Field:
    old: str | None
    """Key in the v1alpha1 spec (None: v1 only)."""
    new: str | None
    """Key in the v1 spec (None: v1alpha1 only)."""
    up: Convert = same
    down: Convert = same

    def keys(self, direction: Direction) -> tuple[str | None, str | None, Convert, Convert]:
        """(source key, target key, forward function, backward function)."""
        if direction is Direction.UP:
            return self.old, self.new, self.up, self.down
        return self.new, self.old, self.down, self.up


def _apply(fn: Convert, value: Any) -> Any:
    return None if value is None else fn(value)


def convert_spec(
    spec: Mapping[str, Any],
    fields: Sequence[Field],
    direction: Direction,
    recalled: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`spec` in the other version, and the memo the converted object carries.

    `recalled` is the memo the source object carries (written when it was converted from the
    target version): a remembered target value is used while the source still holds the
    value it was converted to."""
    named = {f.keys(direction)[0] for f in fields}
    out = {k: copy.deepcopy(v) for k, v in spec.items() if k not in named}
    memo: dict[str, Any] = {}
    for f in fields:
        source, target, forward, backward = f.keys(direction)
        value = spec.get(source) if source is not None else None
        converted = _apply(forward, value)
        if target is not None:
            entry = recalled.get(target)
            if isinstance(entry, dict) and "was" in entry and entry.get("as") == value:
                converted = copy.deepcopy(entry["was"])
            if converted is not None:
                out[target] = converted
        else:
            converted = None
        if source is not None and value is not None and _apply(backward, converted) != value:
            memo[source] = {"was": copy.deepcopy(value), "as": copy.deepcopy(converted)}
    return out, memo


def read_memo(annotations: Mapping[str, str] | None, key: str) -> dict[str, Any]:
    """The memo under `key`; an unreadable one is ignored (it only ever refines a result)."""
    raw = (annotations or {}).get(key)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def write_memo(annotations: dict[str, str], key: str, memo: Mapping[str, Any]) -> None:
    for old in MEMOS:
        annotations.pop(old, None)
    if memo:
        annotations[key] = json.dumps(memo, sort_keys=True, separators=(",", ":"))
