"""What GitHub (or anyone else) is answered when something is wrong, and that nothing crashes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import pytest

from hack import octokit
from sources.github import signature
from tests import waiting as waiting_for
from tests import webhooks

PING = octokit.example("ping")


@pytest.fixture
async def sink() -> AsyncIterator[webhooks.Sink]:
    state = webhooks.Sink()
    await state.start()
    yield state
    await state.stop()


@pytest.fixture
async def adapter(sink: webhooks.Sink) -> AsyncIterator[webhooks.Adapter]:
    async with webhooks.Adapter(sink.url, GITHUB_MAX_PAYLOAD_BYTES="65536") as running:
        yield running


@pytest.mark.parametrize(
    ("secret", "headers", "reason"),
    [
        (None, {}, "missing"),
        ("another-secret", {}, "mismatch"),
        (None, {signature.HEADER: "sha1=" + "0" * 40}, "malformed"),
        (None, {"X-Hub-Signature": "sha1=" + "0" * 40}, "missing"),
    ],
    ids=["unsigned", "wrong-secret", "sha1-in-sha256-header", "only-legacy-sha1"],
)
async def test_bad_signature_is_401_and_counted(
    adapter: webhooks.Adapter,
    sink: webhooks.Sink,
    secret: str | None,
    headers: dict[str, str],
    reason: str,
) -> None:
    reply = await adapter.post("ping", PING.body, secret=secret, headers=headers)
    assert reply.status == 401
    assert signature.HEADER in reply.text
    assert webhooks.SECRET not in reply.text
    assert adapter.sample("kevents_github_signature_failures_total", reason=reason) == 1
    assert sink.events == []


async def test_tampered_body_is_401(adapter: webhooks.Adapter, sink: webhooks.Sink) -> None:
    good = signature.sign(webhooks.SECRET.encode(), PING.body)
    tampered = PING.body.replace(b"Octocoders", b"Mallory")
    reply = await adapter.post("ping", tampered, secret=None, headers={signature.HEADER: good})
    assert (reply.status, sink.events) == (401, [])
    assert "does not match the payload" in reply.text


@pytest.mark.parametrize(
    ("event", "body", "content_type", "headers", "status", "text"),
    [
        (None, PING.body, "application/json", {}, 400, "missing X-GitHub-Event header"),
        ("ping", PING.body, "application/json", {"X-GitHub-Delivery": ""}, 400,
         "missing X-GitHub-Delivery header"),
        ("Push Event", PING.body, "application/json", {}, 400, "is not a GitHub event name"),
        ("ping", b'{"hook_id": 1,', "application/json", {}, 400, "malformed JSON payload"),
        ("ping", b"[1, 2]", "application/json", {}, 400, "must be a JSON object, got list"),
        ("ping", b"\xff\xfe", "application/json", {}, 400, "malformed JSON payload"),
        ("ping", PING.body, "text/plain", {}, 415, "neither application/json nor form"),
        ("ping", b"zen=x", "application/x-www-form-urlencoded", {}, 400, "'payload' field"),
    ],
    ids=[
        "no-event-header", "no-delivery-header", "bad-event-name", "truncated-json",
        "json-array", "not-utf8", "text-plain", "form-without-payload",
    ],
)  # fmt: skip
async def test_malformed_requests_get_a_clear_4xx(
    adapter: webhooks.Adapter,
    sink: webhooks.Sink,
    event: str | None,
    body: bytes,
    content_type: str,
    headers: dict[str, str],
    status: int,
    text: str,
) -> None:
    reply = await adapter.post(event, body, content_type=content_type, headers=headers)
    assert reply.status == status
    assert text in reply.text
    assert sink.events == []
    assert (await adapter.post("ping", PING.body)).status == 202  # still serving


async def test_form_encoded_webhooks_are_accepted(
    adapter: webhooks.Adapter, sink: webhooks.Sink
) -> None:
    body = urlencode({"payload": PING.body.decode()}).encode()
    reply = await adapter.post("ping", body, content_type="application/x-www-form-urlencoded")
    assert reply.status == 202
    assert sink.events[0].get_data() == json.loads(PING.body)


async def test_payload_above_limit_is_413(adapter: webhooks.Adapter, sink: webhooks.Sink) -> None:
    padded = json.dumps({**PING.payload, "padding": "x" * 70_000}).encode()
    reply = await adapter.post("ping", padded)
    assert reply.status == 413
    assert "65536 byte limit" in reply.text
    assert adapter.sample("kevents_github_webhooks_total", event="ping", outcome="too_large") == 1
    assert sink.events == []
    assert (await adapter.post("ping", PING.body)).status == 202


async def _post_whole(port: int, body: bytes) -> int:
    """POST all of `body`, then read the answer until the server closes the connection.

    aiohttp's client stops uploading once a 413 arrives, and aiohttp's server (3.14) then
    lingers for the rest of a body that never comes, past our shutdown."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-GitHub-Event: ping\r\nX-GitHub-Delivery: big\r\n"
        f"{signature.HEADER}: {signature.sign(webhooks.SECRET.encode(), body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    await reader.read()  # until the server closes: it has consumed the whole upload
    writer.close()
    await writer.wait_closed()
    return status


