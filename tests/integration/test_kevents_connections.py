"""The lean HTTP/1.1 pool against scripted loopback servers: framing, reuse, limits, errors."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from kevents import connections

Script = Callable[[bytes], bytes]
"""Answer bytes for the request bytes received (one call per request)."""


class Server:
    def __init__(self, answer: Script, *, close_after: bool = False) -> None:
        self.answer = answer
        self.close_after = close_after
        self.requests: list[bytes] = []
        self.peers: list[object] = []
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.peers.append(writer.get_extra_info("peername"))
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                writer.write(self.answer(request))
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


Serve = Callable[..., Awaitable[Server]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[asyncio.Server] = []

    async def made(answer: Script, *, close_after: bool = False) -> Server:
        state = Server(answer, close_after=close_after)
        server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
        servers.append(server)
        state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook?x=1"
        return state

    yield made
    for server in servers:
        server.close()


def fixed(answer: bytes) -> Script:
    return lambda request: answer


async def post(url: str, pool: connections.Pool | None = None) -> connections.Response:
    where = connections.endpoint(url)
    assert where is not None
    own = pool or connections.Pool(limit_per_host=4, body_limit=16)
    try:
        return await own.send(where, {"ce-id": "1", "Prefer": "reply"}, b'{"a": 1}')
    finally:
        if pool is None:
            own.close()


@pytest.mark.parametrize(
    ("answer", "status", "body", "truncated"),
    [
        (b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", 202, b"", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nCe-Id: r\r\n\r\nhello", 200, b"hello", False),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n"
         b"0\r\nTrailer: t\r\n\r\n", 200, b"abcde", False),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", 204, b"", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n" + b"x" * 20, 200, b"x" * 16, True),
        (b"HTTP/1.0 500 Oops\r\n\r\nclose-delimited", 500, b"close-delimited", False),
    ],
    ids=["empty", "length", "chunked", "interim-1xx", "truncated", "until-close"],
)  # fmt: skip
async def test_answers_are_framed(
    serve: Serve,
    answer: bytes,
    status: int,
    body: bytes,
    truncated: bool,
) -> None:
    server = await serve(fixed(answer), close_after=answer.startswith(b"HTTP/1.0"))
    response = await post(server.url)
    assert (response.status, response.body, response.truncated) == (status, body, truncated)
    request = server.requests[0]
    assert request.startswith(b"POST /hook?x=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b'\r\nce-id: 1\r\nPrefer: reply\r\nContent-Length: 8\r\n\r\n{"a": 1}' in request


async def test_keep_alive_connections_are_reused_and_closed_ones_replaced(
    serve: Serve,
) -> None:
    ok = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
    server = await serve(fixed(ok))
    pool = connections.Pool(limit_per_host=2, body_limit=16)
    try:
        for _ in range(3):
            assert (await post(server.url, pool)).status == 202
        assert len(set(server.peers)) == 1
        closing = await serve(
            fixed(b"HTTP/1.1 202 Accepted\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        )
        for _ in range(2):
            assert (await post(closing.url, pool)).status == 202
        assert len(set(closing.peers)) == 2
        results = await asyncio.gather(*(post(server.url, pool) for _ in range(6)))
        assert {r.status for r in results} == {202}
        assert len(set(server.peers)) <= 2  # the per-host limit
    finally:
        pool.close()


async def test_errors_are_client_errors(serve: Serve) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(connections.ClientConnectorError, match="Cannot connect to host"):
        await post(f"http://127.0.0.1:{port}/")
    garbage = await serve(fixed(b"SMTP ready\r\n\r\n"))
    with pytest.raises(connections.ClientPayloadError):
        await post(garbage.url)
    hangup = await serve(
        fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), close_after=True
    )
    with pytest.raises(connections.ServerDisconnectedError):
        await post(hangup.url)
    where = connections.endpoint(garbage.url)
    assert where is not None
    with pytest.raises(connections.ClientError, match="line break"):
        await connections.Pool(limit_per_host=1, body_limit=1).send(where, {"a": "b\r\nc: d"}, b"")


@pytest.mark.parametrize(
    "url",
    ["https://example.com/", "http://user:pw@example.com/", "http://example.com/ü", "ftp://x/"],
)
def test_urls_left_to_aiohttp(url: str) -> None:
    assert connections.endpoint(url) is None
