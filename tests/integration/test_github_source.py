"""Real GitHub webhook payloads (@octokit/webhooks-examples) through the adapter to a sink.

Every example of every event type is signed and posted; the sink must receive the Knative
CloudEvent: type, source, id = X-GitHub-Delivery, subject and extensions as eventing-github
computes them, the payload bytes unchanged as data.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from hack import octokit
from kevents import cloudevent
from sources.github import events
from tests import webhooks

C = {"owner": "Codertocat", "repository": "Hello-World", "sender": "Codertocat"}
OCTO = {"owner": "octo-org", "repository": "octo-repo"}

# The first example of each event type, attributes read off the payload by hand following
# upstream's SubjectAndExtensionsFromGitHubEvent. None = no upstream rule, hence no subject.
GOLDEN: dict[str, tuple[str | None, dict[str, str]]] = {
    "branch_protection_rule": (None, {**OCTO, "sender": "Codertocat", "action": "edited"}),
    "check_run": ("128620228", {**C, "action": "created"}),
    "check_suite": ("118578147", {**C, "action": "completed"}),
    "code_scanning_alert": (None, {**C, "sender": "github", "action": "reopened"}),
    "commit_comment": (
        "6113728f27ae82c7b1a177c8d03f9e96e0adf246#commitcomment-33548674",
        {**C, "action": "created"},
    ),
    "create": ("tag", {**C, "ref": "simple-tag"}),
    "delete": ("tag", {**C, "ref": "simple-tag"}),
    "dependabot_alert": (
        None, {"owner": "octocat", "repository": "hello-world", "sender": "github",
               "action": "fixed"},
    ),
    "deploy_key": (None, {**C, "action": "created"}),
    "deployment": ("145988746", C),
    "deployment_review": (
        None, {"owner": "terraform-test-github", "repository": "sample-app",
               "installation": "35490125", "sender": "ilmax", "action": "requested"},
    ),
    "deployment_status": ("145988746", C),
    "discussion": ("3297442", {**OCTO, "sender": "Codertocat"}),
    "discussion_comment": (None, {**OCTO, "sender": "Codertocat", "action": "created"}),
    "fork": ("186853261", {**C, "sender": "Octocoders"}),
    "github_app_authorization": (None, {"sender": "octocat", "action": "revoked"}),
    "gollum": ("Home", {**C, "sender": "rachmari"}),
    "installation": ("2", {"installation": "2", "sender": "octocat", "action": "deleted"}),
    "installation_repositories": (
        "957387", {"installation": "957387", "sender": "Codertocat", "action": "added"},
    ),
    "issue_comment": ("1#issuecomment-492700400", {**C, "action": "created"}),
    "issues": ("1", {**C, "action": "edited"}),
    "label": (":bug: Bugfix", {**C, "action": "deleted", "label": ":bug: Bugfix"}),
    "marketplace_purchase": (None, {"sender": "username", "action": "purchased"}),
    "member": ("39652351", {**C, "sender": "hacktocat", "action": "added"}),
    "membership": (
        "21031067", {"owner": "Octocoders", "scope": "team", "sender": "Codertocat",
                     "action": "removed"},
    ),
    "merge_group": (
        None, {**OCTO, "installation": "1", "sender": "Codertocat", "action": "checks_requested"},
    ),
    "meta": (None, {**C, "action": "deleted"}),
    "milestone": ("1", {**C, "action": "created"}),
    "organization": (
        "member_added", {"owner": "Octocoders", "sender": "Codertocat", "action": "member_added"},
    ),
    "org_block": ("blocked", {"owner": "Octocoders", "sender": "Octocoders", "action": "blocked"}),
    "package": (None, {**C, "repository": "hello-world-npm", "action": "published"}),
    "page_build": ("130514899", C),
    "ping": ("109948940", {**C, "owner": "Octocoders"}),
    "project": ("created", {**C, "action": "created"}),
    "project_card": ("created", {**C, "action": "created"}),
    "project_column": ("created", C),
    "projects_v2_item": (None, {"owner": "github", "sender": "monalisa", "action": "created"}),
    "public": ("186853002", C),
    "pull_request": ("2", {**C, "action": "opened", "number": "2"}),
    "pull_request_review": ("237895671", {**C, "action": "submitted", "review": "commented"}),
    "pull_request_review_comment": ("284312630", {**C, "action": "created"}),
    "pull_request_review_thread": (None, {**OCTO, "sender": "octocat", "action": "resolved"}),
    "push": (
        "simple-tag",
        {**C, "pusher": "Codertocat", "ref": "refs/tags/simple-tag", "created": "true",
         "deleted": "false", "forced": "false"},
    ),
    "release": ("0.0.1", {**C, "action": "published"}),
    "repository_dispatch": (
        None, {**OCTO, "installation": "375706", "sender": "Codertocat",
               "action": "on-demand-test"},
    ),
    "repository": ("186853002", {**C, "action": "publicized"}),
    "repository_import": (None, C),
    "repository_vulnerability_alert": ("91095730", {"action": "create"}),
    "security_advisory": ("GHSA-rf4j-j272-fj86", {"action": "published"}),
    "sponsorship": (None, {"sender": "monalisa", "action": "created"}),
    "star": (None, {**C, "action": "created"}),
    "status": (
        "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        {**C, "state": "success", "name": "Codertocat/Hello-World", "context": "default"},
    ),
    "team": ("3253328", {"sender": "Codertocat", "action": "added_to_repository"}),
    "team_add": ("186853261", {**C, "owner": "Octocoders", "sender": "Octocoders"}),
    "watch": ("186853002", {**C, "action": "started"}),
    "workflow_dispatch": (None, {**OCTO, "sender": "octocat"}),
    "workflow_job": (
        None, {"owner": "octo-org", "repository": "example-workflow", "sender": "octocat",
               "action": "in_progress"},
    ),
    "workflow_run": (None, {**C, "action": "completed"}),
}  # fmt: skip

_CORE = {"specversion", "id", "source", "type", "subject", "datacontenttype", "time"}


def _wire(value: events.Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _extensions(event: cloudevent.CloudEvent) -> dict[str, str]:
    return {k: str(v) for k, v in event.get_attributes().items() if k not in _CORE}


@pytest.fixture
async def sink() -> AsyncIterator[webhooks.Sink]:
    state = webhooks.Sink()
    await state.start()
    yield state
    await state.stop()


def test_the_package_covers_many_event_types() -> None:
    names = {e.event for e in octokit.examples()}
    assert len(octokit.examples()) >= 300
    assert names == set(GOLDEN), "a new package version: extend GOLDEN by reading its examples"


async def test_every_example_becomes_its_knative_cloudevent(sink: webhooks.Sink) -> None:
    examples = octokit.examples()
    ids = {e.id: f"{uuid.uuid4()}" for e in examples}
    async with webhooks.Adapter(sink.url) as adapter:
        semaphore = asyncio.Semaphore(32)

        async def post(example: octokit.Example) -> webhooks.Reply:
            async with semaphore:
                return await adapter.post(example.event, example.body, delivery=ids[example.id])

        replies = await asyncio.gather(*(post(e) for e in examples))
    assert [(r.status, r.text) for r in replies] == [(202, "accepted\n")] * len(examples)
    got = {event.get_id(): event for event in sink.events}
    assert len(sink.events) == len(examples) == len(got)
    for example in examples:
        event = got[ids[example.id]]
        assert event.get_type() == f"dev.knative.source.github.{example.event}", example.id
        assert event.get_source() == "https://github.com/Codertocat/Hello-World"
        assert event.get_datacontenttype() == "application/json"
        assert event.get_data() == example.payload, example.id
        expected = events.attributes(example.event, example.payload)  # type: ignore[arg-type]
        if example.index == 0:  # the hand-read golden values
            subject, extensions = GOLDEN[example.event]
            assert (expected.subject, {k: _wire(v) for k, v in expected.extensions.items()}) == (
                subject, extensions,
            ), example.id  # fmt: skip
        assert event.get_subject() == expected.subject, example.id
        assert _extensions(event) == {k: _wire(v) for k, v in expected.extensions.items()}
    assert adapter.sample("kevents_github_webhooks_total", event="push", outcome="accepted") == sum(
        e.event == "push" for e in examples
    )


async def test_types_not_in_event_types_are_dropped(sink: webhooks.Sink) -> None:
    wanted = {"push", "issues"}
    async with webhooks.Adapter(sink.url, GITHUB_EVENT_TYPES="push,issues") as adapter:
        replies = {
            e.id: await adapter.post(e.event, e.body) for e in octokit.examples() if e.index == 0
        }
        dropped = adapter.sample(
            "kevents_github_webhooks_total", event="pull_request", outcome="dropped"
        )
        # event names without an upstream rule share one label value: bounded cardinality
        dropped_other = adapter.sample(
            "kevents_github_webhooks_total", event="other", outcome="dropped"
        )
    kept = {"push-0", "issues-0", "ping-0"}  # ping always passes: GitHub sends it on creation
    assert {k for k, r in replies.items() if r.status == 202} == kept
    others = [r for k, r in replies.items() if k not in kept]
    assert {r.status for r in others} == {200}
    assert "dropped: star is not in eventTypes (issues, push)" in replies["star-0"].text
    assert sorted(str(e.get_type()).rsplit(".", 1)[1] for e in sink.events) == sorted(
        [*wanted, "ping"]
    )
    assert dropped == 1
    assert dropped_other == sum(name not in events.RULES for name in GOLDEN)


async def test_redelivery_with_the_same_id_yields_one_event(sink: webhooks.Sink) -> None:
    push = octokit.example("push")
    async with webhooks.Adapter(sink.url) as adapter:
        first = await adapter.post("push", push.body, delivery="d-1")
        again = await adapter.post("push", push.body, delivery="d-1")
        # concurrent redeliveries while the first is still at the sink join it
        sink.hold = asyncio.Event()
        pending = [
            asyncio.create_task(adapter.post("push", push.body, delivery="d-2")) for _ in range(3)
        ]
        await asyncio.sleep(0.2)
        sink.hold.set()
        racing = await asyncio.gather(*pending)
        duplicates = adapter.sample("kevents_github_webhooks_total", event="push",
                                    outcome="duplicate")  # fmt: skip
    assert (first.status, again.status) == (202, 200)
    assert again.text == "duplicate delivery\n"
    assert sorted(r.status for r in racing) == [200, 200, 202]
    assert sink.ids() == ["d-1", "d-2"]
    assert duplicates == 3
