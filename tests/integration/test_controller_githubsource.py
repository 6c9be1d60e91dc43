"""The GitHubSource controller against the real apiserver and a fake GitHub hooks API.

The reconciler runs in-process; `spec.githubAPIURL` points at `tests.githubhooks.FakeGitHub`
on 127.0.0.1, which checks the token and answers like GitHub. No node agent runs pods here,
so the adapter Deployment never becomes available: Deployed (and Ready) stay Unknown.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client

from controller.githubsource import adapter, reconciler
from kevents import kubeapi
from tests.cluster import Kube
from tests.githubhooks import FakeGitHub
from tests.integration import controllers as c

pytestmark = pytest.mark.cluster

SOURCES = reconciler.GITHUBSOURCES
TOKEN = "ghp_kevents-test-access-token-7Qz9"
HMAC = "kevents-test-hmac-secret-Lp3x"
REPO_NAME = "octo-org/hello-world"
COLLECTION = "/repos/octo-org/hello-world/hooks"


@pytest.fixture(scope="module")
def crds(kube: Kube) -> None:
    kube.install_crds("githubsources.sources.knative.dev")


@pytest.fixture
def sources(kube: Kube, crds: None, namespace: str) -> Iterator[str]:
    """The test namespace; afterwards any GitHubSource left in it loses its finalizer (no
    controller runs any more to remove it, and it would hold the namespace forever)."""
    yield namespace
    names = kube.kubectl("get", "githubsources", "-n", namespace, "-o", "name").stdout.split()
    for name in names:
        kube.kubectl("patch", name, "-n", namespace, "--type=merge",
                     "-p", '{"metadata":{"finalizers":null}}', check=False)  # fmt: skip


@pytest.fixture
async def github() -> AsyncIterator[FakeGitHub]:
    async with FakeGitHub(TOKEN) as fake:
        yield fake


def secret_yaml(**data: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "github-secret"},
        "type": "Opaque", "stringData": data,
    })  # fmt: skip


def source_yaml(api_url: str, events: list[str], name: str = "gh", **spec: Any) -> str:
    return yaml.safe_dump({
        "apiVersion": "sources.knative.dev/v1alpha1", "kind": "GitHubSource",
        "metadata": {"name": name},
        "spec": {
            "ownerAndRepository": REPO_NAME, "eventTypes": events, "githubAPIURL": api_url,
            "accessToken": {"secretKeyRef": {"name": "github-secret", "key": "accessToken"}},
            "secretToken": {"secretKeyRef": {"name": "github-secret", "key": "secretToken"}},
            "sink": {"ref": {"apiVersion": "v1", "kind": "Service", "name": "event-display"}},
            **spec,
        },
    })  # fmt: skip


def assert_no_secret_in(text: str) -> None:
    for value in (TOKEN, HMAC):
        assert value not in text
        assert base64.b64encode(value.encode()).decode() not in text


async def test_webhook_is_created_updated_and_deleted_with_the_source(
    kube: Kube, api_client: client.ApiClient, sources: str, github: FakeGitHub,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    api, ns = kubeapi.KubeApi(api_client), sources
    kube.apply(c.SINK_SERVICE + "---\n" + secret_yaml(accessToken=TOKEN, secretToken=HMAC), ns)
    kube.apply(source_yaml(github.url, ["push", "issues"]), ns)
    async with c.running(api_client, ns, ["GitHubSource"]):
        source = await c.eventually(
            lambda: api.get(SOURCES, ns, "gh"),
            lambda s: c.condition(s, "WebhookConfigured").get("status") == "True",
        )
        uid = source["metadata"]["uid"]
        service = adapter.name("gh", uid)
        [created] = github.calls_of("POST")
        assert created.path == COLLECTION
        assert created.authorization == f"Bearer {TOKEN}"
        assert created.body == {
            "name": "web", "active": True, "events": ["push", "issues"],
            "config": {"url": f"http://{service}.{ns}.svc.cluster.local",
                       "content_type": "json", "secret": HMAC, "insecure_ssl": "0"},
        }  # fmt: skip
        [hook_id] = github.hooks[COLLECTION]
        status = source["status"]
        assert status["webhookIDKey"] == str(hook_id)
        assert status["sinkUri"] == c.service_url("event-display", ns)
        assert status["ceAttributes"] == [
            {"type": "dev.knative.source.github.push", "source": f"{github.url}/{REPO_NAME}"},
            {"type": "dev.knative.source.github.issues", "source": f"{github.url}/{REPO_NAME}"},
        ]
        # The node agent runs the adapter pod: Deployed, then Ready.
        source = await c.eventually(
            lambda: api.get(SOURCES, ns, "gh"),
            lambda s: c.condition(s, "Ready").get("status") == "True", within=90,
        )  # fmt: skip
        assert c.statuses(source) == {
            "SecretsProvided": "True", "SinkProvided": "True", "WebhookConfigured": "True",
            "Deployed": "True", "Ready": "True",
        }  # fmt: skip
        assert source["metadata"]["finalizers"] == ["githubsources.sources.knative.dev"]
        dep = await api.get(adapter.DEPLOYMENTS, ns, service)
        svc = await api.get(adapter.SERVICES, ns, service)
        for child in (dep, svc):
            assert child["metadata"]["ownerReferences"][0]["uid"] == uid
        env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["GITHUB_SECRET_TOKEN"] == {"name": "GITHUB_SECRET_TOKEN", "valueFrom": {
            "secretKeyRef": {"name": "github-secret", "key": "secretToken"}}}  # fmt: skip
        assert env["GITHUB_EVENT_TYPES"]["value"] == "push,issues"
        assert env["K_SINK"]["value"] == c.service_url("event-display", ns)
        assert_no_secret_in(json.dumps(source) + json.dumps(dep))

        # A change of eventTypes PATCHes the same hook.
        kube.kubectl("patch", "githubsource", "gh", "-n", ns, "--type=merge",
                     "-p", '{"spec":{"eventTypes":["pull_request"]}}')  # fmt: skip
        await c.eventually(lambda: _async(github.calls_of("PATCH")), bool)
        [edited] = github.calls_of("PATCH")
        assert edited.path == f"{COLLECTION}/{hook_id}"
        assert edited.authorization == f"Bearer {TOKEN}"
        assert edited.body["events"] == ["pull_request"]
        assert github.hooks[COLLECTION][hook_id]["events"] == ["pull_request"]
        assert github.hooks[COLLECTION][hook_id]["secret"] == HMAC
        await c.eventually(
            lambda: api.get(SOURCES, ns, "gh"),
            lambda s: s["status"]["observedGeneration"] == s["metadata"]["generation"],
        )

        # Deleting the source deletes the hook, then the finalizer goes.
        kube.kubectl("delete", "githubsource", "gh", "-n", ns, "--wait=false")
        await c.eventually(
            lambda: api.request("GET", SOURCES.path(ns)), lambda listed: listed["items"] == []
        )
    [deleted] = github.calls_of("DELETE")
    assert deleted.path == f"{COLLECTION}/{hook_id}"
    assert deleted.authorization == f"Bearer {TOKEN}"
    assert github.hooks[COLLECTION] == {}
    assert len(github.calls_of("POST")) == 1  # resyncs and status writes cost no request
    assert "Created webhook" in caplog.text
    assert_no_secret_in(caplog.text)


async def _async(value: Any) -> Any:
    return value


GITHUB_ERRORS = {
    "bad-credentials": (
        "ghp_revoked-token-0000", None, "CreationFailed",
        f"POST {{url}}{COLLECTION}: 401 Bad credentials",
    ),
    "validation-failed": (
        TOKEN, (422, {"message": "Validation Failed"}), "CreationFailed",
        f"POST {{url}}{COLLECTION}: 422 Validation Failed",
    ),
    "server-error": (
        TOKEN, (502, {"message": "Server Error"}), "CreationFailed",
        f"POST {{url}}{COLLECTION}: 502 Server Error",
    ),
}  # fmt: skip


@pytest.mark.parametrize(
    ("token", "failure", "reason", "message"), GITHUB_ERRORS.values(), ids=GITHUB_ERRORS.keys()
)
async def test_github_errors_surface_in_webhook_configured(
    kube: Kube, api_client: client.ApiClient, sources: str, github: FakeGitHub,
    caplog: pytest.LogCaptureFixture,
    token: str, failure: tuple[int, dict[str, Any]] | None, reason: str, message: str,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    api, ns = kubeapi.KubeApi(api_client), sources
    if failure is not None:
        github.fail_next["POST"] = failure
    kube.apply(c.SINK_SERVICE + "---\n" + secret_yaml(accessToken=token, secretToken=HMAC), ns)
    kube.apply(source_yaml(github.url, ["push"]), ns)
    async with c.running(api_client, ns, ["GitHubSource"]):
        wanted = "False" if failure is None else "True"  # a failure once: the retry succeeds
        source = await c.eventually(
            lambda: api.get(SOURCES, ns, "gh"),
            lambda s: c.condition(s, "WebhookConfigured").get("status") == wanted,
        )
    expected = "Failed to create the webhook on GitHub: " + message.format(url=github.url)
    if failure is None:
        cond = c.condition(source, "WebhookConfigured")
        assert (cond["reason"], cond["message"]) == (reason, expected)
        assert c.condition(source, "Ready")["status"] == "False"
        assert "webhookIDKey" not in source["status"]
        for value in (token, base64.b64encode(token.encode()).decode()):
            assert value not in json.dumps(source) + caplog.text
    else:
        assert len(github.calls_of("POST")) == 2
        assert f"Ready=False ({reason}: {expected})" in caplog.text
    assert_no_secret_in(json.dumps(source) + caplog.text)


MISSING = {
    "no-secret": (None, "AccessTokenNotFound", 'Secret "github-secret" not found in namespace'),
    "no-access-token-key": (
        {"secretToken": HMAC}, "AccessTokenNotFound",
        'key "accessToken" not found in Secret "github-secret"',
    ),
    "no-secret-token-key": (
        {"accessToken": TOKEN}, "SecretTokenNotFound",
        'key "secretToken" not found in Secret "github-secret"',
    ),
}  # fmt: skip


@pytest.mark.parametrize(("data", "reason", "message"), MISSING.values(), ids=MISSING.keys())
async def test_missing_secret_sets_secrets_provided_false(
    kube: Kube, api_client: client.ApiClient, sources: str, github: FakeGitHub,
    data: dict[str, str] | None, reason: str, message: str,
) -> None:  # fmt: skip
    api, ns = kubeapi.KubeApi(api_client), sources
    kube.apply(c.SINK_SERVICE, ns)
    if data is not None:
        kube.apply(secret_yaml(**data), ns)
    kube.apply(source_yaml(github.url, ["push"]), ns)
    async with c.running(api_client, ns, ["GitHubSource"]):
        source = await c.eventually(
            lambda: api.get(SOURCES, ns, "gh"),
            lambda s: c.condition(s, "SecretsProvided").get("status") == "False",
        )
    cond = c.condition(source, "SecretsProvided")
    assert cond["reason"] == reason
    assert message in cond["message"]
    assert c.condition(source, "Ready") | {"lastTransitionTime": ""} == {
        "type": "Ready", "status": "False", "reason": reason, "message": cond["message"],
        "lastTransitionTime": "",
    }  # fmt: skip
    assert github.calls == []
    assert_no_secret_in(json.dumps(source))


async def test_hook_with_our_url_already_on_github_is_adopted(
    kube: Kube, api_client: client.ApiClient, sources: str, github: FakeGitHub
) -> None:
    """A hook whose id was lost (its status write failed) is found by URL and updated,
    instead of failing forever on GitHub's "Hook already exists"."""
    api, ns = kubeapi.KubeApi(api_client), sources
    kube.apply(c.SINK_SERVICE + "---\n" + secret_yaml(accessToken=TOKEN, secretToken=HMAC), ns)
    kube.apply(source_yaml(github.url, ["push"]), ns)
    source = await api.get(SOURCES, ns, "gh")
    url = f"http://{adapter.name('gh', source['metadata']['uid'])}.{ns}.svc.cluster.local"
    seeded = github.seed(COLLECTION, url, ["issues"])
    async with c.running(api_client, ns, ["GitHubSource"]):
        source = await c.eventually(
            lambda: api.get(SOURCES, ns, "gh"),
            lambda s: c.condition(s, "WebhookConfigured").get("status") == "True",
        )
        assert source["status"]["webhookIDKey"] == str(seeded)
        assert [call.method for call in github.calls] == ["POST", "GET", "PATCH"]
        assert github.hooks[COLLECTION][seeded]["events"] == ["push"]
        assert github.hooks[COLLECTION][seeded]["secret"] == HMAC

        # GitHub no longer has the hook when the source goes: deletion completes anyway.
        del github.hooks[COLLECTION][seeded]
        kube.kubectl("delete", "githubsource", "gh", "-n", ns, "--wait=false")
        await c.eventually(
            lambda: api.request("GET", SOURCES.path(ns)), lambda listed: listed["items"] == []
        )
    assert [call.method for call in github.calls][-1] == "DELETE"


