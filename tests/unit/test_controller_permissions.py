"""Which SubjectAccessReviews the ApiServerSource check runs, and its message."""

from __future__ import annotations

import pytest

from controller.apiserversource import permissions
from kevents import kubeapi

EVENTS = kubeapi.Resource("", "v1", "events")
DEPLOYS = kubeapi.Resource("apps", "v1", "deployments")
NODES = kubeapi.Resource("", "v1", "nodes", namespaced=False)


def where(checks: list[permissions.Check]) -> list[tuple[str, str]]:
    return [(c.resource.plural, c.namespace) for c in checks]


# No review of `namespaces`: as Knative's, the controller resolves a namespaceSelector itself
# and the adapter watches the namespaces it is given (rekt's selector tests grant the source's
# account the watched kind only).
CASES = {
    "own-namespace": (([EVENTS], ["a"], False), [("events", "a")]),
    "selected-namespaces": (
        ([EVENTS, DEPLOYS], ["a", "b"], False),
        [("events", "a"), ("events", "b"), ("deployments", "a"), ("deployments", "b")],
    ),
    "all-namespaces-one-cluster-wide-review": (
        ([EVENTS], ["a", "b", "c"], True), [("events", "")]
    ),
    "cluster-scoped-kind": (([NODES], ["a", "b"], False), [("nodes", "")]),
    "duplicates-collapsed": (([EVENTS, EVENTS], ["a"], False), [("events", "a")]),
}  # fmt: skip


@pytest.mark.parametrize(("args", "want"), CASES.values(), ids=CASES.keys())
def test_checks(args: tuple[list[kubeapi.Resource], list[str], bool],
                want: list[tuple[str, str]]) -> None:  # fmt: skip
    resources, namespaces, all_ns = args
    got = permissions.checks(resources, namespaces, all_namespaces=all_ns)
    assert where(got) == want


def test_message_names_verbs_resource_group_and_namespace() -> None:
    missing = [
        permissions.Missing(permissions.Check(EVENTS, "ns"), ("watch",)),
        permissions.Missing(permissions.Check(DEPLOYS, ""), ("get", "list", "watch")),
    ]
    text = permissions.message(permissions.user("ns", "sa"), missing)
    assert text.startswith(
        'User system:serviceaccount:ns:sa cannot watch resource "events" in API group "" '
        'in Namespace "ns", get, list, watch resource "deployments" in API group "apps" '
        "cluster-wide."
    )


def test_user_defaults_to_default_service_account() -> None:
    assert permissions.user("ns", "") == "system:serviceaccount:ns:default"
