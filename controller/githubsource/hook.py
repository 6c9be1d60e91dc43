"""The webhook a GitHubSource wants on GitHub, computed purely: where it lives, its payload.

GitHub REST API, "Repository webhooks" and "Organization webhooks":

    POST   {api}/repos/{owner}/{repo}/hooks         201, the hook with its numeric `id`
    PATCH  {api}/repos/{owner}/{repo}/hooks/{id}    200
    DELETE {api}/repos/{owner}/{repo}/hooks/{id}    204
    GET    {api}/repos/{owner}/{repo}/hooks         200, the repository's hooks

and the same under `{api}/orgs/{org}/hooks` when `ownerAndRepository` is only an owner
(knative-extensions/eventing-github `parseOwnerRepoFrom`: `owner/repo` or `owner`).
`{api}` is `spec.githubAPIURL` (GitHub Enterprise Server: `https://HOST/api/v3/`) or
`https://api.github.com`. The body: `{name: "web", active: true, events, config: {url,
content_type: "json", secret, insecure_ssl: "0"}}`.

The receiver URL is the adapter Service's cluster URL; `spec.secure` true makes it https
(upstream sets https when `secure` is true and http when false on create; on update it sets
https either way, a bug we do not copy).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

DEFAULT_API_URL = "https://api.github.com"
WEB_URL = "https://github.com"
EVENT_TYPE_PREFIX = "dev.knative.source.github."


@dataclass(frozen=True, slots=True)
class Location:
    """Where the hook lives: a repository's hooks, or an organization's when `repo` is ""."""

    api_url: str
    """Without a trailing slash."""
    owner: str
    repo: str = ""

    def collection(self) -> str:
        owner = quote(self.owner, safe="")
        if self.repo:
            return f"{self.api_url}/repos/{owner}/{quote(self.repo, safe='')}/hooks"
        return f"{self.api_url}/orgs/{owner}/hooks"

    def hook(self, hook_id: str) -> str:
        return f"{self.collection()}/{quote(hook_id, safe='')}"

    def describe(self) -> str:
        if self.repo:
            return f"repository {self.owner}/{self.repo}"
        return f"organization {self.owner}"


def api_url(spec_url: str) -> str:
    """`spec.githubAPIURL` normalised (no trailing slash); empty = api.github.com.

    Raises ValueError for anything but an absolute http(s) URL."""
    text = spec_url.strip() or DEFAULT_API_URL
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"githubAPIURL must be an absolute http(s) URL, got {spec_url!r}")
    return text.rstrip("/")


def location(owner_and_repository: str, spec_api_url: str = "") -> Location:
    """Raises ValueError (with a message for the condition) when either cannot be used."""
    parts = owner_and_repository.strip().split("/")
    if len(parts) > 2 or not parts[0] or (len(parts) == 2 and not parts[1]):
        raise ValueError(
            "ownerAndRepository is malformed, expected 'owner/repository' or 'owner' but "
            f"found {owner_and_repository!r}"
        )
    return Location(api_url(spec_api_url), parts[0], parts[1] if len(parts) == 2 else "")


def receiver_url(service: str, namespace: str, secure: bool | None) -> str:
    """The URL GitHub delivers to: the adapter Service, http unless `spec.secure` is true."""
    scheme = "https" if secure else "http"
    return f"{scheme}://{service}.{namespace}.svc.cluster.local"


def web_url(spec_api_url: str) -> str:
    """The web base named in CloudEvent `source`, derived as the adapter derives it from
    GITHUB_API_URL: api.github.com -> github.com; `https://ghe.example.com/api/v3/` ->
    `https://ghe.example.com`; `https://api.acme.ghe.com` -> `https://acme.ghe.com`."""
    if not spec_api_url.strip():
        return WEB_URL
    parts = urlsplit(spec_api_url.strip())
    host = parts.netloc.removeprefix("api.")
    return f"{parts.scheme}://{host}"


def ce_attributes(
    event_types: Sequence[str], owner_and_repository: str, spec_api_url: str = ""
) -> list[dict[str, str]]:
    """One `{type, source}` per event type, like upstream's createCloudEventAttributes."""
    source = f"{web_url(spec_api_url)}/{owner_and_repository}"
    return [{"type": EVENT_TYPE_PREFIX + t, "source": source} for t in event_types]


@dataclass(frozen=True, slots=True)
class Hook:
    """The desired hook. `secret` is the HMAC key: never logged, never in a repr."""

    url: str
    events: tuple[str, ...]
    secret: str = field(repr=False)

    def payload(self) -> dict[str, Any]:
        return {
            "name": "web",  # GitHub: repository/organization webhooks must be named "web"
            "active": True,
            "events": list(self.events),
            "config": {
                "url": self.url,
                "content_type": "json",
                "secret": self.secret,
                "insecure_ssl": "0",  # verify TLS when the URL is https
            },
        }

    def digest(self, where: Location, hook_id: str) -> str:
        """Identifies what was last written to GitHub (kept in memory only), so an
        unchanged source costs no request; any change of location, id, URL, events or
        secret changes it."""
        text = json.dumps([where.collection(), hook_id, self.payload()], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()
