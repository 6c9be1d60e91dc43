"""A fake of GitHub's webhook REST API on 127.0.0.1, for the GitHubSource controller tests.

It answers like GitHub for repository and organization hooks (`POST`/`GET`
`/repos/{owner}/{repo}/hooks`, `PATCH`/`DELETE` `.../hooks/{id}`, the same under
`/orgs/{org}/hooks`): 201 with the hook and its numeric id, 200, 204, 404 `{"message": "Not
Found"}`, 401 `{"message": "Bad credentials"}` for any other token, and 422 `{"message":
"Validation Failed", "errors": [...]}` for a bad payload or a second hook with the same URL.
Every call is recorded; `fail_next` makes the next call of a method answer as told.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

from aiohttp import web

DOCS = "https://docs.github.com/rest"


@dataclasses.dataclass(frozen=True)
class Call:
    method: str
    path: str
    authorization: str
    body: Any


def _json(status: int, body: object) -> web.Response:
    return web.json_response(body, status=status)


def _problem(status: int, message: str, errors: list[dict[str, str]] | None = None) -> web.Response:
    body: dict[str, Any] = {"message": message, "documentation_url": DOCS}
    if errors:
        body["errors"] = errors
    return _json(status, body)


def _public(hook: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in hook.items() if k != "secret"}


class FakeGitHub:
    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.hooks: dict[str, dict[int, dict[str, Any]]] = {}
        """Collection path (`/repos/o/r/hooks`) -> hook id -> hook."""
        self.fail_next: dict[str, tuple[int, dict[str, Any]]] = {}
        self._ids = itertools.count(400_000_001)
        self._runner: web.AppRunner | None = None
        self.url = ""

    def seed(self, collection: str, url: str, events: list[str]) -> int:
        """A hook that exists on GitHub before the test starts."""
        hook_id = next(self._ids)
        self.hooks.setdefault(collection, {})[hook_id] = {
            "id": hook_id, "name": "web", "active": True, "events": events,
            "config": {"url": url, "content_type": "json", "insecure_ssl": "0"},
        }  # fmt: skip
        return hook_id

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def __aenter__(self) -> FakeGitHub:
        app = web.Application()
        for prefix in ("/repos/{owner}/{repo}", "/orgs/{owner}"):
            app.router.add_route("POST", prefix + "/hooks", self._create)
            app.router.add_route("GET", prefix + "/hooks", self._list)
            app.router.add_route("PATCH", prefix + "/hooks/{id}", self._edit)
            app.router.add_route("DELETE", prefix + "/hooks/{id}", self._delete)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _record(self, request: web.Request) -> web.Response | None:
        body = await request.json() if request.can_read_body else None
        auth = request.headers.get("Authorization", "")
        self.calls.append(Call(request.method, request.path, auth, body))
        if auth not in (f"Bearer {self.token}", f"token {self.token}"):
            return _problem(401, "Bad credentials")
        failure = self.fail_next.pop(request.method, None)
        if failure is not None:
            return _json(*failure)
        return None

    def _collection(self, request: web.Request) -> str:
        return request.path.rsplit("/hooks", 1)[0] + "/hooks"

    def _invalid(self, body: Any) -> web.Response | None:
        config = body.get("config") if isinstance(body, dict) else None
        if not isinstance(config, dict) or not config.get("url"):
            detail = {"resource": "Hook", "code": "custom", "message": "Config must contain URL"}
            return _problem(422, "Validation Failed", [detail])
        if body.get("name", "web") != "web" or config.get("content_type") not in ("json", "form"):
            return _problem(422, "Validation Failed", [{"resource": "Hook", "code": "invalid"}])
        return None

    async def _create(self, request: web.Request) -> web.Response:
        answer = await self._record(request)
        if answer is not None:
            return answer
        body = await request.json()
        problem = self._invalid(body)
        if problem is not None:
            return problem
        hooks = self.hooks.setdefault(self._collection(request), {})
        if any(h["config"]["url"] == body["config"]["url"] for h in hooks.values()):
            return _problem(422, "Validation Failed", [{
                "resource": "Hook", "code": "custom",
                "message": "Hook already exists on this repository",
            }])  # fmt: skip
        hook_id = next(self._ids)
        hooks[hook_id] = {
            "id": hook_id, "name": "web", "active": body.get("active", True),
            "events": body.get("events", ["push"]),
            "config": {k: v for k, v in body["config"].items() if k != "secret"},
            "secret": body["config"].get("secret"),  # kept aside: GitHub never shows it back
        }  # fmt: skip
        return _json(201, _public(hooks[hook_id]))

    async def _list(self, request: web.Request) -> web.Response:
        answer = await self._record(request)
        if answer is not None:
            return answer
        hooks = self.hooks.get(self._collection(request), {})
        return _json(200, [_public(h) for h in hooks.values()])

    def _find(self, request: web.Request) -> dict[str, Any] | None:
        hooks = self.hooks.get(self._collection(request), {})
        try:
            return hooks.get(int(request.match_info["id"]))
        except ValueError:
            return None

    async def _edit(self, request: web.Request) -> web.Response:
        answer = await self._record(request)
        if answer is not None:
            return answer
        found = self._find(request)
        if found is None:
            return _problem(404, "Not Found")
        body = await request.json()
        problem = self._invalid(body)
        if problem is not None:
            return problem
        found["events"] = body.get("events", found["events"])
        found["active"] = body.get("active", found["active"])
        found["config"] = {k: v for k, v in body["config"].items() if k != "secret"}
        found["secret"] = body["config"].get("secret")
        return _json(200, _public(found))

    async def _delete(self, request: web.Request) -> web.Response:
        answer = await self._record(request)
        if answer is not None:
            return answer
        found = self._find(request)
        if found is None:
            return _problem(404, "Not Found")
        del self.hooks[self._collection(request)][found["id"]]
        return web.Response(status=204)
