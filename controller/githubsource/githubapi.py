"""A small client of GitHub's webhook REST API (aiohttp), authenticated with the access token.

One `Client` is an `async with` block around one `aiohttp.ClientSession`: the controller only
talks to GitHub when a hook must be created, changed or deleted, so a session per reconcile
costs nothing that matters and leaves no connection or task behind.

The token goes out in the `Authorization` header only. It is never part of a URL, an
exception, a log line or a repr, and redirects are not followed (a redirect to another host
must not carry it; GitHub answers 307 for a renamed repository, reported as an error naming
the move). Every failure is a `GitHubError` carrying GitHub's own `message` (and the
messages of its `errors[]`), for the WebhookConfigured condition.
"""

from __future__ import annotations

import asyncio
import json
from types import TracebackType
from typing import Any

import aiohttp

from controller.githubsource import hook
from kevents import errors

API_VERSION = "2022-11-28"
"""X-GitHub-Api-Version: the REST API version these requests are written against."""
TIMEOUT = 30.0
"""Seconds per request; GitHub answers hook calls in well under a second."""
USER_AGENT = "kevents-controller"
"""GitHub rejects requests without a User-Agent."""
PER_PAGE = 100


class GitHubError(errors.KeventsError):
    """GitHub did not do what was asked. `status` 0 = no HTTP answer at all."""

    def __init__(self, method: str, url: str, status: int, message: str) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.message = message
        answer = f"{status} {message}" if status else message
        super().__init__(f"{method} {url}: {answer}")

    @property
    def not_found(self) -> bool:
        return self.status == 404


def error_message(status: int, body: bytes) -> str:
    """GitHub's `message`, plus the messages (or codes) of its `errors[]`."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        text = body.decode("utf-8", "replace").strip()[:200]
        return text or f"HTTP {status}"
    message = str(data.get("message") or f"HTTP {status}")
    details = []
    for item in data.get("errors") or []:
        if isinstance(item, dict):
            detail = item.get("message") or " ".join(
                str(item[k]) for k in ("resource", "field", "code") if item.get(k)
            )
            if detail:
                details.append(str(detail))
        elif item:
            details.append(str(item))
    return f"{message} ({'; '.join(details)})" if details else message


class Client:
    def __init__(self, token: str, *, timeout: float = TIMEOUT) -> None:
        self._headers = {
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {token.strip()}",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": USER_AGENT,
        }
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return "<githubapi.Client>"

    async def __aenter__(self) -> Client:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await asyncio.shield(self._session.close())
            self._session = None

    async def create(self, where: hook.Location, desired: hook.Hook) -> str:
        """Create the hook; its id as a decimal string."""
        answer = await self._call("POST", where.collection(), desired.payload())
        hook_id = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(hook_id, int):
            raise GitHubError("POST", where.collection(), 0, "the answer carries no hook id")
        return str(hook_id)

    async def update(self, where: hook.Location, hook_id: str, desired: hook.Hook) -> None:
        await self._call("PATCH", where.hook(hook_id), desired.payload())

    async def delete(self, where: hook.Location, hook_id: str) -> None:
        await self._call("DELETE", where.hook(hook_id), None)

    async def find(self, where: hook.Location, url: str) -> str | None:
        """The id of the first hook (of the first page) delivering to `url`, if any."""
        answer = await self._call("GET", f"{where.collection()}?per_page={PER_PAGE}", None)
        for item in answer if isinstance(answer, list) else []:
            config = item.get("config") if isinstance(item, dict) else None
            if isinstance(config, dict) and config.get("url") == url and "id" in item:
                return str(item["id"])
        return None

    async def _call(self, method: str, url: str, body: dict[str, Any] | None) -> Any:
        if self._session is None:
            raise RuntimeError("githubapi.Client used outside `async with`")
        try:
            async with self._session.request(
                method, url, json=body, headers=self._headers, allow_redirects=False
            ) as response:
                data = await response.read()
                status = response.status
        except TimeoutError as exc:
            raise GitHubError(method, url, 0, f"no answer within {self._timeout.total} s") from exc
        except aiohttp.ClientConnectionError as exc:
            raise GitHubError(method, url, 0, f"cannot connect: {exc}") from None
        except (aiohttp.ClientError, ValueError) as exc:
            # Not chained, nor their text: some aiohttp errors hold the request's headers
            # (the token), and a token with a newline is an invalid header *value*.
            raise GitHubError(method, url, 0, f"request failed: {type(exc).__name__}") from None
        if 300 <= status < 400:
            raise GitHubError(method, url, status, "redirected (was the repository renamed?)")
        if status >= 400:
            raise GitHubError(method, url, status, error_message(status, data))
        return json.loads(data) if data else None
