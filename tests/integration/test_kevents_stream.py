"""`connections.Pool.stream()`, the transport of Kubernetes watches, against loopback servers
that stream as they like: lines as they come, silence, a cut, an endless line, a reader that
falls behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from kevents import connections

Talk = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]
CHUNKED_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@pytest.fixture
async def streaming() -> AsyncIterator[Callable[[Talk], Coroutine[Any, Any, str]]]:
    servers: list[asyncio.Server] = []
    talks: list[asyncio.Task[None]] = []

    async def made(talk: Talk) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            talks.append(asyncio.current_task())  # type: ignore[arg-type]
            try:
                await reader.readuntil(b"\r\n\r\n")
                await talk(reader, writer)
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/api/v1/configmaps"

    yield made
    for task in talks:
        task.cancel()
    await asyncio.gather(*talks, return_exceptions=True)
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def pool() -> AsyncIterator[connections.Pool]:
    made = connections.Pool(limit_per_host=1, body_limit=16)
    yield made
    made.close()


async def opened(
    url: str, pool: connections.Pool, **kwargs: Any
) -> tuple[connections.Response, connections.Stream]:
    where = connections.endpoint(url, "GET")
    assert where is not None
    return await pool.stream(where, {"Accept": "application/json"}, head_timeout=5, **kwargs)


async def test_lines_arrive_as_they_are_sent_and_the_end_is_an_empty_read(
    streaming: Any, pool: connections.Pool
) -> None:
    sent = asyncio.Event()

    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(CHUNKED_HEAD + chunk(b'{"type":"ADDED"}\n{"type":'))
        await writer.drain()
        await sent.wait()
        writer.write(chunk(b'"MODIFIED"}\n') + chunk(b'{"type":"DELETED"}\n') + b"0\r\n\r\n")
        await writer.drain()

    response, body = await opened(await streaming(talk), pool)
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    # the first line is read before the server sends the rest (a watch is not buffered)
    assert await body.readline(5) == b'{"type":"ADDED"}\n'
    sent.set()
    assert await body.readline(5) == b'{"type":"MODIFIED"}\n'
    assert await body.readline(5) == b'{"type":"DELETED"}\n'
    assert await body.readline(5) == b""
    body.close()


async def test_silence_longer_than_the_bound_is_a_timeout(
    streaming: Any, pool: connections.Pool
) -> None:
    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(CHUNKED_HEAD + chunk(b'{"half":'))
        await writer.drain()
        await asyncio.Event().wait()  # silent from here on

    _, body = await opened(await streaming(talk), pool)
    with pytest.raises(TimeoutError):
        await body.readline(0.2)
    body.close()


async def test_a_connection_cut_mid_stream_is_a_disconnect_not_an_end(
    streaming: Any, pool: connections.Pool
) -> None:
    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(CHUNKED_HEAD + chunk(b'{"type":"ADDED"}\n{"cut'))
        await writer.drain()
        writer.transport.abort()

    _, body = await opened(await streaming(talk), pool)
    assert await body.readline(5) == b'{"type":"ADDED"}\n'
    with pytest.raises(connections.ServerDisconnectedError):
        await body.readline(5)
    body.close()


async def test_a_line_that_never_ends_fails_at_its_bound(
    streaming: Any, pool: connections.Pool
) -> None:
    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(CHUNKED_HEAD)
        while True:  # an endless line, as fast as the reader takes it
            writer.write(chunk(b"x" * 4096))
            await writer.drain()

    _, body = await opened(await streaming(talk), pool, max_line=64 * 1024)
    with pytest.raises(connections.ClientPayloadError, match="longer than 65536"):
        await body.readline(5)
    body.close()


async def test_a_reader_that_falls_behind_pauses_the_peer_and_loses_nothing(
    streaming: Any, pool: connections.Pool
) -> None:
    lines = [b'{"n":%d,"pad":"%s"}\n' % (n, b"p" * 1000) for n in range(20000)]  # ~20 MB
    finished = asyncio.Event()

    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(CHUNKED_HEAD)
        for line in lines:
            writer.write(chunk(line))
            await writer.drain()  # blocks while the client does not read
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        finished.set()

    _, body = await opened(await streaming(talk), pool)
    first = await body.readline(5)
    # the reader waits: the server gets far less than the whole body out
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(finished.wait(), 0.5)
    received = [first]
    while line := await body.readline(5):
        received.append(line)
    assert received == lines
    assert finished.is_set()
    body.close()


async def test_an_error_answer_is_read_whole_and_a_head_that_never_comes_times_out(
    streaming: Any, pool: connections.Pool
) -> None:
    status = b'{"kind":"Status","code":403,"reason":"Forbidden"}'

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: %d\r\n\r\n%s" % (len(status), status)
        )
        await writer.drain()

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()

    response, body = await opened(await streaming(refuse), pool)
    assert response.status == 403
    assert await body.read(64 * 1024) == status
    body.close()
    where = connections.endpoint(await streaming(mute), "GET")
    assert where is not None
    with pytest.raises(TimeoutError):
        await pool.stream(where, {}, head_timeout=0.3)
