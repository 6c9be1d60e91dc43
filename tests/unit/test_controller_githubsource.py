"""GitHubSource controller, pure parts: hook location and payload, adapter Deployment and
Service, GitHub error messages, Secret decoding and the condition math."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from controller.framework import conditions, sinks
from controller.githubsource import adapter, githubapi, hook, reconciler, secrets

LOCATIONS = {
    "repository": (
        "octo-org/hello-world", "",
        "https://api.github.com/repos/octo-org/hello-world/hooks",
    ),
    "organization": ("octo-org", "", "https://api.github.com/orgs/octo-org/hooks"),
    "enterprise-server": (
        "team/app", "https://ghe.example.com/api/v3/",
        "https://ghe.example.com/api/v3/repos/team/app/hooks",
    ),
    "plain-http-fake": ("o/r", "http://127.0.0.1:8000", "http://127.0.0.1:8000/repos/o/r/hooks"),
}  # fmt: skip


@pytest.mark.parametrize(("repo", "api_url", "collection"), LOCATIONS.values(),
                         ids=LOCATIONS.keys())  # fmt: skip
def test_location_of_the_hooks(repo: str, api_url: str, collection: str) -> None:
    where = hook.location(repo, api_url)
    assert where.collection() == collection
    assert where.hook("42") == collection + "/42"


INVALID_LOCATIONS = {
    "three-parts": ("a/b/c", "", "ownerAndRepository is malformed"),
    "empty-owner": ("/repo", "", "ownerAndRepository is malformed"),
    "empty-repo": ("owner/", "", "ownerAndRepository is malformed"),
    "relative-api-url": ("o/r", "ghe.example.com/api/v3", "absolute http(s) URL"),
    "ftp-api-url": ("o/r", "ftp://ghe.example.com", "absolute http(s) URL"),
}  # fmt: skip


@pytest.mark.parametrize(("repo", "api_url", "message"), INVALID_LOCATIONS.values(),
                         ids=INVALID_LOCATIONS.keys())  # fmt: skip
def test_invalid_location_is_a_readable_error(repo: str, api_url: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        hook.location(repo, api_url)


SCHEMES = {"unset": (None, "http"), "false": (False, "http"), "true": (True, "https")}


@pytest.mark.parametrize(("secure", "scheme"), SCHEMES.values(), ids=SCHEMES.keys())
def test_receiver_url_is_the_adapter_service(secure: bool | None, scheme: str) -> None:
    assert (
        hook.receiver_url("gh-abc", "team", secure) == f"{scheme}://gh-abc.team.svc.cluster.local"
    )


def test_hook_payload_as_github_expects_it_and_secret_out_of_repr() -> None:
    desired = hook.Hook("http://a.b.svc.cluster.local", ("push", "issues"), "s3cret")
    assert desired.payload() == {
        "name": "web", "active": True, "events": ["push", "issues"],
        "config": {"url": "http://a.b.svc.cluster.local", "content_type": "json",
                   "secret": "s3cret", "insecure_ssl": "0"},
    }  # fmt: skip
    assert "s3cret" not in repr(desired)


BASE = hook.Hook("http://a.b.svc.cluster.local", ("push",), "one")
WHERE = hook.location("o/r")
CHANGES = {
    "events": (hook.Hook(BASE.url, ("push", "issues"), "one"), WHERE, "1"),
    "url": (hook.Hook("https://a.b.svc.cluster.local", ("push",), "one"), WHERE, "1"),
    "secret": (hook.Hook(BASE.url, ("push",), "two"), WHERE, "1"),
    "repository": (BASE, hook.location("o/other"), "1"),
    "hook-id": (BASE, WHERE, "2"),
}  # fmt: skip


@pytest.mark.parametrize(("changed", "where", "hook_id"), CHANGES.values(), ids=CHANGES.keys())
def test_any_change_of_the_hook_changes_its_digest(
    changed: hook.Hook, where: hook.Location, hook_id: str
) -> None:
    assert BASE.digest(WHERE, "1") == hook.Hook(BASE.url, ("push",), "one").digest(WHERE, "1")
    assert changed.digest(where, hook_id) != BASE.digest(WHERE, "1")
    assert "one" not in BASE.digest(WHERE, "1")


CE = {
    "github.com": ("", "https://github.com/o/r"),
    "enterprise-server": ("https://ghe.example.com/api/v3/", "https://ghe.example.com/o/r"),
    "ghe.com": ("https://api.acme.ghe.com", "https://acme.ghe.com/o/r"),
}


@pytest.mark.parametrize(("api_url", "source"), CE.values(), ids=CE.keys())
def test_ce_attributes_one_per_event_type(api_url: str, source: str) -> None:
    assert hook.ce_attributes(["push", "pull_request"], "o/r", api_url) == [
        {"type": "dev.knative.source.github.push", "source": source},
        {"type": "dev.knative.source.github.pull_request", "source": source},
    ]


ERRORS = {
    "message-only": (401, b'{"message": "Bad credentials"}', "Bad credentials"),
    "with-error-messages": (
        422, b'{"message": "Validation Failed", "errors": [{"resource": "Hook", "code": "custom",'
             b' "message": "Hook already exists on this repository"}]}',
        "Validation Failed (Hook already exists on this repository)",
    ),
    "with-error-codes": (
        422, b'{"message": "Validation Failed", "errors": [{"resource": "Hook", "field": "url",'
             b' "code": "missing_field"}]}',
        "Validation Failed (Hook url missing_field)",
    ),
    "html-body": (502, b"<html>Bad gateway</html>", "<html>Bad gateway</html>"),
    "empty-body": (503, b"", "HTTP 503"),
}  # fmt: skip


@pytest.mark.parametrize(("status", "body", "message"), ERRORS.values(), ids=ERRORS.keys())
def test_github_error_message(status: int, body: bytes, message: str) -> None:
    assert githubapi.error_message(status, body) == message


def test_client_repr_and_errors_hold_no_token() -> None:
    client = githubapi.Client("ghp_secret")
    error = githubapi.GitHubError("POST", "https://api.github.com/orgs/o/hooks", 401, "Bad")
    assert "ghp_secret" not in repr(client) + str(error) + repr(error)


def encoded(**data: bytes) -> dict[str, Any]:
    return {"data": {k: base64.b64encode(v).decode() for k, v in data.items()}}


REF: secrets.SecretKeySelectorDict = {"name": "gh", "key": "token"}
SECRET_PROBLEMS = {
    "missing-key": (encoded(other=b"x"), 'key "token" not found in Secret "gh"'),
    "not-utf8": (encoded(token=b"\xff\xfeabc"), 'key "token" of Secret "gh" is not UTF-8 text'),
    "no-data": ({}, 'key "token" not found in Secret "gh"'),
}  # fmt: skip


@pytest.mark.parametrize(("secret", "message"), SECRET_PROBLEMS.values(),
                         ids=SECRET_PROBLEMS.keys())  # fmt: skip
def test_secret_problems_name_secret_and_key(secret: dict[str, Any], message: str) -> None:
    with pytest.raises(secrets.SecretError) as caught:
        secrets.decode(secret, REF)
    assert caught.value.message == message
    assert caught.value.__cause__ is None  # no chained error carrying the bytes


def test_secret_value_decoded_and_out_of_repr() -> None:
    assert secrets.decode(encoded(token=b"ghp_abc\n"), REF) == "ghp_abc\n"
    assert "ghp_abc" not in repr(secrets.Value("ghp_abc", "7"))


def inputs(**overrides: Any) -> adapter.Inputs:
    values: dict[str, Any] = {
        "name": "gh", "namespace": "team", "uid": "0a1b2c3d-0000-4000-8000-000000000001",
        "sink": sinks.Address("http://sink.team.svc.cluster.local"),
        "owner_and_repository": "o/r", "event_types": ["push", "issues"],
        "secret_token": {"name": "gh-secret", "key": "secretToken"}, "secret_version": "41",
        **overrides,
    }  # fmt: skip
    return adapter.Inputs(**values)


CONFIG = adapter.Config(image="kevents/github-source:test", system_namespace="kevents-system")
ENVS = {
    "minimal": ({}, {}),
    "enterprise-and-extras": (
        {"api_url": "https://ghe.example.com/api/v3/", "ce_overrides": {"extensions": {"a": "b"}},
         "sink": sinks.Address("https://sink.example", "PEM", "aud")},
        {"GITHUB_API_URL": "https://ghe.example.com/api/v3/", "K_CA_CERTS": "PEM",
         "K_AUDIENCE": "aud", "K_CE_OVERRIDES": '{"extensions":{"a":"b"}}',
         "K_SINK": "https://sink.example"},
    ),
}  # fmt: skip


@pytest.mark.parametrize(("overrides", "extra"), ENVS.values(), ids=ENVS.keys())
def test_adapter_env_contract(overrides: dict[str, Any], extra: dict[str, str]) -> None:
    container = adapter.deployment(inputs(**overrides), CONFIG)["spec"]["template"]["spec"][
        "containers"
    ][0]  # fmt: skip
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env == {
        "K_SINK": "http://sink.team.svc.cluster.local", "NAMESPACE": "team", "NAME": "gh",
        "K_COMPONENT": "githubsource", "SYSTEM_NAMESPACE": "kevents-system",
        "GITHUB_SECRET_TOKEN": {"secretKeyRef": {"name": "gh-secret", "key": "secretToken"}},
        "GITHUB_OWNER_REPO": "o/r", "GITHUB_EVENT_TYPES": "push,issues", "PORT": "8080",
        "METRICS_PROMETHEUS_PORT": "9090", "K_LOGGING_CONFIG": "{}", "K_TRACING_CONFIG": "{}",
        **extra,
    }  # fmt: skip


def test_adapter_deployment_is_owned_probed_restricted_and_scraped() -> None:
    dep = adapter.deployment(inputs(service_account="gh-sa"), CONFIG)
    name = "githubsource-gh-0a1b2c3d-0000-4000-8000-000000000001"
    assert dep["metadata"]["name"] == name
    assert dep["metadata"]["ownerReferences"] == [{
        "apiVersion": "sources.knative.dev/v1alpha1", "kind": "GitHubSource", "name": "gh",
        "uid": "0a1b2c3d-0000-4000-8000-000000000001", "controller": True,
        "blockOwnerDeletion": True,
    }]  # fmt: skip
    template = dep["spec"]["template"]
    assert template["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true", "prometheus.io/port": "9090",
        adapter.SECRET_VERSION: "41",
    }  # fmt: skip
    assert dep["spec"]["selector"]["matchLabels"] == template["metadata"]["labels"]
    pod = template["spec"]
    assert pod["serviceAccountName"] == "gh-sa"
    [container] = pod["containers"]
    assert container["readinessProbe"]["httpGet"] == {"port": "http", "path": "/readiness"}
    assert container["livenessProbe"]["httpGet"] == {"port": "http", "path": "/health"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
    }  # fmt: skip
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "http": 8080,
        "metrics": 9090,
    }
    assert "serviceAccountName" not in adapter.deployment(inputs(), CONFIG)["spec"]["template"][
        "spec"
    ]  # fmt: skip


def test_adapter_service_selects_the_pods_on_port_80() -> None:
    svc = adapter.service(inputs())
    dep = adapter.deployment(inputs(), CONFIG)
    assert svc["metadata"]["name"] == dep["metadata"]["name"]
    assert svc["spec"]["selector"] == dep["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]
    assert svc["metadata"]["ownerReferences"] == dep["metadata"]["ownerReferences"]


def test_long_source_names_give_valid_names_and_labels() -> None:
    long = inputs(name="a" * 253)
    dep = adapter.deployment(long, CONFIG)
    assert len(dep["metadata"]["name"]) <= 63
    assert dep["metadata"]["name"][0].isalpha()
    assert all(len(v) <= 63 for v in dep["metadata"]["labels"].values())


PREVIOUS = {
    "none": (None, None),
    "github.com": (adapter.deployment(inputs(), CONFIG), ("o/r", "")),
    "enterprise": (adapter.deployment(inputs(api_url="https://g.example/api/v3"), CONFIG),
                   ("o/r", "https://g.example/api/v3")),
}  # fmt: skip


@pytest.mark.parametrize(("existing", "where"), PREVIOUS.values(), ids=PREVIOUS.keys())
def test_previous_location_read_back_from_the_adapter(
    existing: dict[str, Any] | None, where: tuple[str, str] | None
) -> None:
    assert adapter.previous(existing) == where


S, F, U = "True", "False", "Unknown"
READY = {
    "all-true": ({"SecretsProvided": S, "SinkProvided": S, "Deployed": S,
                  "WebhookConfigured": S}, S),
    "webhook-failed": ({"SecretsProvided": S, "SinkProvided": S, "Deployed": S,
                        "WebhookConfigured": F}, F),
    "not-deployed-yet": ({"SecretsProvided": S, "SinkProvided": S, "Deployed": U,
                          "WebhookConfigured": S}, U),
    "no-secrets": ({"SecretsProvided": F, "SinkProvided": U, "Deployed": U,
                    "WebhookConfigured": U}, F),
}  # fmt: skip


@pytest.mark.parametrize(("marks", "ready"), READY.values(), ids=READY.keys())
def test_ready_follows_secrets_sink_deployment_and_webhook(
    marks: dict[str, str], ready: str
) -> None:
    conds = reconciler.CONDITION_SET.initial(clock="2026-01-01T00:00:00Z")
    for kind, status in marks.items():
        if status == S:
            conds = conds.mark_true(kind)
        elif status == F:
            conds = conds.mark_false(kind, f"{kind}Failed", "why")
        else:
            conds = conds.mark_unknown(kind, "Waiting", "why")
    got = conds.get(conditions.READY)
    assert got is not None and got.status == ready
    if ready == F:
        failed = next(k for k, v in marks.items() if v == F)
        assert (got.reason, got.message) == (f"{failed}Failed", "why")
