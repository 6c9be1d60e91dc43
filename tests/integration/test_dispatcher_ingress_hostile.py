"""The dispatcher's ingress against hostile producers (issue 17 points 4-7 and its fuzz
acceptance, issue 18 point 6): a real in-process dispatcher on loopback, real InMemoryChannels
on the real API server, loopback subscribers, raw sockets for what well-behaved clients never
send. The fuzz cases come from `tests/fuzzing.py`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import resource
import socket
from collections import Counter

import pytest
from aiohttp import web
from kubernetes_asyncio import client
from prometheus_client import CollectorRegistry

from kevents import cloudevent
from tests import cluster, fuzzing, waiting
from tests.integration import dispatcher_harness as h

pytestmark = pytest.mark.cluster

STRUCTURED = {"Content-Type": "application/cloudevents+json"}


@pytest.fixture(autouse=True)
def _crd(kube: cluster.Kube) -> None:
    h.ensure_crd(kube)


def _nested(event_id: str, depth: int) -> bytes:
    head = b'{"specversion":"1.0","id":"' + event_id.encode() + b'","source":"/s","type":"t",'
    return head + b'"data":' + b"[" * depth + b"]" * depth + b"}"


def _received(registry: CollectorRegistry, code: int) -> float:
    result = "accepted" if code == 202 else "rejected"
    labels = {"result": result, "response_code": str(code)}
    return registry.get_sample_value("kevents_dispatcher_events_received_total", labels) or 0.0


async def test_event_nested_1000_levels_is_a_400_counted_in_the_metric(
    api_client: client.ApiClient, namespace: str
) -> None:
    """Issue 17 point 4: a 2 KB event nested 1,000 deep got a 500 (RecursionError)."""
    sub = h.Subscriber()
    registry = CollectorRegistry()
    async with h.serving(sub), h.running_dispatcher(api_client, registry=registry) as dispatcher:
        await h.create_channel(api_client, namespace, "ch", [h.subscriber_entry("u1", sub)])
        await h.served(dispatcher, namespace, "ch", 1)
        url = f"{dispatcher.server.url}/{namespace}/ch"
        body = _nested("deep", 1_000)
        assert len(body) < 2_100
        status, text, _ = await h.post(url, headers=STRUCTURED, body=body)
        assert (status, text) == (
            400,
            "invalid CloudEvent: JSON nested more than 256 levels deep\n",
        )
        binary = {"ce-specversion": "1.0", "ce-id": "b", "ce-source": "/s", "ce-type": "t",
                  "Content-Type": "application/json"}  # fmt: skip
        deep_data = b'{"a":' + b"[" * 1000 + b"]" * 1000 + b"}"
        assert (await h.post(url, headers=binary, body=deep_data))[0] == 400
        assert _received(registry, 400) == 2
        assert _received(registry, 500) == 0
        assert (await h.post(url, h.event("sentinel")))[0] == 202
        await waiting.until(lambda: sub.ids() == ["sentinel"])


async def test_reply_nested_too_deeply_goes_to_the_dead_letter_sink(
    api_client: client.ApiClient, namespace: str
) -> None:
    """A subscriber's reply body is decoded as an event: nested 1,000 deep it used to raise
    RecursionError in the courier (event lost); now it is an invalid reply, dead-lettered."""

    async def deep_reply(request: web.Request, event: cloudevent.CloudEvent) -> web.Response:
        body = _nested("r-" + event.get_id(), 1_000)
        return web.Response(status=200, body=body, headers=STRUCTURED)

    sub, reply, dls = h.Subscriber(respond=deep_reply), h.Subscriber(), h.Subscriber()
    async with h.serving(sub, reply, dls), h.running_dispatcher(api_client) as dispatcher:
        entry = h.subscriber_entry("u1", sub, reply=reply, deadLetterSink={"uri": dls.url})
        await h.create_channel(api_client, namespace, "ch", [entry])
        await h.served(dispatcher, namespace, "ch", 1)
        await h.post(f"{dispatcher.server.url}/{namespace}/ch", h.event("e-1"))
        await waiting.until(lambda: dls.ids() == ["e-1"])
        assert reply.events == []


@pytest.mark.parametrize("structured", [False, True], ids=["binary", "structured"])
async def test_invalid_attribute_name_is_a_400_naming_it(
    api_client: client.ApiClient, namespace: str, structured: bool
) -> None:
    """Issue 18 point 6: `ce-Bad_Ext` was accepted and the attribute dropped silently."""
    sub = h.Subscriber()
    async with h.serving(sub), h.running_dispatcher(api_client) as dispatcher:
        await h.create_channel(api_client, namespace, "ch", [h.subscriber_entry("u1", sub)])
        await h.served(dispatcher, namespace, "ch", 1)
        url = f"{dispatcher.server.url}/{namespace}/ch"
        if structured:
            body = json.dumps({"specversion": "1.0", "id": "1", "source": "/s", "type": "t",
                               "Bad_Ext": "x"}).encode()  # fmt: skip
            status, text, _ = await h.post(url, headers=STRUCTURED, body=body)
        else:
            status, text, _ = await h.post(url, h.event("1"), headers={"ce-Bad_Ext": "x"})
        assert status == 400
        assert "Bad_Ext" in text
        assert (await h.post(url, h.event("sentinel")))[0] == 202
        await waiting.until(lambda: sub.ids() == ["sentinel"])


def _half_closing_client(port: int, request: bytes) -> bytes:
    """Send `request`, shutdown(SHUT_WR), read the answer until EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


