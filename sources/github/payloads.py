"""The raw GitHub webhook JSON, as far as the adapter reads it (docs.github.com webhook events).

Every key is optional (`total=False`): GitHub omits or nulls fields depending on the event,
the action and whether the hook belongs to a repository, an organization or an App. These
types document the shape; `events` still checks every value's type before using it, because
the JSON comes from the network.
"""

from __future__ import annotations

from typing import TypedDict


class Account(TypedDict, total=False):
    login: str
    id: int
    name: str | None


class Repository(TypedDict, total=False):
    id: int
    name: str
    full_name: str
    owner: Account


class Installation(TypedDict, total=False):
    id: int


class Identified(TypedDict, total=False):
    """Objects the subject is taken from by id or number (check runs, deployments, teams...)."""

    id: int
    number: int


class Comment(TypedDict, total=False):
    id: int
    html_url: str


class Label(TypedDict, total=False):
    name: str


class Release(TypedDict, total=False):
    tag_name: str
    name: str | None


class Review(TypedDict, total=False):
    id: int
    state: str


class Page(TypedDict, total=False):
    page_name: str


class Advisory(TypedDict, total=False):
    ghsa_id: str


class WebhookPayload(TypedDict, total=False):
    """Top-level fields read by `events` (GitHub's payloads carry many more)."""

    action: str
    sender: Account
    repository: Repository
    organization: Account
    installation: Installation
    # subjects
    check_run: Identified
    check_suite: Identified
    comment: Comment
    deployment: Identified
    discussion: Identified
    forkee: Identified
    issue: Identified
    member: Account
    milestone: Identified
    pull_request: Identified
    review: Review
    release: Release
    label: Label
    team: Identified
    alert: Identified
    security_advisory: Advisory
    pages: list[Page]
    hook_id: int
    id: int
    sha: str
    compare: str
    ref: str
    ref_type: str
    # extensions
    assignee: Account
    pusher: Account
    number: int
    created: bool
    deleted: bool
    forced: bool
    scope: str
    state: str
    name: str
    context: str
