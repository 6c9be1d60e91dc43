"""Webhook -> CloudEvent attributes, as Knative's GitHubSource computes them (events.go)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import pytest

from kevents import cloudevent
from sources.github import events, payloads

REPO = {"id": 186853002, "name": "Hello-World", "owner": {"login": "Codertocat"}}
SENDER = {"login": "octocat"}
COMMON = {"owner": "Codertocat", "repository": "Hello-World", "sender": "octocat"}


def _p(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"repository": REPO, "sender": SENDER}
    base.update(fields)
    return base


CASES: list[tuple[str, dict[str, Any], str | None, Mapping[str, object]]] = [
    (
        "push",
        _p(
            compare="https://github.com/Codertocat/Hello-World/compare/a10867b14bb7...000000000000",
            pusher={"name": "Codertocat", "email": "c@example.com"},
            ref="refs/heads/main", created=False, deleted=True, forced=False,
            installation={"id": 42},
        ),
        "a10867b14bb7...000000000000",
        {**COMMON, "installation": 42, "pusher": "Codertocat", "ref": "refs/heads/main",
         "created": False, "deleted": True, "forced": False},
    ),
    (
        "pull_request",
        _p(action="labeled", number=7, pull_request={"number": 7, "id": 99},
           label={"name": "bug"}, assignee={"login": "hubot"}),
        "7",
        {**COMMON, "action": "labeled", "number": 7, "label": "bug", "assignee": "hubot"},
    ),
    (
        "issues",
        _p(action="opened", issue={"number": 12, "id": 1}, label=None, assignee=None),
        "12",
        {**COMMON, "action": "opened"},
    ),
    (
        "issue_comment",
        _p(action="created",
           comment={"id": 5, "html_url": "https://github.com/C/H/issues/2#issuecomment-393304133"}),
        "2#issuecomment-393304133",
        {**COMMON, "action": "created"},
    ),
    (
        "commit_comment",
        _p(action="created",
           comment={"html_url": "https://github.com/C/H/commit/a10867b#commitcomment-29186860"}),
        "a10867b#commitcomment-29186860",
        {**COMMON, "action": "created"},
    ),
    ("create", _p(ref_type="branch", ref="feature"), "branch", {**COMMON, "ref": "feature"}),
    ("delete", _p(ref_type="tag", ref="v1"), "tag", {**COMMON, "ref": "v1"}),
    (
        "release",
        _p(action="published", release={"tag_name": "v1.0.0", "name": "First"}),
        "v1.0.0",
        {**COMMON, "action": "published", "release": "First"},
    ),
    (
        "status",
        _p(sha="6113728f", state="success", name="Codertocat/Hello-World", context="ci"),
        "6113728f",
        {**COMMON, "state": "success", "name": "Codertocat/Hello-World", "context": "ci"},
    ),
    ("label", _p(action="created", label={"name": ":bug: Bugfix"}), ":bug: Bugfix",
     {**COMMON, "action": "created", "label": ":bug: Bugfix"}),
    ("ping", _p(hook_id=109948940, zen="Keep it logically awesome."), "109948940", COMMON),
    ("ping", {"hook_id": 5, "sender": SENDER}, "5", {"sender": "octocat"}),  # org hook
    ("check_run", _p(action="created", check_run={"id": 128620228}), "128620228",
     {**COMMON, "action": "created"}),
    ("watch", _p(action="started"), "186853002", {**COMMON, "action": "started"}),
    ("team_add", _p(team={"id": 3}), "186853002", COMMON),
    ("fork", _p(forkee={"id": 186853261}), "186853261", COMMON),
    (
        "gollum",
        _p(pages=[{"page_name": "Home"}, {"page_name": "Main"}]),
        "Home,Main",
        COMMON,
    ),
    ("gollum", _p(pages=[]), None, COMMON),
    (
        "membership",
        {"action": "removed", "scope": "team", "member": {"id": 21031067},
         "organization": {"login": "Octocoders"}, "sender": SENDER},
        "21031067",
        {"owner": "Octocoders", "scope": "team", "sender": "octocat", "action": "removed"},
    ),
    ("organization", {"action": "member_added", "organization": {"login": "Octo"},
                      "sender": SENDER}, "member_added",
     {"owner": "Octo", "sender": "octocat", "action": "member_added"}),
    ("project_column", _p(action="edited"), "edited", COMMON),
    (
        "installation",
        {"action": "created", "installation": {"id": 2}, "sender": SENDER},
        "2",
        {"installation": 2, "sender": "octocat", "action": "created"},
    ),
    ("team", {"action": "created", "team": {"id": 3253328}, "sender": SENDER}, "3253328",
     {"sender": "octocat", "action": "created"}),
    ("security_advisory", {"action": "published", "security_advisory": {"ghsa_id": "GHSA-x"}},
     "GHSA-x", {"action": "published"}),
    ("pull_request_review", _p(action="submitted", review={"id": 9, "state": "approved"}),
     "9", {**COMMON, "action": "submitted", "review": "approved"}),
    ("page_build", _p(id=130514899), "130514899", COMMON),
    # no upstream rule: delivered with the common extensions and no subject
    ("star", _p(action="created"), None, {**COMMON, "action": "created"}),
    (
        "workflow_run",
        {"action": "completed", "organization": {"login": "octo-org"},
         "installation": {"id": 8}, "sender": SENDER},
        None,
        {"owner": "octo-org", "installation": 8, "sender": "octocat", "action": "completed"},
    ),
    # hostile or odd shapes never raise; wrong-typed fields are left out
    ("push", {"repository": None, "sender": "x", "compare": 5, "created": "yes"}, None, {}),
    ("pull_request", _p(pull_request={"number": True}, installation={"id": 2**40}), None,
     {**COMMON, "installation": str(2**40)}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("event", "payload", "subject", "extensions"),
    CASES,
    ids=[
        "push", "pull_request", "issues-null-label", "issue_comment", "commit_comment", "create",
        "delete", "release", "status", "label", "ping", "ping-org-hook", "check_run", "watch",
        "team_add", "fork", "gollum", "gollum-no-pages", "membership", "organization",
        "project_column", "installation", "team", "security_advisory", "pull_request_review",
        "page_build", "star-generic", "workflow_run-generic", "wrong-types",
        "int-above-32-bits",
    ],
)  # fmt: skip
def test_subject_and_extensions(
    event: str,
    payload: dict[str, Any],
    subject: str | None,
    extensions: Mapping[str, object],
) -> None:
    # the payload comes from the network: the TypedDict promise is not checked at runtime
    found = events.attributes(event, cast(payloads.WebhookPayload, payload))
    assert found.subject == subject
    assert dict(found.extensions) == extensions


def test_event_has_knative_type_source_id_and_raw_data() -> None:
    body = b'{"zen":"Design for failure.","hook_id":1,"sender":{"login":"octocat"}}'
    event = events.make(
        "ping", "d1b2", {"hook_id": 1, "sender": {"login": "octocat"}}, body,
        source=events.source_url("Codertocat/Hello-World"),
    )  # fmt: skip
    assert event.get_type() == "dev.knative.source.github.ping"
    assert event.get_source() == "https://github.com/Codertocat/Hello-World"
    assert event.get_id() == "d1b2"
    assert event.get_subject() == "1"
    assert event.get_datacontenttype() == "application/json"
    message = cloudevent.encode(event)
    assert message.body == body  # the payload bytes travel unchanged
    assert message.headers["ce-sender"] == "octocat"


@pytest.mark.parametrize(
    ("owner_repo", "web_url", "expected"),
    [
        ("knative/eventing", events.WEB_URL, "https://github.com/knative/eventing"),
        ("knative", events.WEB_URL, "https://github.com/knative"),
        ("org/repo", "https://ghe.example.com/", "https://ghe.example.com/org/repo"),
    ],
    ids=["repository", "organization", "enterprise"],
)
def test_source(owner_repo: str, web_url: str, expected: str) -> None:
    assert events.source_url(owner_repo, web_url) == expected
