"""event-display: Knative's log layout, the JSON listing and the live event stream."""

from __future__ import annotations

import asyncio
import datetime
import io
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from display import layout, server
from kevents import cloudevent


def _event(**extensions: object) -> cloudevent.CloudEvent:
    return cloudevent.build(
        "dev.knative.apiserver.resource.add",
        "https://10.96.0.1:443",
        {"kind": "Pod", "metadata": {"name": "p"}},
        id="1234",
        subject="/apis/v1/namespaces/default/pods/p",
        datacontenttype="application/json",
        time=datetime.datetime(2026, 11, 23, 10, 0, 0, tzinfo=datetime.UTC),
        extensions=extensions or None,
    )


def test_layout_matches_knative_event_display() -> None:
    text = layout.render(_event(name="p", kind="Pod"))
    assert text == (
        "☁️  cloudevents.Event\n"
        "Context Attributes,\n"
        "  specversion: 1.0\n"
        "  type: dev.knative.apiserver.resource.add\n"
        "  source: https://10.96.0.1:443\n"
        "  subject: /apis/v1/namespaces/default/pods/p\n"
        "  id: 1234\n"
        "  time: 2026-11-23T10:00:00Z\n"
        "  datacontenttype: application/json\n"
        "Extensions,\n"
        "  kind: Pod\n"
        "  name: p\n"
        "Data,\n"
        "  {\n"
        '    "kind": "Pod",\n'
        '    "metadata": {\n'
        '      "name": "p"\n'
        "    }\n"
        "  }\n"
    )


def test_layout_without_extensions_or_data() -> None:
    event = cloudevent.build("t", "s", None, id="1")
    text = layout.render(event)
    assert "Extensions," not in text
    assert "Data," not in text
    assert text.splitlines()[:5] == [
        "☁️  cloudevents.Event",
        "Context Attributes,",
        "  specversion: 1.0",
        "  type: t",
        "  source: s",
    ]


@pytest.fixture
async def display() -> AsyncIterator[tuple[str, io.StringIO]]:
    out = io.StringIO()
    app = server.Display(registry=CollectorRegistry(), history=3, out=out).app()
    app_runner = web.AppRunner(app)
    await app_runner.setup()
    await web.TCPSite(app_runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{app_runner.addresses[0][1]}", out
    finally:
        await app_runner.cleanup()


async def _post(http: aiohttp.ClientSession, url: str, event: cloudevent.CloudEvent) -> int:
    message = cloudevent.encode(event)
    async with http.post(url + "/", data=message.body, headers=dict(message.headers)) as resp:
        return resp.status


async def test_received_events_are_logged_listed_and_streamed(
    display: tuple[str, io.StringIO],
) -> None:
    url, out = display
    async with aiohttp.ClientSession() as http:
        assert await _post(http, url, _event(name="first")) == 202
        assert "  name: first\n" in out.getvalue()
        async with http.get(url + "/events/stream") as stream:
            # the stream opens with the server's clock (the page's chart places events by it)
            assert await asyncio.wait_for(stream.content.readline(), 5) == b"event: clock\n"
            clock = await asyncio.wait_for(stream.content.readline(), 5)
            assert abs(json.loads(clock.decode().removeprefix("data: "))["now"] - time.time()) < 60
            await stream.content.readline()
            first = await asyncio.wait_for(stream.content.readline(), 5)
            assert json.loads(first.decode().removeprefix("data: "))["extensions"] == {
                "name": "first"
            }
            await stream.content.readline()  # blank line ending the SSE message
            assert await _post(http, url, _event(name="second")) == 202
            live = await asyncio.wait_for(stream.content.readline(), 5)
            item = json.loads(live.decode().removeprefix("data: "))
            assert item["attributes"]["type"] == "dev.knative.apiserver.resource.add"
            assert item["extensions"] == {"name": "second"}
            assert '"kind": "Pod"' in item["data"]
        for i in range(5):
            await _post(http, url, _event(name=f"n{i}"))
        async with http.get(url + "/events") as resp:
            kept = await resp.json()
        assert [k["extensions"]["name"] for k in kept] == ["n2", "n3", "n4"]
        async with http.get(url + "/") as resp:
            assert "text/html" in resp.headers["Content-Type"]
            assert "EventSource" in await resp.text()


async def test_invalid_event_is_rejected_with_reason(display: tuple[str, io.StringIO]) -> None:
    url, out = display
    async with aiohttp.ClientSession() as http, http.post(url + "/", data=b"hello") as resp:
        assert resp.status == 400
        assert "not a CloudEvent" in await resp.text()
    assert out.getvalue() == ""


async def test_health_answers_on_knatives_path_too(display: tuple[str, io.StringIO]) -> None:
    """`/healthz` is Knative's event_display's probe path (204): a probe written for one
    program fits the other."""
    url, _ = display
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/healthz") as resp:
            assert resp.status == 204
        async with http.get(url + "/health") as resp:
            assert resp.status == 200