# aiohttp advises (ResourceWarning, ignored by Python's default filters) against bodies above
# 1 MiB passed as bytes: the adapter's sender forwards 25 MB here.
@pytest.mark.filterwarnings("ignore:Sending a large body directly:ResourceWarning")
async def test_githubs_25_mb_cap_is_the_default(sink: webhooks.Sink) -> None:
    limit = 25 * 1024 * 1024
    async with webhooks.Adapter(sink.url) as adapter:
        at_limit = json.dumps({**PING.payload, "p": ""}).encode()
        at_limit = at_limit[:-2] + b"x" * (limit - len(at_limit)) + at_limit[-2:]
        assert len(at_limit) == limit
        accepted = await _post_whole(adapter.port, at_limit)
        above = await _post_whole(adapter.port, at_limit[:-2] + b"x" + at_limit[-2:])
    assert (accepted, above) == (202, 413)
    assert len(sink.events) == 1


async def test_sink_down_is_503_then_redelivery_gets_through() -> None:
    sink = webhooks.Sink()  # not listening yet: connections are refused
    async with webhooks.Adapter(sink.url) as adapter:
        down = await adapter.post("ping", PING.body, delivery="redeliver-me")
        await sink.start()
        try:
            again = await adapter.post("ping", PING.body, delivery="redeliver-me")
            twice = await adapter.post("ping", PING.body, delivery="redeliver-me")
        finally:
            await sink.stop()
    assert down.status == 503
    assert down.headers["Retry-After"] == "5"
    assert "the sink did not accept the event" in down.text
    assert (again.status, twice.status) == (202, 200)
    assert sink.ids() == ["redeliver-me"]


@pytest.mark.parametrize(
    ("sink_status", "status"), [(500, 503), (429, 503), (400, 502)], ids=["500", "429", "400"]
)
async def test_sink_failures_are_5xx(
    adapter: webhooks.Adapter, sink: webhooks.Sink, sink_status: int, status: int
) -> None:
    sink.status = sink_status
    reply = await adapter.post("ping", PING.body, delivery="d")
    assert reply.status == status
    assert f"status {sink_status}" in reply.text
    sink.status = 202
    assert (await adapter.post("ping", PING.body, delivery="d")).status == 202
    assert sink.ids() == ["d"]


async def test_full_queue_is_503_and_slow_sink_is_202_queued(sink: webhooks.Sink) -> None:
    sink.hold = asyncio.Event()
    env = {"GITHUB_QUEUE_SIZE": "1", "GITHUB_SEND_WORKERS": "1", "GITHUB_ACK_TIMEOUT": "0.5"}
    async with webhooks.Adapter(sink.url, **env) as adapter:
        in_flight = asyncio.create_task(adapter.post("ping", PING.body, delivery="a"))
        await waiting_for.until(lambda: sink.arrived == ["a"])  # the queue is empty again
        waiting = asyncio.create_task(adapter.post("ping", PING.body, delivery="b"))
        await waiting_for.until(  # "b" fills the queue
            lambda: adapter.sample("kevents_send_queue_depth", queue="sink") == 1
        )
        full = await adapter.post("ping", PING.body, delivery="c")
        queued = await asyncio.gather(in_flight, waiting)
        sink.hold.set()
        await waiting_for.until(lambda: len(sink.events) == 2)
        overloaded = adapter.sample("kevents_github_webhooks_total", event="ping",
                                    outcome="overloaded")  # fmt: skip
    assert (full.status, full.headers["Retry-After"]) == (503, "5")
    assert "overloaded" in full.text
    assert [r.status for r in queued] == [202, 202]
    assert all(r.text.startswith("queued") for r in queued)
    assert sorted(sink.ids()) == ["a", "b"]
    assert overloaded == 1


async def test_probes_share_the_webhook_port(adapter: webhooks.Adapter) -> None:
    assert (await adapter.get("/health")).status == 200
    ready = await adapter.get("/readiness")
    assert (ready.status, ready.text) == (200, "ready")
