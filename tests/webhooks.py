"""Test harness for the GitHub adapter: a loopback sink, the adapter in-process, signed posts.

`Sink` records decoded CloudEvents (and can fail, refuse or hold them). `Adapter` runs
`sources.github.adapter.Adapter` under the shared runner on 127.0.0.1 with a fast retry
policy; `post()` sends a webhook the way GitHub does (signed body, event and delivery headers).
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import uuid
from collections.abc import Mapping

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from kevents import cloudevent, probes, retries, runner
from sources.github import adapter, config, signature

SECRET = "test-webhook-secret-5b1c"
FAST = retries.RetryPolicy(retry=2, backoff_delay=0.01, timeout=2.0, retry_after_max=0.05)
"""3 quick attempts: tests see the sink's failure in tens of milliseconds."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass
class Sink:
    port: int = dataclasses.field(default_factory=free_port)
    events: list[cloudevent.CloudEvent] = dataclasses.field(default_factory=list)
    arrived: list[str] = dataclasses.field(default_factory=list)
    """Ids of the events that reached the sink, in order, before `hold` lets them answer."""
    status: int = 202
    hold: asyncio.Event | None = None
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def _handle(self, request: web.Request) -> web.Response:
        event = cloudevent.decode(dict(request.headers), await request.read())
        self.arrived.append(event.get_id())
        if self.hold is not None:
            await self.hold.wait()
        if self.status < 300:
            self.events.append(event)
        return web.Response(status=self.status)

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def ids(self) -> list[str]:
        return [e.get_id() for e in self.events]


@dataclasses.dataclass(frozen=True, slots=True)
class Reply:
    status: int
    text: str
    headers: Mapping[str, str]


class Adapter:
    """The adapter in this process; `async with` starts and stops it."""

    def __init__(self, sink_url: str, **env: str) -> None:
        self.port = free_port()
        values = {
            "K_SINK": sink_url,
            "NAMESPACE": "default",
            "NAME": "gh",
            "GITHUB_SECRET_TOKEN": SECRET,
            "GITHUB_OWNER_REPO": "Codertocat/Hello-World",
            "PORT": str(self.port),
            "KEVENTS_PROBES_PORT": str(self.port),
            "KEVENTS_RECEIVER_HOST": "127.0.0.1",
            "GITHUB_ACK_TIMEOUT": "5",
            **env,
        }
        self.settings = config.Settings.from_env(values)
        self.registry = CollectorRegistry()
        self.readiness = probes.Readiness()
        self.adapter = adapter.Adapter(
            self.settings, registry=self.registry, readiness=self.readiness, policy=FAST
        )
        self._runner = runner.Runner(
            self.adapter.components(), readiness=self.readiness, handle_signals=False, grace=10
        )
        self._task: asyncio.Task[int] | None = None
        self._http: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Adapter:
        self._task = asyncio.create_task(self._runner.run())
        await asyncio.wait_for(self.adapter.server.wait_started(), 10)
        for _ in range(100):
            if self.readiness.ready:
                break
            await asyncio.sleep(0.01)
        self._http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._http is not None:
            await self._http.close()
        self._runner.request_stop()
        assert self._task is not None
        assert await asyncio.wait_for(self._task, 20) == 0

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    async def post(
        self,
        event: str | None,
        body: bytes,
        *,
        delivery: str | None = None,
        secret: str | None = SECRET,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """POST like GitHub: signed with `secret` (None = unsigned), a fresh delivery id."""
        sent = {"Content-Type": content_type, "User-Agent": "GitHub-Hookshot/test"}
        if event is not None:
            sent["X-GitHub-Event"] = event
        sent["X-GitHub-Delivery"] = delivery if delivery is not None else str(uuid.uuid4())
        if secret is not None:
            sent[signature.HEADER] = signature.sign(secret.encode(), body)
        sent.update(headers or {})
        assert self._http is not None
        async with self._http.post(self.url + "/", data=body, headers=sent) as response:
            return Reply(response.status, await response.text(), dict(response.headers))

    async def get(self, path: str) -> Reply:
        assert self._http is not None
        async with self._http.get(self.url + path) as response:
            return Reply(response.status, await response.text(), dict(response.headers))
