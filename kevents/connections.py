"""Pooled keep-alive HTTP/1.1 connections to plain-http sinks: the sender's lean transport.

aiohttp's client costs ~90 µs of CPU per request here (URL objects, auto headers, cookie jar,
tracing hooks, payload objects, a response stream); `Pool.post()` writes the request in one
`transport.write` and parses the answer in `data_received` (status line, headers into a
`CIMultiDict`, body by Content-Length, chunked or connection close; 1xx skipped): ~20 µs.
At most `limit_per_host` connections per host; idle ones are reused last-in first-out and
dropped after `IDLE_SECONDS` or when the peer closes them. A body beyond `body_limit` is cut
there (`truncated`) and its connection closed. Errors are `ClientError`s named as aiohttp
names them (`ClientConnectorError`, `ServerDisconnectedError`, `ClientPayloadError`) so logs
read the same for every sink. Used for `http://` URLs without credentials (kevents.transport).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import time
from collections.abc import Mapping
from typing import cast
from urllib.parse import urlsplit

from multidict import CIMultiDict

IDLE_SECONDS = 15.0
"""An idle connection older than this is closed instead of reused (aiohttp's keep-alive
timeout): servers close idle connections too, and a request must not race their close."""


class ClientError(Exception):
    """The request got no complete HTTP answer."""


class ClientConnectorError(ClientError):
    """No connection could be opened."""


class ServerDisconnectedError(ClientError):
    """The connection closed before the answer was complete."""


class ClientPayloadError(ClientError):
    """The answer was not valid HTTP/1.x."""


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int
    head: bytes
    """`POST <path> HTTP/1.1` and `Host:` lines."""


@functools.lru_cache(maxsize=1024)
def endpoint(url: str) -> Endpoint | None:
    """Where and how to POST `url`, or None when this pool does not serve it (https,
    credentials, characters that need quoting)."""
    if not url.startswith("http://") or not url.isascii() or " " in url:
        return None
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None or not parts.hostname:
        return None
    try:
        port = parts.port or 80
    except ValueError:
        return None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    head = f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n".encode("ascii")
    return Endpoint(parts.hostname, port, head)


@dataclasses.dataclass(slots=True)
class Response:
    status: int
    headers: CIMultiDict[str]
    body: bytes
    truncated: bool


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection; answers are parsed as they arrive (one request at a time)."""

    def __init__(self, body_limit: int) -> None:
        self._limit = body_limit
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = False
        self.idle_since = 0.0
        self._buffer = b""
        self._answer: asyncio.Future[Response] | None = None
        self._response: Response | None = None
        self._remaining = -1  # body bytes still expected; -1 chunked, -2 until close
        self._chunks: list[bytes] = []
        self._size = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._response is not None and self._remaining == -2:
            self._finish(truncated=False)
        self._fail(ServerDisconnectedError("Server disconnected"))

    def request(self, data: bytes) -> asyncio.Future[Response]:
        assert self.transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self.reusable = False
        self.transport.write(data)
        return self._answer

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_exception(exc)

    def data_received(self, data: bytes) -> None:
        if self._answer is None:
            self.close()  # bytes nobody asked for: the connection cannot be trusted
            return
        self._buffer += data
        try:
            while self._answer is not None and self._buffer and self._step():
                pass
        except (ValueError, UnicodeDecodeError) as exc:
            self._fail(ClientPayloadError(f"invalid HTTP answer: {exc}"))
            self.close()

    def _step(self) -> bool:
        """Consume what the buffer allows; True when more may be consumed."""
        if self._response is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > 65536:
                    raise ValueError("header section too large")
                return False
            head, self._buffer = self._buffer[:end], self._buffer[end + 4 :]
            self._head(head)
            return True
        if self._remaining >= 0:
            take = self._buffer[: self._remaining]
            self._buffer = self._buffer[len(take) :]
            self._remaining -= len(take)
            self._keep(take)
            if self._remaining == 0:
                self._finish(truncated=False)
            return bool(self._buffer)
        if self._remaining == -2:
            self._keep(self._buffer)
            self._buffer = b""
            return False
        return self._chunk()

    def _head(self, head: bytes) -> None:
        lines = head.decode("utf-8", "surrogateescape").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        status = int(rest[:3])
        if not version.startswith("HTTP/1.") or not 100 <= status <= 599:
            raise ValueError(f"bad status line {lines[0]!r}")
        headers: CIMultiDict[str] = CIMultiDict()
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise ValueError(f"bad header line {line!r}")
            headers.add(name, value.strip())
        if status < 200:
            return  # interim answer (100 Continue...): the real one follows
        connection = headers.get("Connection", "").lower()
        self.reusable = connection != "close" and (
            version == "HTTP/1.1" or connection == "keep-alive"
        )
        self._response = Response(status, headers, b"", False)
        self._chunks = []
        self._size = 0
        if status in (204, 304):
            self._remaining = 0
        elif "chunked" in headers.get("Transfer-Encoding", "").lower():
            self._remaining = -1
        elif "Content-Length" in headers:
            self._remaining = int(headers["Content-Length"])
            if self._remaining < 0:
                raise ValueError("negative Content-Length")
        else:
            self._remaining = -2
            self.reusable = False
        if self._remaining == 0:
            self._finish(truncated=False)

    def _chunk(self) -> bool:
        line_end = self._buffer.find(b"\r\n")
        if line_end < 0:
            return False
        size = int(self._buffer[:line_end].split(b";", 1)[0].strip(), 16)
        if size == 0:  # last chunk, then trailers up to an empty line
            end = self._buffer.find(b"\r\n\r\n", line_end)
            if end < 0:
                return False
            self._buffer = self._buffer[end + 4 :]
            self._finish(truncated=False)
            return bool(self._buffer)
        if len(self._buffer) < line_end + 2 + size + 2:
            return False
        start = line_end + 2
        self._keep(self._buffer[start : start + size])
        self._buffer = self._buffer[start + size + 2 :]
        return True

    def _keep(self, data: bytes) -> None:
        if self._response is None or not data:
            return
        room = self._limit - self._size
        if len(data) > room:
            self._chunks.append(data[:room])
            self._size += room
            self._finish(truncated=True)
            return
        self._chunks.append(data)
        self._size += len(data)

    def _finish(self, *, truncated: bool) -> None:
        response, self._response = self._response, None
        answer, self._answer = self._answer, None
        if truncated or self._buffer:
            self.reusable = False
        if response is None or answer is None or answer.done():
            return
        response.body = b"".join(self._chunks)
        response.truncated = truncated
        self._chunks = []
        answer.set_result(response)


