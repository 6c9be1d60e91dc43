"""Which namespaces and objects the SinkBinding webhook reviews: Knative's
`SINK_BINDING_SELECTION_MODE` (knative.dev/pkg `psbinding.ExclusionSelector` /
`InclusionSelector`), written by the controller into the selectors of the
MutatingWebhookConfiguration, as Knative's webhook does.

- `exclusion` (Knative's default): every namespace and object, except those labelled
  `bindings.knative.dev/exclude: "true"`. The docs' samples (a CronJob's Jobs in an
  unlabelled namespace) are bound at admission.
- `inclusion`: namespaces labelled `bindings.knative.dev/include: "true"`, and objects
  labelled so elsewhere; `exclude` still wins.

Either way the configuration has two entries, which partition what is reviewed (so no
object is reviewed twice): the first for the namespace-wide selection, the second for
objects labelled `include` that the first does not take. Only the expressions on those two
label keys are the controller's: any other expression of a selector (the shipped
`kubernetes.io/metadata.name NotIn [kube-system, kevents-system]`, a test's single
namespace) is kept, and so are `failurePolicy`, `timeoutSeconds` and the rules.
"""

from __future__ import annotations

import enum
from collections.abc import MutableMapping, Sequence
from typing import Any

INCLUDE = "bindings.knative.dev/include"
EXCLUDE = "bindings.knative.dev/exclude"
OWNED = (INCLUDE, EXCLUDE)


class Mode(enum.StrEnum):
    EXCLUSION = "exclusion"
    INCLUSION = "inclusion"


def _is(key: str) -> dict[str, Any]:
    return {"key": key, "operator": "In", "values": ["true"]}


def _not(key: str) -> dict[str, Any]:
    return {"key": key, "operator": "NotIn", "values": ["true"]}


Selectors = tuple[list[dict[str, Any]], list[dict[str, Any]]]
"""(namespaceSelector, objectSelector) expressions on the owned keys."""


def selectors(mode: Mode) -> list[Selectors]:
    """The owned expressions of the two webhook entries, in order."""
    if mode is Mode.INCLUSION:
        return [
            ([_is(INCLUDE), _not(EXCLUDE)], [_not(EXCLUDE)]),
            ([_not(INCLUDE), _not(EXCLUDE)], [_is(INCLUDE)]),
        ]
    return [
        ([_not(EXCLUDE)], [_not(EXCLUDE), _not(INCLUDE)]),
        ([_not(EXCLUDE)], [_is(INCLUDE)]),
    ]


def _merged(selector: Any, owned: list[dict[str, Any]]) -> dict[str, Any]:
    """`selector` with its owned-key expressions replaced by `owned` (matchLabels on an owned
    key dropped), everything else kept."""
    out = dict(selector or {})
    labels = {k: v for k, v in (out.get("matchLabels") or {}).items() if k not in OWNED}
    others = [e for e in out.get("matchExpressions") or [] if e.get("key") not in OWNED]
    out.pop("matchLabels", None)
    if labels:
        out["matchLabels"] = labels
    out["matchExpressions"] = others + owned
    return out


def apply(webhooks: Sequence[MutableMapping[str, Any]], mode: Mode) -> bool:
    """Write the mode's selectors into the entries (in place); True when one changed."""
    changed = False
    for hook, (namespaces, objects) in zip(webhooks, selectors(mode), strict=False):
        for field, owned in (("namespaceSelector", namespaces), ("objectSelector", objects)):
            merged = _merged(hook.get(field), owned)
            if hook.get(field) != merged:
                hook[field], changed = merged, True
    return changed
