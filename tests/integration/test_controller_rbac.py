"""RBAC matrix: each component's ServiceAccount can do exactly what rbac/expected/ lists.

`kubectl auth can-i --list` prints every rule the apiserver grants the account (including
the cluster's built-in discovery rules), so a role that grows or shrinks fails here.
"""

from __future__ import annotations

import re

import pytest

from tests import waiting
from tests.cluster import REPO, Kube

pytestmark = pytest.mark.cluster

ACCOUNTS = [
    "kevents-controller", "kevents-dispatcher", "kevents-ping-adapter",
    "kevents-kafka-sink-ingress",
]  # fmt: skip


@pytest.fixture(scope="module")
def installed(kube: Kube) -> None:
    manifests = REPO / "manifests"
    kube.kubectl("apply", f"--filename={manifests / '100-namespace.yaml'}")
    kube.kubectl("apply", f"--filename={manifests / '200-serviceaccounts.yaml'}")
    kube.kubectl("apply", f"--filename={REPO / 'rbac'}")
    # hack/up installs the minimal Knative Serving too: its role adds the rows of
    # expected/<account>.serving.txt.
    kube.kubectl("apply", f"--filename={manifests / 'serving' / '200-rbac.yaml'}")


def normalized(listing: str) -> list[str]:
    """`can-i --list` rows with their columns' whitespace and each verb list sorted: the
    apiserver merges rules (aggregated ClusterRoles included) in no fixed order."""
    rows = []
    for line in listing.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        rows.append("  ".join(_sorted_brackets(c) for c in cells))
    return sorted(rows)


def _sorted_brackets(cell: str) -> str:
    if cell.startswith("[") and cell.endswith("]") and " " in cell:
        return "[" + " ".join(sorted(cell[1:-1].split())) + "]"
    return cell


def can_i(kube: Kube, account: str) -> str:
    return kube.kubectl(
        "auth", "can-i", "--list", "--namespace=kevents-system",
        f"--as=system:serviceaccount:kevents-system:{account}",
    ).stdout  # fmt: skip


@pytest.mark.parametrize("account", ACCOUNTS, ids=ACCOUNTS)
def test_service_account_permissions_match_expectation(
    kube: Kube, installed: None, account: str
) -> None:
    folder = REPO / "rbac" / "expected"
    serving = folder / f"{account}.serving.txt"
    rows = (folder / f"{account}.txt").read_text()
    expected = normalized(rows + (serving.read_text() if serving.exists() else ""))
    # aggregated ClusterRoles fill in asynchronously
    waiting.eventually(
        lambda: normalized(can_i(kube, account)), 30, f"{account}'s expected permissions", 0.5,
        ok=lambda actual: actual == expected,
    )  # fmt: skip


def test_apiserver_source_adapter_gets_nothing_from_us(kube: Kube, installed: None) -> None:
    """A user's ServiceAccount gains nothing from installing kevents: only what they grant."""
    out = kube.kubectl(
        "auth", "can-i", "--list", "--namespace=default",
        "--as=system:serviceaccount:default:default",
    ).stdout  # fmt: skip
    assert "knative.dev" not in out
    assert "deployments" not in out


NARROW = """
apiVersion: v1
kind: Namespace
metadata: {name: rbac-narrow-secrets}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: narrow-controller, namespace: rbac-narrow-secrets}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: rbac-narrow-secrets-controller}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kevents-controller}
subjects:
  - {kind: ServiceAccount, name: narrow-controller, namespace: rbac-narrow-secrets}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: kevents-controller-github-secrets, namespace: rbac-narrow-secrets}
rules:
  - apiGroups: [""]
    resources: ["secrets"]
    resourceNames: ["githubsecret"]
    verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: kevents-controller-github-secrets, namespace: rbac-narrow-secrets}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: kevents-controller-github-secrets}
subjects:
  - {kind: ServiceAccount, name: narrow-controller, namespace: rbac-narrow-secrets}
"""


def test_without_the_secrets_grant_the_controller_reads_only_the_secrets_granted_by_name(
    kube: Kube, installed: None
) -> None:
    """The narrow opt-in of rbac/controller-secrets.yaml: the controller's own ClusterRole
    reads no Secret; a namespace's Role (rbac/README.md) grants the named ones only."""
    kube.kubectl("apply", "--filename=-", input=NARROW)
    who = "--as=system:serviceaccount:rbac-narrow-secrets:narrow-controller"
    try:
        answers = {
            (ns, name): kube.kubectl(
                "auth",
                "can-i",
                "get",
                f"secrets/{name}",
                f"--namespace={ns}",
                who,
                check=False,
            ).stdout.strip()  # fmt: skip
            for ns, name in [
                ("rbac-narrow-secrets", "githubsecret"),
                ("rbac-narrow-secrets", "other"),
                ("kube-system", "githubsecret"),
            ]
        }
        assert answers == {
            ("rbac-narrow-secrets", "githubsecret"): "yes",
            ("rbac-narrow-secrets", "other"): "no",
            ("kube-system", "githubsecret"): "no",
        }
    finally:
        kube.kubectl("delete", "--filename=-", "--wait=false", input=NARROW, check=False)


DUCKS = """
apiVersion: v1
kind: Namespace
metadata: {name: rbac-channel-ducks}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: manipulator, namespace: rbac-channel-ducks}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: resolver, namespace: rbac-channel-ducks}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: rbac-channel-ducks-manipulator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: channelable-manipulator}
subjects:
  - {kind: ServiceAccount, name: manipulator, namespace: rbac-channel-ducks}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: rbac-channel-ducks-resolver}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: addressable-resolver}
subjects:
  - {kind: ServiceAccount, name: resolver, namespace: rbac-channel-ducks}
"""


def test_the_aggregated_channel_roles_grant_what_the_channel_spec_requires(
    kube: Kube, installed: None
) -> None:
    """rekt TestChannelConformance: a ServiceAccount bound to `channelable-manipulator` may
    get, list, watch, update, patch and delete channels and their status (InMemoryChannel and
    the generic Channel); one bound to `addressable-resolver` may get, list and watch them."""
    kube.kubectl("apply", "--filename=-", input=DUCKS)

    def answers(account: str, verbs: list[str]) -> dict[tuple[str, str], str]:
        return {
            (verb, resource): kube.kubectl(
                "auth",
                "can-i",
                verb,
                resource,
                "--namespace=rbac-channel-ducks",
                f"--as=system:serviceaccount:rbac-channel-ducks:{account}",
                check=False,
            ).stdout.strip()  # fmt: skip
            for verb in verbs
            for kind in ("inmemorychannels", "channels")
            for resource in (
                f"{kind}.messaging.knative.dev",
                f"{kind}.messaging.knative.dev/status",
            )
        }

    try:
        manipulator = ["get", "list", "watch", "update", "patch", "delete"]
        resolver = ["get", "list", "watch"]
        # aggregated ClusterRoles fill in asynchronously; the last answers name what is refused
        waiting.eventually(
            lambda: {
                f"{account} {verb} {resource}": answer
                for account, verbs in (("manipulator", manipulator), ("resolver", resolver))
                for (verb, resource), answer in answers(account, verbs).items()
            },
            30, "every verb allowed", 0.5, ok=lambda got: set(got.values()) == {"yes"},
        )  # fmt: skip
    finally:
        kube.kubectl("delete", "--filename=-", "--wait=false", input=DUCKS, check=False)
