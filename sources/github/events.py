"""GitHub webhook -> CloudEvent, computed as Knative's GitHubSource adapter does.

Facts from `knative-extensions/eventing-github` (`pkg/common/events.go`, `handler.go`,
`pkg/apis/sources/v1alpha1/githubsource_types.go`):

- `type` = `dev.knative.source.github.<X-GitHub-Event>`; `source` = `https://github.com/<owner/repo>`;
  `id` = `X-GitHub-Delivery` (so a redelivery has the same id); data = the JSON payload.
- `subject` and extensions per event are the table `RULES` below (upstream's
  `SubjectAndExtensionsFromGitHubEvent`). Integers are written in decimal, booleans stay
  booleans (`true`/`false` on the wire), a URL subject keeps what follows its last `/`.

Deliberate differences, each where upstream fails a delivery GitHub made in good faith:
- A field missing or null in the payload (e.g. `installation` of a plain repository hook,
  `label` of a pull_request that is not `labeled`) leaves its extension unset; upstream
  dereferences a nil pointer there. An empty subject is omitted (upstream answers 400).
- An event upstream has no rule for (e.g. `star`, `workflow_run`) is still delivered, with the
  common extensions (owner, repository, installation, sender, action) and no subject;
  upstream answers 400 "unsupported github event type" and the event is lost.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType

from kevents import cloudevent
from sources.github import payloads

TYPE_PREFIX = "dev.knative.source.github"
WEB_URL = "https://github.com"
"""Prefix of every `source` on github.com (upstream's GitHubEventSourcePrefix)."""
CONTENT_TYPE = "application/json"

EVENT_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
"""What a GitHub event name looks like (`push`, `pull_request_review_comment`)."""

_INT32 = range(-(2**31), 2**31)

Value = str | int | bool
Getter = Callable[[payloads.WebhookPayload], Value | None]
SubjectGetter = Callable[[payloads.WebhookPayload], str | None]


def event_type(event_name: str) -> str:
    return f"{TYPE_PREFIX}.{event_name}"


def source_url(owner_and_repository: str, web_url: str = WEB_URL) -> str:
    return f"{web_url.rstrip('/')}/{owner_and_repository}"


def _walk(payload: object, path: tuple[str, ...]) -> object:
    node = payload
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _text(*path: str) -> Getter:
    def get(payload: payloads.WebhookPayload) -> str | None:
        value = _walk(payload, path)
        return value if isinstance(value, str) else None

    return get


def _number(*path: str) -> Getter:
    def get(payload: payloads.WebhookPayload) -> int | None:
        value = _walk(payload, path)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return get


def _flag(*path: str) -> Getter:
    def get(payload: payloads.WebhookPayload) -> bool | None:
        value = _walk(payload, path)
        return value if isinstance(value, bool) else None

    return get


def _id(*path: str) -> SubjectGetter:
    """Subject from an integer field, in decimal (upstream's strconv.FormatInt)."""
    number = _number(*path)

    def get(payload: payloads.WebhookPayload) -> str | None:
        value = number(payload)
        return None if value is None else str(value)

    return get


def _string(*path: str) -> SubjectGetter:
    text = _text(*path)

    def get(payload: payloads.WebhookPayload) -> str | None:
        value = text(payload)
        return value if isinstance(value, str) else None

    return get


def _last_segment(*path: str) -> SubjectGetter:
    """What follows the last `/` of a URL: `.../compare/a1...b2` -> `a1...b2`,
    `.../issues/2#issuecomment-39` -> `2#issuecomment-39`."""
    text = _text(*path)

    def get(payload: payloads.WebhookPayload) -> str | None:
        value = text(payload)
        if not isinstance(value, str) or "/" not in value:
            return None
        return value.rpartition("/")[2]

    return get


def _page_names(payload: payloads.WebhookPayload) -> str | None:
    """gollum: the updated pages' names joined with commas (`Home,Main`)."""
    pages = _walk(payload, ("pages",))
    if not isinstance(pages, list):
        return None
    return ",".join(str(_walk(page, ("page_name",)) or "") for page in pages)


Extensions = tuple[tuple[str, Getter], ...]

REPO: Extensions = (
    ("owner", _text("repository", "owner", "login")),
    ("repository", _text("repository", "name")),
)
ORG: Extensions = (("owner", _text("organization", "login")),)
SENDER: Extensions = (("sender", _text("sender", "login")),)
ACTION: Extensions = (("action", _text("action")),)
INSTALLATION: Extensions = (("installation", _number("installation", "id")),)
REF: Extensions = (("ref", _text("ref")),)


@dataclasses.dataclass(frozen=True, slots=True)
class Rule:
    """How one GitHub event becomes CloudEvent attributes."""

    subject: SubjectGetter | None
    extensions: Extensions


_INSTALLATION_RULE = Rule(_id("installation", "id"), (*INSTALLATION, *SENDER, *ACTION))
_COMMENT_URL = _last_segment("comment", "html_url")

RULES: Mapping[str, Rule] = MappingProxyType({
    "check_run": Rule(_id("check_run", "id"), (*REPO, *SENDER, *ACTION)),
    "check_suite": Rule(_id("check_suite", "id"), (*REPO, *SENDER, *ACTION)),
    "commit_comment": Rule(_COMMENT_URL, (*REPO, *SENDER, *ACTION)),
    "create": Rule(_string("ref_type"), (*REPO, *SENDER, *REF)),
    "delete": Rule(_string("ref_type"), (*REPO, *SENDER, *REF)),
    "deployment": Rule(_id("deployment", "id"), (*REPO, *SENDER)),
    "deployment_status": Rule(_id("deployment", "id"), (*REPO, *SENDER)),
    "discussion": Rule(_id("discussion", "id"), (*REPO, *SENDER)),
    "fork": Rule(_id("forkee", "id"), (*REPO, *SENDER)),
    "gollum": Rule(_page_names, (*REPO, *SENDER)),
    "installation": _INSTALLATION_RULE,
    "installation_repositories": _INSTALLATION_RULE,
    "integration_installation": _INSTALLATION_RULE,
    "integration_installation_repositories": _INSTALLATION_RULE,
    "issue_comment": Rule(_COMMENT_URL, (*REPO, *SENDER, *ACTION)),
    "issues": Rule(
        _id("issue", "number"),
        (*REPO, *SENDER, *ACTION,
         ("label", _text("label", "name")), ("assignee", _text("assignee", "login"))),
    ),
    "label": Rule(
        _string("label", "name"), (*REPO, *SENDER, *ACTION, ("label", _text("label", "name")))
    ),
    "member": Rule(_id("member", "id"), (*REPO, *SENDER, *ACTION)),
    "membership": Rule(
        _id("member", "id"), (*ORG, ("scope", _text("scope")), *SENDER, *ACTION)
    ),
    "milestone": Rule(_id("milestone", "number"), (*REPO, *SENDER, *ACTION)),
    "organization": Rule(_string("action"), (*ORG, *SENDER, *ACTION)),
    "org_block": Rule(_string("action"), (*ORG, *SENDER, *ACTION)),
    "page_build": Rule(_id("id"), (*REPO, *SENDER)),
    "ping": Rule(_id("hook_id"), (*REPO, *SENDER)),
    "project_card": Rule(_string("action"), (*REPO, *SENDER, *ACTION)),
    "project_column": Rule(_string("action"), (*REPO, *SENDER)),
    "project": Rule(_string("action"), (*REPO, *SENDER, *ACTION)),
    "public": Rule(_id("repository", "id"), (*REPO, *SENDER)),
    "pull_request": Rule(
        _id("pull_request", "number"),
        (*REPO, *INSTALLATION, *SENDER, *ACTION, ("number", _number("number")),
         ("label", _text("label", "name")), ("assignee", _text("assignee", "login"))),
    ),
    "pull_request_review_comment": Rule(
        _id("comment", "id"), (*REPO, *INSTALLATION, *SENDER, *ACTION)
    ),
    "pull_request_review": Rule(
        _id("review", "id"),
        (*REPO, *INSTALLATION, *SENDER, *ACTION, ("review", _text("review", "state"))),
    ),
    "push": Rule(
        _last_segment("compare"),
        (*REPO, *INSTALLATION, *SENDER, ("pusher", _text("pusher", "name")), *REF,
         ("created", _flag("created")), ("deleted", _flag("deleted")),
         ("forced", _flag("forced"))),
    ),
    "release": Rule(
        _string("release", "tag_name"),
        (*REPO, *INSTALLATION, *SENDER, *ACTION, ("release", _text("release", "name"))),
    ),
    "repository": Rule(_id("repository", "id"), (*REPO, *SENDER, *ACTION)),
    "repository_vulnerability_alert": Rule(_id("alert", "id"), ACTION),
    "security_advisory": Rule(_string("security_advisory", "ghsa_id"), ACTION),
    "status": Rule(
        _string("sha"),
        (*REPO, *SENDER, ("state", _text("state")), ("name", _text("name")),
         ("context", _text("context"))),
    ),
    "team": Rule(_id("team", "id"), (*SENDER, *ACTION)),
    "team_add": Rule(_id("repository", "id"), (*REPO, *SENDER)),
    "watch": Rule(_id("repository", "id"), (*REPO, *SENDER, *ACTION)),
})  # fmt: skip
"""Upstream's per-event subject and extensions (go-github era of eventing-github)."""

GENERIC = Rule(None, (*REPO, *ORG, *INSTALLATION, *SENDER, *ACTION))
"""Events without an upstream rule: the common extensions, no subject."""


@dataclasses.dataclass(frozen=True, slots=True)
class Attributes:
    subject: str | None
    extensions: Mapping[str, Value]


def attributes(event_name: str, payload: payloads.WebhookPayload) -> Attributes:
    """Subject and extensions of one webhook; absent fields leave their extension unset."""
    rule = RULES.get(event_name, GENERIC)
    subject = rule.subject(payload) if rule.subject is not None else None
    extensions: dict[str, Value] = {}
    for name, get in rule.extensions:
        if name in extensions:
            continue  # first present source wins (GENERIC: repository owner, else org)
        value = get(payload)
        if value is None:
            continue
        if isinstance(value, int) and not isinstance(value, bool) and value not in _INT32:
            value = str(value)  # CloudEvents integers are 32-bit; larger ids travel as text
        extensions[name] = value
    return Attributes(subject or None, extensions)


def make(
    event_name: str,
    delivery_id: str,
    payload: payloads.WebhookPayload,
    body: bytes,
    *,
    source: str,
) -> cloudevent.CloudEvent:
    """The CloudEvent for one webhook; `body` (the JSON bytes) is sent unchanged as data."""
    found = attributes(event_name, payload)
    return cloudevent.build(
        event_type(event_name),
        source,
        body,
        id=delivery_id,
        subject=found.subject,
        datacontenttype=CONTENT_TYPE,
        extensions=found.extensions,
    )
