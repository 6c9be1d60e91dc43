"""The hardened HTTP server on real loopback sockets: timeouts, half-close, quiet refusals.

Each case is what a hostile or broken client does with a raw socket (issue 17 points 5-7);
the server answers an inline handler that records what it accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from kevents import httpserver, webserver
from kevents import metrics as kevents_metrics

SMALL = httpserver.Timeouts(header=0.3, idle=0.3, body=0.3)
REQUEST = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"


class Recorder:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def handle(self, request: web.BaseRequest) -> web.Response:
        try:
            body = await httpserver.read_body(request, limit=1024, seconds=SMALL.body)
        except httpserver.BodyTimeoutError:
            return web.Response(status=408)
        except httpserver.ConnectionGoneError:
            return web.Response(status=400)
        if request.path == "/slow":
            await asyncio.sleep(0.05)  # the half-close arrives while the request is handled
        if not httpserver.answerable(request):
            return web.Response(status=400)
        self.bodies.append(body)
        return web.Response(status=202)


@contextlib.asynccontextmanager
async def serving(
    timeouts: httpserver.Timeouts = SMALL,
) -> AsyncIterator[tuple[int, Recorder, CollectorRegistry]]:
    registry = CollectorRegistry()
    recorder = Recorder()
    server = httpserver.Server(
        recorder.handle,
        name="test",
        timeouts=timeouts,
        metrics=kevents_metrics.HTTPServerMetrics(registry),
    )
    web_server = webserver.WebServer(server, host="127.0.0.1", port=0, shutdown_timeout=0.5)
    async with asyncio.TaskGroup() as group:
        task = group.create_task(web_server.run())
        summaries = group.create_task(server.run())
        await web_server.wait_started()
        try:
            yield web_server.port, recorder, registry
        finally:
            task.cancel()
            summaries.cancel()


def _closed(registry: CollectorRegistry, reason: str) -> float:
    value = registry.get_sample_value(
        "kevents_http_connections_closed_total", {"server": "test", "reason": reason}
    )
    return value or 0.0


async def _read_until_eof(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(10):
        return await reader.read()


async def test_connections_that_send_nothing_are_closed_after_the_header_timeout() -> None:
    async with serving() as (port, _, registry):
        streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(50)]
        for reader, writer in streams:
            assert await _read_until_eof(reader) == b""  # EOF: the server closed it
            writer.close()
        assert _closed(registry, "header_timeout") == 50


async def test_slowloris_header_is_cut_at_the_header_timeout() -> None:
    async with serving() as (port, _, registry):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        header = b"POST / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000

        async def dribble() -> None:
            for byte in header:
                writer.write(bytes([byte]))
                await asyncio.sleep(0.01)  # a byte every 10 ms: never a complete header

        async with asyncio.TaskGroup() as group:
            sending = group.create_task(dribble())
            try:
                assert await _read_until_eof(reader) == b""
            except ConnectionResetError:
                pass  # closed with dribbled bytes still unread: the kernel answers a reset
            sending.cancel()
        writer.close()
        assert _closed(registry, "header_timeout") == 1


async def test_idle_keep_alive_connection_is_closed_after_the_idle_timeout() -> None:
    async with serving() as (port, recorder, registry):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(REQUEST)
        status = await reader.readline()
        assert status.startswith(b"HTTP/1.1 202")
        rest = await _read_until_eof(reader)  # the rest of the answer, then EOF when idle
        assert b"Content-Length: 0" in rest
        writer.close()
        assert recorder.bodies == [b"hello"]
        assert _closed(registry, "idle_timeout") == 1


async def test_a_connection_busy_for_longer_than_the_header_timeout_stays_open_until_idle() -> None:
    """A connection's timer is set lazily, not per request: when it fires while requests keep
    coming it finds the connection busy or its deadline moved on, and leaves it open; once
    the client stops, the idle timeout closes it."""
    timeouts = httpserver.Timeouts(header=0.2, idle=2.0, body=1.0)
    async with serving(timeouts) as (port, recorder, registry):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        loop = asyncio.get_running_loop()
        until = loop.time() + 1.0  # five header timeouts
        sent = 0
        while loop.time() < until:
            writer.write(REQUEST)
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 202")
            sent += 1
            await asyncio.sleep(0.01)
        assert await _read_until_eof(reader) == b""  # closed once idle
        writer.close()
        assert len(recorder.bodies) == sent
        assert (_closed(registry, "header_timeout"), _closed(registry, "idle_timeout")) == (0, 1)


async def test_slow_body_gets_408() -> None:
    async with serving() as (port, recorder, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        answer = await _read_until_eof(reader)
        assert answer.startswith(b"HTTP/1.1 408")
        writer.close()
        assert recorder.bodies == []


def _half_closing_client(port: int, request: bytes) -> bytes:
    """A blocking client: send the request, shutdown(SHUT_WR), read the answer until EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.mark.parametrize("path", ["/", "/slow"], ids=["at-once", "while-handled"])
async def test_half_close_after_a_complete_request_is_answered(path: str) -> None:
    async with serving() as (port, recorder, registry):
        request = REQUEST.replace(b"POST / ", b"POST " + path.encode() + b" ")
        for _ in range(20):
            answer = await asyncio.to_thread(_half_closing_client, port, request)
            # Answered exactly once, then closed by the server (the client read to EOF).
            assert answer.startswith(b"HTTP/1.1 202"), answer
            assert answer.count(b"HTTP/1.1") == 1, answer
        assert recorder.bodies == [b"hello"] * 20
        half_closed = _closed(registry, "half_closed")
        if path == "/slow":
            # The half-close arrives while the handler sleeps: every connection was held
            # open for its answer.
            assert half_closed == 20
        else:
            # A handler that answers at once may write its answer before the server reads
            # the client's FIN; that FIN then ends an idle connection like any client close
            # and is not counted. Which comes first is up to the scheduler, not the client.
            assert 0 <= half_closed <= 20
        assert _closed(registry, "header_timeout") == _closed(registry, "idle_timeout") == 0


async def test_half_close_before_the_body_is_complete_accepts_nothing() -> None:
    async with serving() as (port, recorder, _):
        partial = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"
        answer = await asyncio.to_thread(_half_closing_client, port, partial)
        assert answer == b""
        # A sentinel on a new connection, answered after the partial one was dropped.
        assert (await asyncio.to_thread(_half_closing_client, port, REQUEST)).startswith(
            b"HTTP/1.1 202"
        )
        assert recorder.bodies == [b"hello"]


async def test_malformed_requests_are_counted_and_summarised_not_logged_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    garbage = [
        b"GARBAGE\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
        b"POST /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,  # a TLS hello
    ]
    caplog.set_level(logging.DEBUG)
    async with serving() as (port, _, registry):
        for _ in range(40):
            for request in garbage:
                answer = await asyncio.to_thread(_half_closing_client, port, request)
                assert answer.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request"), answer
    refused = sum(
        registry.get_sample_value(
            "kevents_http_requests_refused_total", {"server": "test", "reason": reason}
        )
        or 0.0
        for reason in httpserver.REASONS
    )
    assert refused == 200
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert all(r.exc_info is None for r in loud), [r.getMessage() for r in loud]
    assert 1 <= len(loud) <= 2, [r.getMessage() for r in loud]  # first line + final flush
    assert "Refused malformed HTTP requests on test" in loud[-1].getMessage()