async def test_half_closed_request_is_answered_and_delivered_once(
    api_client: client.ApiClient, namespace: str
) -> None:
    """Issue 17 point 5: the event was delivered but the 202 never written."""
    sub = h.Subscriber()
    async with h.serving(sub), h.running_dispatcher(api_client) as dispatcher:
        await h.create_channel(api_client, namespace, "ch", [h.subscriber_entry("u1", sub)])
        await h.served(dispatcher, namespace, "ch", 1)
        answers = []
        for i in range(30):
            message = cloudevent.encode(h.event(f"h-{i}"))
            head = f"POST /{namespace}/ch HTTP/1.1\r\nHost: x\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in message.headers.items())
            head += f"Content-Length: {len(message.body)}\r\n\r\n"
            request = head.encode() + message.body
            answers.append(
                await asyncio.to_thread(_half_closing_client, dispatcher.server.port, request)
            )
        assert all(a.startswith(b"HTTP/1.1 202") for a in answers), answers
        url = f"{dispatcher.server.url}/{namespace}/ch"
        assert (await h.post(url, h.event("sentinel")))[0] == 202
        await waiting.until(lambda: "sentinel" in sub.ids())
        assert Counter(sub.ids()) == Counter([f"h-{i}" for i in range(30)] + ["sentinel"])


async def test_idle_and_slowloris_connections_are_closed_after_the_timeouts(
    api_client: client.ApiClient,
) -> None:
    """Issue 17 point 6: 1,000 connections that never send a request stayed open."""
    async with h.running_dispatcher(
        api_client, KEVENTS_INGRESS_HEADER_TIMEOUT="1", KEVENTS_INGRESS_IDLE_TIMEOUT="1"
    ) as dispatcher:
        ports = (dispatcher.server.port, dispatcher.broker_server.port)
        streams = [await asyncio.open_connection("127.0.0.1", ports[i % 2]) for i in range(400)]
        for _, writer in streams[:20]:
            writer.write(b"POST /a/b HTTP/1.1\r\nHost: x\r\nX-Slow: a")  # never finished
        async with asyncio.timeout(30):
            for reader, writer in streams:
                assert await reader.read() == b""  # EOF: closed by the server
                writer.close()


async def test_malformed_http_is_counted_not_logged_with_a_traceback_each(
    api_client: client.ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 17 point 7: an ERROR with a traceback per malformed request."""
    caplog.set_level(logging.INFO)
    registry = CollectorRegistry()
    async with h.running_dispatcher(api_client, registry=registry) as dispatcher:
        for i in range(300):
            garbage = random.Random(i).randbytes(50) + b"\r\n\r\n"
            await asyncio.to_thread(_half_closing_client, dispatcher.server.port, garbage)
    refused = sum(
        sample.value
        for metric in registry.collect()
        if metric.name == "kevents_http_requests_refused"
        for sample in metric.samples
        if sample.name.endswith("_total")
    )
    assert refused == 300
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert all(r.exc_info is None for r in loud)
    assert len(loud) <= 3, [r.getMessage() for r in loud]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


FUZZ_SEED = 20260617
FUZZ_COUNT = 10_000
MAX_BODY = 65_536


async def test_fuzzed_ingress_never_5xx_and_delivers_exactly_the_accepted(
    api_client: client.ApiClient, namespace: str
) -> None:
    """Issue 17 acceptance: 10,000 seeded requests (valid binary/structured/half-closed
    events, malformed HTTP, bad headers, huge, chunked and nested bodies, wrong content
    types, truncated half-closes) on real sockets: no 5xx, every 202 delivered exactly once,
    nothing else delivered, memory bounded."""
    sub = h.Subscriber()
    async with (
        h.serving(sub),
        h.running_dispatcher(
            api_client,
            KEVENTS_MAX_BODY_SIZE=str(MAX_BODY),
            KEVENTS_INGRESS_HEADER_TIMEOUT="5",
            KEVENTS_INGRESS_BODY_TIMEOUT="5",
        ) as dispatcher,
    ):
        await h.create_channel(api_client, namespace, "ch", [h.subscriber_entry("u1", sub)])
        await h.served(dispatcher, namespace, "ch", 1)
        cases = fuzzing.generate(FUZZ_SEED, FUZZ_COUNT, path=f"/{namespace}/ch", max_body=MAX_BODY)
        answers: list[int | None] = [None] * len(cases)
        port = dispatcher.server.port
        next_case = iter(range(len(cases)))
        rss_before = _rss_bytes()

        async def worker() -> None:
            for index in next_case:
                answers[index] = await fuzzing.exchange("127.0.0.1", port, cases[index])

        async with asyncio.TaskGroup() as group:
            for _ in range(32):
                group.create_task(worker())
        rss_after = _rss_bytes()
        url = f"{dispatcher.server.url}/{namespace}/ch"
        assert (await h.post(url, h.event("sentinel")))[0] == 202
        await waiting.until(lambda: "sentinel" in sub.ids())

    by_kind: dict[str, Counter[int | None]] = {}
    for case, answer in zip(cases, answers, strict=True):
        by_kind.setdefault(case.kind, Counter())[answer] += 1
    logging.getLogger(__name__).info("Fuzz answers by kind: %s", by_kind)
    assert not [a for a in answers if a is not None and a >= 500], by_kind
    accepted = [c.event_id for c, a in zip(cases, answers, strict=True) if a == 202]
    assert None not in accepted, by_kind  # only valid events are accepted
    delivered = Counter(sub.ids())
    assert delivered.pop("sentinel") == 1
    assert all(n == 1 for n in delivered.values()), "duplicates delivered"
    assert set(delivered) == set(accepted)
    valid = sum(1 for c in cases if c.event_id is not None)
    assert len(accepted) >= valid * 0.9, by_kind  # 429s aside, valid events get in
    assert {k for k, counts in by_kind.items() if 202 in counts} <= set(fuzzing.VALID_KINDS)
    assert rss_after - rss_before < 200 * 1024 * 1024
