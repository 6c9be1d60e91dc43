"""The metrics and probes ports on real loopback sockets: what Prometheus and the kubelet get
(through aiohttp's client, as a scraper), and what a hostile or broken client gets (raw
sockets): refusals that close, the header timeout, slowloris, pipelining, a client that
does not read its answers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, Counter, exposition, parser

from kevents import endpoints, opserver, probes

HOST = "127.0.0.1"


@contextlib.asynccontextmanager
async def serving(
    server: opserver.Server, *more: opserver.Server
) -> AsyncIterator[opserver.Server]:
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(s.run()) for s in (server, *more)]
        for s in (server, *more):
            await s.wait_started()
        try:
            yield server
        finally:
            for task in tasks:
                task.cancel()


def probes_server(
    readiness: probes.Readiness, *, header_timeout: float = 5.0, idle_timeout: float = 5.0
) -> opserver.Server:
    return opserver.Server(
        probes.routes(readiness), host=HOST, port=0, name="probes",
        header_timeout=header_timeout, idle_timeout=idle_timeout,
    )  # fmt: skip


async def read_until_eof(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(10):
        try:
            return await reader.read()
        except ConnectionResetError:
            return b"<reset>"  # closed with bytes of ours unread: the kernel answers a reset


async def test_scraped_and_probed_as_before() -> None:
    registry = CollectorRegistry()
    things = Counter("kevents_test_things", "Things counted by the test", registry=registry)
    readiness = probes.Readiness()
    metrics_server, probes_port = endpoints.servers(
        registry, readiness, metrics_host=HOST, metrics_port=0, probes_host=HOST, probes_port=0
    )
    assert isinstance(metrics_server, opserver.Server)
    assert isinstance(probes_port, opserver.Server)
    async with serving(metrics_server, probes_port), aiohttp.ClientSession() as http:

        async def get(url: str, method: str = "GET") -> tuple[int, str, str]:
            async with http.request(method, url) as response:
                return response.status, response.headers["Content-Type"], await response.text()

        things.inc(7)
        status, content_type, text = await get(metrics_server.url + "/metrics")
        assert (status, content_type) == (200, exposition.CONTENT_TYPE_LATEST)
        families = {f.name: f for f in parser.text_string_to_metric_families(text)}
        assert families["kevents_test_things"].samples[0].value == 7.0
        things.inc()
        status, _, text = await get(metrics_server.url + "/metrics")  # a kept-alive connection
        assert "\nkevents_test_things_total 8.0\n" in text
        plain = "text/plain; charset=utf-8"
        assert await get(probes_port.url + "/health") == (200, plain, "ok")
        assert await get(probes_port.url + "/readiness") == (503, plain, "not ready: starting")
        readiness.set_ready()
        assert await get(probes_port.url + "/readiness") == (200, plain, "ready")
        readiness.set_not_ready("watch lost")
        assert await get(probes_port.url + "/readiness") == (503, plain, "not ready: watch lost")
        assert await get(probes_port.url + "/nope") == (404, plain, "404: Not Found")
        assert await get(metrics_server.url + "/metrics", "POST") == (
            405, plain, "405: Method Not Allowed"
        )  # fmt: skip


@pytest.mark.parametrize(
    "request_bytes, status",
    [
        (b"GARBAGE / HTTP/1.1\r\n\r\n", b"400"),
        (b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n", b"431"),
        (b"GET /health HTTP/1.1\r\n" + b"X-A: 1\r\n" * 101 + b"\r\n", b"431"),
        (b"DELETE /health HTTP/1.1\r\nContent-Length: 100000\r\n\r\n", b"405"),
    ],
    ids=["malformed-request-line", "oversize-header", "too-many-headers", "delete"],
)
async def test_bad_requests_are_refused_and_the_connection_closed(
    request_bytes: bytes, status: bytes
) -> None:
    async with serving(probes_server(probes.Readiness())) as server:
        reader, writer = await asyncio.open_connection(HOST, server.port)
        writer.write(request_bytes + b"GET /health HTTP/1.1\r\n\r\n")
        answer = await read_until_eof(reader)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 " + status + b" ")
    assert b"Connection: close\r\n" in answer
    assert answer.count(b"HTTP/1.1") == 1  # the good request after it is not answered


async def test_connections_that_send_nothing_are_closed_after_the_header_timeout() -> None:
    async with serving(probes_server(probes.Readiness(), header_timeout=0.2)) as server:
        loop = asyncio.get_running_loop()
        opened = loop.time()
        streams = [await asyncio.open_connection(HOST, server.port) for _ in range(20)]
        for reader, writer in streams:
            assert await read_until_eof(reader) == b""  # EOF: the server closed it
            writer.close()
        assert loop.time() - opened >= 0.2 - 0.01
        assert not server.connections


async def test_slowloris_header_is_cut_at_the_header_timeout() -> None:
    async with serving(probes_server(probes.Readiness(), header_timeout=0.2)) as server:
        reader, writer = await asyncio.open_connection(HOST, server.port)
        header = b"GET /health HTTP/1.1\r\nX-Slow: " + b"a" * 1000
        sent = 0

        async def dribble() -> None:
            nonlocal sent
            for byte in header:
                writer.write(bytes([byte]))
                sent += 1
                await asyncio.sleep(0.01)  # a byte every 10 ms: never a complete header

        async with asyncio.TaskGroup() as group:
            sending = group.create_task(dribble())
            assert await read_until_eof(reader) in (b"", b"<reset>")
            sending.cancel()
        writer.close()
        assert sent < len(header) / 2  # cut long before the header could end


async def test_pipelined_requests_are_answered_in_order_then_the_idle_connection_closed() -> None:
    readiness = probes.Readiness()
    server = probes_server(readiness, header_timeout=5.0, idle_timeout=0.2)
    async with serving(server):
        reader, writer = await asyncio.open_connection(HOST, server.port)
        writer.write(
            b"GET /readiness HTTP/1.1\r\n\r\nGET /health HTTP/1.1\r\n\r\n"
            b"HEAD /health HTTP/1.1\r\n\r\nGET /readiness HTTP/1.1\r\n\r\n"
        )
        answers = await read_until_eof(reader)  # all four, then closed when idle
        writer.close()
    heads = [part.split(b"\r\n")[0] for part in answers.split(b"HTTP/1.1 ")[1:]]
    assert heads == [b"503 Service Unavailable", b"200 OK", b"200 OK", b"503 Service Unavailable"]
    assert answers.endswith(b"not ready: starting")


async def test_a_client_that_reads_late_gets_every_pipelined_answer() -> None:
    """Parsing stops while answers wait in the write buffer, and resumes as they drain."""
    registry = CollectorRegistry()
    for n in range(200):
        Counter(f"kevents_test_padding_{n}", "Makes the exposition ~30 KiB", registry=registry)
    (server,) = endpoints.servers(
        registry, probes.Readiness(), metrics_host=HOST, metrics_port=0, probes_port=None
    )
    assert isinstance(server, opserver.Server)
    requests = 300  # ~9 MiB of answers: more than the socket buffers and the high-water mark
    async with serving(server):
        reader, writer = await asyncio.open_connection(HOST, server.port)
        writer.write(b"GET /metrics HTTP/1.1\r\n\r\n" * requests)
        await writer.drain()
        answered = 0
        async with asyncio.timeout(20):
            while answered < requests:
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200 OK\r\n")
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                body = await reader.readexactly(length)
                assert b"\nkevents_test_padding_199_total 0.0\n" in body
                answered += 1
        writer.close()
    assert answered == requests
