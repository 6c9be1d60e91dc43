"""Does the source's ServiceAccount have get, list and watch on what the adapter watches?

One SubjectAccessReview per (resource, verb, namespace) for
`system:serviceaccount:NS:SA`, with the plural from discovery. When every namespace is
selected (`namespaceSelector: {}`) a single cluster-wide review per verb replaces the
per-namespace ones (knative/eventing#8614). Nothing on `namespaces` itself: the controller
resolves the selector with its own rights and hands the adapter the list (`namespaces`,
`allNamespaces` in `K_SOURCE_CONFIG`), as Knative's does, so the source's ServiceAccount
needs no cluster-wide namespace list.

The message starts like Knative's (`User ... cannot get, list, watch resource "pods" in API
group "" in Namespace "default"`) and names every missing verb, resource and namespace.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from kevents import kubeapi

SUBJECT_ACCESS_REVIEWS = kubeapi.Resource(
    "authorization.k8s.io", "v1", "subjectaccessreviews", namespaced=False
)
VERBS = ("get", "list", "watch")
REASON = "InsufficientPermissions"


@dataclass(frozen=True, slots=True)
class Check:
    """get/list/watch on `resource` in `namespace` ("" = cluster-wide)."""

    resource: kubeapi.Resource
    namespace: str

    def where(self) -> str:
        return f'in Namespace "{self.namespace}"' if self.namespace else "cluster-wide"


@dataclass(frozen=True, slots=True)
class Missing:
    check: Check
    verbs: tuple[str, ...]

    def describe(self) -> str:
        res = self.check.resource
        return (
            f'{", ".join(self.verbs)} resource "{res.plural}" in API group "{res.group}" '
            f"{self.check.where()}"
        )


def user(namespace: str, service_account: str) -> str:
    return f"system:serviceaccount:{namespace}:{service_account or 'default'}"


def checks(
    resources: Sequence[kubeapi.Resource],
    namespaces: Sequence[str],
    *,
    all_namespaces: bool,
) -> list[Check]:
    """The reviews to run, in a stable order."""
    scopes = [""] if all_namespaces else list(namespaces)
    out = [
        Check(res, ns if res.namespaced else "")
        for res in dict.fromkeys(resources)
        for ns in (scopes if res.namespaced else [""])
    ]
    return list(dict.fromkeys(out))


def message(subject: str, missing: Sequence[Missing]) -> str:
    what = ", ".join(m.describe() for m in missing)
    return (
        f"User {subject} cannot {what}. Grant these verbs with a Role (or ClusterRole) bound "
        f"to the ServiceAccount."
    )


async def review(api: kubeapi.KubeApi, subject: str, check: Check, verb: str) -> bool:
    attributes = {"verb": verb, "group": check.resource.group, "resource": check.resource.plural}
    if check.namespace:
        attributes["namespace"] = check.namespace
    answer = await api.create(
        SUBJECT_ACCESS_REVIEWS,
        None,
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {"user": subject, "resourceAttributes": attributes},
        },
    )
    return bool(answer.get("status", {}).get("allowed", False))


async def missing(api: kubeapi.KubeApi, subject: str, todo: Sequence[Check]) -> list[Missing]:
    """Run every review concurrently; return what is denied, in `todo` order."""
    answers = await asyncio.gather(
        *(review(api, subject, check, verb) for check in todo for verb in VERBS)
    )
    out = []
    for i, check in enumerate(todo):
        denied = tuple(v for v, ok in zip(VERBS, answers[i * 3 : i * 3 + 3], strict=True) if not ok)
        if denied:
            out.append(Missing(check, denied))
    return out