class Pool:
    def __init__(self, *, limit_per_host: int, body_limit: int) -> None:
        self._limit = limit_per_host
        self._body_limit = body_limit
        self._idle: dict[tuple[str, int], collections.deque[_Connection]] = {}
        self._slots: dict[tuple[str, int], asyncio.Semaphore] = {}
        self._open: set[_Connection] = set()

    async def post(self, where: Endpoint, headers: Mapping[str, str], body: bytes) -> Response:
        """POST `body`; raises `ClientError` (and `TimeoutError` from a caller's timeout)."""
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        if lines.count("\n") != len(headers) or lines.count("\r") != len(headers):
            raise ClientError("a header name or value contains a line break")
        head = lines.encode("utf-8", "surrogateescape") + b"Content-Length: %d\r\n\r\n" % len(body)
        data = where.head + head + body
        key = (where.host, where.port)
        slots = self._slots.get(key)
        if slots is None:
            slots = self._slots[key] = asyncio.Semaphore(self._limit)
        async with slots:
            connection = await self._connection(key)
            try:
                response = await connection.request(data)
            except BaseException:
                connection.close()
                self._open.discard(connection)
                raise
            if connection.reusable and not connection.closed:
                connection.idle_since = time.monotonic()
                self._idle.setdefault(key, collections.deque()).append(connection)
            else:
                connection.close()
                self._open.discard(connection)
            return response

    async def _connection(self, key: tuple[str, int]) -> _Connection:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if not connection.closed and time.monotonic() - connection.idle_since < IDLE_SECONDS:
                return connection
            connection.close()
            self._open.discard(connection)
        loop = asyncio.get_running_loop()
        limit = self._body_limit
        try:
            _, connection = await loop.create_connection(lambda: _Connection(limit), *key)
        except OSError as exc:
            raise ClientConnectorError(
                f"Cannot connect to host {key[0]}:{key[1]} ssl:default [{exc.strerror or exc}]"
            ) from exc
        self._open.add(connection)
        return connection

    def close(self) -> None:
        for connection in self._open:
            connection.close()
        self._open.clear()
        self._idle.clear()