async def test_moving_to_another_repository_moves_the_hook(
    kube: Kube, api_client: client.ApiClient, sources: str, github: FakeGitHub
) -> None:
    api, ns = kubeapi.KubeApi(api_client), sources
    kube.apply(c.SINK_SERVICE + "---\n" + secret_yaml(accessToken=TOKEN, secretToken=HMAC), ns)
    kube.apply(source_yaml(github.url, ["push"]), ns)
    async with c.running(api_client, ns, ["GitHubSource"]):
        source = await c.eventually(
            lambda: api.get(SOURCES, ns, "gh"), lambda s: s.get("status", {}).get("webhookIDKey")
        )
        first = source["status"]["webhookIDKey"]
        kube.kubectl("patch", "githubsource", "gh", "-n", ns, "--type=merge",
                     "-p", '{"spec":{"ownerAndRepository":"octo-org"}}')  # fmt: skip
        source = await c.eventually(
            lambda: api.get(SOURCES, ns, "gh"),
            lambda s: (
                s["status"].get("webhookIDKey") not in (None, first)
                and c.condition(s, "WebhookConfigured").get("status") == "True"
            ),
        )
    second = source["status"]["webhookIDKey"]
    assert [(call.method, call.path) for call in github.calls] == [
        ("POST", COLLECTION),
        ("DELETE", f"{COLLECTION}/{first}"),
        ("POST", "/orgs/octo-org/hooks"),
    ]
    assert github.hooks[COLLECTION] == {}
    assert list(github.hooks["/orgs/octo-org/hooks"]) == [int(second)]
    assert source["status"]["ceAttributes"] == [
        {"type": "dev.knative.source.github.push", "source": f"{github.url}/octo-org"}
    ]
