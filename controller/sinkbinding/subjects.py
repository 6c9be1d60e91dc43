"""A SinkBinding's subject: which kinds can be bound, where their pod spec is, which objects
a subject selects (knative.dev/pkg `tracker.Reference` + the PodSpecable duck).

Supported kinds and the path to their pod spec:

    apps/v1   Deployment, StatefulSet, DaemonSet   spec.template.spec
    batch/v1  Job                                  spec.template.spec
    batch/v1  CronJob                              spec.jobTemplate.spec.template.spec
    v1        Pod                                  spec

A Job's template and a Pod's containers are immutable once created, so those two are bound
only at admission (`admission.py`); the reconciler patches the other four in place.
Anything else is an invalid subject, reported on the binding's status, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kevents import kubeapi


@dataclass(frozen=True, slots=True)
class Kind:
    resource: kubeapi.Resource
    pod_spec: tuple[str, ...]
    """Path from the object to its pod spec."""
    mutable: bool
    """Whether the pod spec of an existing object may be changed (a rollout follows)."""


KINDS: dict[tuple[str, str], Kind] = {
    ("apps", "Deployment"): Kind(
        kubeapi.Resource("apps", "v1", "deployments"), ("spec", "template", "spec"), True
    ),
    ("apps", "StatefulSet"): Kind(
        kubeapi.Resource("apps", "v1", "statefulsets"), ("spec", "template", "spec"), True
    ),
    ("apps", "DaemonSet"): Kind(
        kubeapi.Resource("apps", "v1", "daemonsets"), ("spec", "template", "spec"), True
    ),
    ("batch", "Job"): Kind(
        kubeapi.Resource("batch", "v1", "jobs"), ("spec", "template", "spec"), False
    ),
    ("batch", "CronJob"): Kind(
        kubeapi.Resource("batch", "v1", "cronjobs"),
        ("spec", "jobTemplate", "spec", "template", "spec"),
        True,
    ),
    ("", "Pod"): Kind(kubeapi.Resource("", "v1", "pods"), ("spec",), False),
}
SUPPORTED = ", ".join(sorted(kind for _, kind in KINDS))


class InvalidSubject(ValueError):
    """The subject cannot be bound; the message is for the binding's status."""


@dataclass(frozen=True, slots=True)
class Subject:
    group: str
    kind: str
    namespace: str
    name: str = ""
    selector: Mapping[str, Any] | None = None

    @property
    def spec(self) -> Kind:
        return KINDS[(self.group, self.kind)]

    def selects(self, obj: kubeapi.Json) -> bool:
        """Whether `obj` (of this subject's kind and namespace) is bound by it."""
        meta = obj.get("metadata") or {}
        if self.name:
            return bool(meta.get("name") == self.name)
        return matches(self.selector or {}, meta.get("labels") or {})

    def describe(self) -> str:
        what = f'"{self.name}"' if self.name else f"selected by {self.selector}"
        return f"{self.kind} {what} in namespace {self.namespace}"


def parse(raw: Mapping[str, Any], binding_namespace: str) -> Subject:
    """`spec.subject` -> Subject; `InvalidSubject` says what is wrong in a full sentence."""
    api_version, kind = str(raw.get("apiVersion") or ""), str(raw.get("kind") or "")
    group, _, version = api_version.rpartition("/")
    if (group, kind) not in KINDS or version != "v1":
        raise InvalidSubject(
            f'subject kind "{kind}" in "{api_version}" cannot be bound: a SinkBinding '
            f"subject must be one of {SUPPORTED} (apps/v1, batch/v1 or v1)"
        )
    namespace = str(raw.get("namespace") or binding_namespace)
    if namespace != binding_namespace:
        raise InvalidSubject(
            f'subject namespace "{namespace}" differs from the SinkBinding\'s namespace '
            f'"{binding_namespace}"; a binding only reaches its own namespace'
        )
    name, selector = str(raw.get("name") or ""), raw.get("selector")
    if bool(name) == (selector is not None):
        raise InvalidSubject("expected exactly one of subject.name or subject.selector")
    if selector is not None:
        matches(selector, {})  # validates the operators
    return Subject(group, kind, namespace, name, selector)


def matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector semantics: every matchLabels pair and every expression holds;
    an empty selector selects everything."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
        if op == "In":
            ok = key in labels and labels[key] in values
        elif op == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif op == "Exists":
            ok = key in labels
        elif op == "DoesNotExist":
            ok = key not in labels
        else:
            raise InvalidSubject(f'"{op}" is not a valid label selector operator')
        if not ok:
            return False
    return True


def kind_of(resource_group: str, kind: str) -> Kind | None:
    return KINDS.get((resource_group, kind))
