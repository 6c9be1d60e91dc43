"""Shared pieces of the dispatcher tests: loopback subscribers, channels, an in-process dispatcher.

Channels are real InMemoryChannel objects on the real API server, with `spec.subscribers`
written directly, as the Subscription reconciler would write them.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from opentelemetry import trace
from prometheus_client import CollectorRegistry

from dispatcher import service
from dispatcher import settings as dispatcher_settings
from kevents import cloudevent, kubeapi, probes, runner, sender
from tests import cluster, waiting

CRD = pathlib.Path(__file__).resolve().parents[2] / "manifests" / "300-inmemorychannel.yaml"
TRIGGER_CRD = CRD.parent / "300-trigger.yaml"
GROUP, VERSION, PLURAL = "messaging.knative.dev", "v1", "inmemorychannels"
_crd_applied: list[bool] = []
ASYNC = {"messaging.knative.dev/async-handler": "true"}
"""Knative's annotation for a channel that answers 202 before delivery (default: after)."""

Responder = Callable[[web.Request, cloudevent.CloudEvent], Awaitable[web.StreamResponse]]


def ensure_crd(kube: cluster.Kube) -> None:
    """Apply the InMemoryChannel and Trigger CRDs (the dispatcher watches both) once per
    test session and wait until they are served."""
    if _crd_applied:
        return
    kube.kubectl("apply", "-f", str(CRD), "-f", str(TRIGGER_CRD))
    kube.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", f"crd/{PLURAL}.{GROUP}",
        "crd/triggers.eventing.knative.dev",
    )  # fmt: skip
    _crd_applied.append(True)


@dataclass
class Subscriber:
    """A loopback subscriber recording what arrives; `respond` decides each answer."""

    respond: Responder | None = None
    events: list[cloudevent.CloudEvent] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    attempts: int = 0
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.attempts += 1
        event = cloudevent.decode(dict(request.headers), await request.read())
        self.events.append(event)
        self.headers.append(dict(request.headers))
        if self.respond is not None:
            return await self.respond(request, event)
        return web.Response(status=202)

    def ids(self) -> list[str]:
        return [e.get_id() for e in self.events]


@contextlib.asynccontextmanager
async def serving(*subscribers: Subscriber) -> AsyncIterator[None]:
    """Serve each subscriber on its own loopback port (sets `.url`)."""
    runners: list[web.AppRunner] = []
    try:
        for sub in subscribers:
            app = web.Application()
            app.router.add_post("/", sub.handle)
            app_runner = web.AppRunner(app)
            await app_runner.setup()
            runners.append(app_runner)
            site = web.TCPSite(app_runner, "127.0.0.1", 0)
            await site.start()
            sub.url = f"http://127.0.0.1:{app_runner.addresses[0][1]}/"
        yield
    finally:
        for app_runner in runners:
            await app_runner.cleanup()


def subscriber_entry(
    uid: str, sub: Subscriber | None, *, reply: Subscriber | None = None, **delivery: Any
) -> dict[str, Any]:
    """One `spec.subscribers[]` entry as the controller writes it."""
    entry: dict[str, Any] = {"uid": uid, "generation": 1}
    if sub is not None:
        entry["subscriberUri"] = sub.url
    if reply is not None:
        entry["replyUri"] = reply.url
    if delivery:
        entry["delivery"] = delivery
    return entry


async def create_channel(
    api: client.ApiClient,
    namespace: str,
    name: str,
    subscribers: list[dict[str, Any]],
    delivery: dict[str, Any] | None = None,
    *,
    annotations: dict[str, str] | None = None,
) -> None:
    """`annotations=ASYNC` for a channel that acknowledges before delivery."""
    spec: dict[str, Any] = {"subscribers": subscribers}
    if delivery is not None:
        spec["delivery"] = delivery
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InMemoryChannel",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": spec,
    }
    await client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body
    )


async def set_subscribers(
    api: client.ApiClient, namespace: str, name: str, subscribers: list[dict[str, Any]]
) -> None:
    """Replace `spec.subscribers` (retrying when the dispatcher's status write got between)."""
    objects = client.CustomObjectsApi(api)
    for _ in range(10):
        obj = await objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        obj["spec"]["subscribers"] = subscribers
        try:
            await objects.replace_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, obj
            )
            return
        except ApiException as exc:
            if exc.status != 409:
                raise
    raise AssertionError(f"could not update channel {namespace}/{name}: conflicts")


async def get_channel(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = await client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    return obj


def settings_for_tests(**env: str) -> dispatcher_settings.DispatcherSettings:
    return dispatcher_settings.DispatcherSettings.from_env(
        {
            "KEVENTS_INGRESS_PORT": "0",
            "KEVENTS_BROKER_INGRESS_PORT": "0",
            "KEVENTS_INGRESS_HOST": "127.0.0.1",
            **env,
        }
    )


@contextlib.asynccontextmanager
async def running_dispatcher(
    api: client.ApiClient,
    *,
    event_sender: sender.Sender | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    broker_tracer_providers: tuple[trace.TracerProvider, trace.TracerProvider] | None = None,
    registry: CollectorRegistry | None = None,
    **env: str,
) -> AsyncIterator[service.Dispatcher]:
    """A dispatcher in this process (ingress on 127.0.0.1, random port), stopped after."""
    readiness = probes.Readiness()
    dispatcher = service.Dispatcher(
        kubeapi.KubeApi(api),
        settings_for_tests(**env),
        registry=registry if registry is not None else CollectorRegistry(),
        readiness=readiness,
        tracer_provider=tracer_provider,
        broker_tracer_providers=broker_tracer_providers,
        event_sender=event_sender,
    )
    run = runner.Runner(
        dispatcher.components(), readiness=readiness, handle_signals=False, grace=10
    )
    task = asyncio.create_task(run.run())
    try:
        await waiting.until(lambda: readiness.ready or task.done())
        assert not task.done(), "the dispatcher stopped while starting"
        yield dispatcher
    finally:
        run.request_stop()
        assert await task == 0


async def served(dispatcher: service.Dispatcher, namespace: str, name: str, lanes: int) -> None:
    """Wait until the dispatcher serves the channel with `lanes` subscribers."""

    def ready() -> bool:
        route = dispatcher.fanout.routes.get((namespace, name))
        return route is not None and len(route.lanes) == lanes

    await waiting.until(ready)


def event(id: str = "e-1", **extensions: str) -> cloudevent.CloudEvent:
    return cloudevent.build(
        "dev.example.test",
        "/tests/dispatcher",
        {"hello": "world"},
        id=id,
        datacontenttype="application/json",
        extensions=extensions,
    )


async def post(
    url: str,
    ce: cloudevent.CloudEvent | None = None,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    structured: bool = False,
    method: str = "POST",
) -> tuple[int, str, dict[str, str]]:
    """Send one request; (status, body text, response headers)."""
    send_headers: dict[str, str] = {}
    data = body if body is not None else b""
    if ce is not None:
        encoding = cloudevent.Encoding.STRUCTURED if structured else cloudevent.Encoding.BINARY
        message = cloudevent.encode(ce, encoding)
        send_headers.update(message.headers)
        data = message.body
    send_headers.update(headers or {})
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, data=data, headers=send_headers) as response,
    ):
        return response.status, await response.text(), dict(response.headers)


class FakeClock:
    """The sender's clock: sleeps are recorded and advance virtual time instantly."""

    def __init__(self) -> None:
        self.time = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.time

    def now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=self.time)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += seconds
        await asyncio.sleep(0)
