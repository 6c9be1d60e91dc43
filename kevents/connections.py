"""Pooled keep-alive HTTP/1.1 connections to plain-http sinks: the sender's lean transport.

aiohttp's client costs ~90 µs of CPU per request here (URL objects, auto headers, cookie jar,
tracing hooks, payload objects, a response stream); `Pool.post()` writes the request in one
`transport.write` and feeds the answer to llhttp (`httptools`) in `data_received`: status and
headers into a `CIMultiDict`, body by Content-Length, chunked (extensions and trailers
dropped) or until close, 1xx interim answers skipped. llhttp is strict: a bare LF, obsolete
line folding, a Content-Length that is repeated, signed or not all digits, or one beside
Transfer-Encoding is a `ClientPayloadError`.

Bounds, so that no sink can make the shared process buffer or spin:
- the body is kept up to `body_limit` as it streams in (chunked too); beyond it the answer is
  `truncated` and the connection closed;
- header lines up to `HEAD_LIMIT` bytes in all and `MAX_HEADERS` of them (interim answers
  and trailers included), each up to `LINE_LIMIT` bytes; bytes that complete nothing (a
  status, header or chunk-size line that never ends) fail after `LINE_LIMIT`, counted in
  reads of at most `LINE_LIMIT` bytes until the body;
- connect: `CONNECT_TIMEOUT` (10 s) per connection. Knative's sender (Go's default
  transport) allows 30 s; between pods a connect takes under a millisecond, and 10 s still
  covers three SYN retransmissions (1, 3 and 7 s);
- the whole request (waiting for a slot, connecting, the answer) by `post()`'s
  `attempt_timeout`: `kevents.transport` passes the delivery's timeout, or its 60 s default.
  The pool enforces it with one loop timer set for the nearest deadline of the requests in
  flight, not with a timer per request (`asyncio.timeout` costs ~5 µs per delivery).

At most `limit_per_host` connections per host. Idle ones are reused last-in first-out and
closed by a timer `idle_seconds` (3 s) after their last answer, below the 5 s idle timeout of
common servers (Node, uvicorn; gunicorn's is 2 s); the same timer forgets hosts that have
neither idle connections nor requests in flight. A connection is reused only when the answer
allows keep-alive and nothing followed it, and only until it is `max_age` (5 s) old, so that
traffic to a Service follows its rollouts instead of staying on the first pod; bytes nobody
asked for close it.

A request that fails on a *reused* connection before any byte of its answer arrived (the
server closed the idle connection as the request went out) is sent once more, at once, on a
new connection; this is not a delivery attempt of the retry policy. Never after a byte of
the answer, never when the first connection was new. The server may, rarely, have processed
the first copy before closing: delivery is at-least-once, and the event keeps its id.

Errors are `ClientError`s named as aiohttp names them (`ClientConnectorError`,
`ConnectionTimeoutError`, `ServerDisconnectedError`, `ClientPayloadError`) so logs read the
same for every sink. Used for `http://` URLs without credentials (kevents.transport).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import logging
import math
import ssl
import time
from collections.abc import Callable, Mapping
from typing import cast
from urllib.parse import urlsplit

import httptools
from multidict import CIMultiDict

logger = logging.getLogger(__name__)

IDLE_SECONDS = 3.0
"""An idle connection is closed this long after its last answer (by the pool's timer, and
never reused beyond it): servers close idle connections too, and a request must not race
their close. With the timer's slack it is gone within 4 s."""
MAX_AGE_SECONDS = 5.0
"""A connection is not reused once this old: it is closed after the answer in flight. A
kept-alive connection to a Service's ClusterIP stays on the pod it was first routed to, so
under steady load it would never move: after a rollout (a new Revision, a rescaled
Deployment) traffic must reach the new pods while the old ones still answer, and
connections must spread over replicas as they come and go. One new connection per slot
every 5 s costs nothing measurable."""
CONNECT_TIMEOUT = 10.0
"""Seconds to open a connection (see the module docstring for why 10 s)."""
HEAD_LIMIT = 64 * 1024
"""Bytes of an answer's header lines, those of interim 1xx answers and trailers included."""
LINE_LIMIT = 8 * 1024
"""Bytes of one header line; also how many bytes may arrive without completing anything."""
MAX_HEADERS = 100
"""Header lines of one answer, interim answers and trailers included."""
TIMER_SLACK = 0.001
"""Seconds: a deadline this close counts as reached when the pool's timer fires (the loop's
timers have millisecond resolution and may fire that much early)."""
STREAM_BUFFER = 1024 * 1024
"""Bytes a streamed answer buffers before reading pauses until the reader catches up."""
JOIN_LIMIT = 64 * 1024
"""Bodies up to this many bytes are joined to the request head and written at once; larger
ones are written as they are (uvloop keeps a reference, no copy per attempt)."""


class ClientError(Exception):
    """The request got no complete HTTP answer."""


class ClientConnectorError(ClientError):
    """No connection could be opened."""


class ConnectionTimeoutError(ClientConnectorError):
    """No connection could be opened within the connect timeout."""


class ServerDisconnectedError(ClientError):
    """The connection closed before the answer was complete."""


class ClientPayloadError(ClientError):
    """The answer was not valid HTTP/1.x, or broke one of the limits."""


class _Stop(Exception):
    """Raised in a parser callback to stop parsing the rest of what arrived."""


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int
    head: bytes
    """`POST <path> HTTP/1.1` and `Host:` lines."""


@functools.lru_cache(maxsize=1024)
def endpoint(url: str, method: str = "POST", *, tls: bool = False) -> Endpoint | None:
    """Where and how to send `method` to `url`, or None when a pool does not serve it:
    credentials, characters that need quoting, or a scheme other than the pool's (`http://`,
    or `https://` for a pool with `tls`)."""
    scheme = "https://" if tls else "http://"
    if not url.startswith(scheme) or not url.isascii() or " " in url:
        return None
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None or not parts.hostname:
        return None
    try:
        port = parts.port or (443 if tls else 80)
    except ValueError:
        return None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    head = f"{method} {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n".encode("ascii")
    return Endpoint(parts.hostname, port, head)


@dataclasses.dataclass(slots=True)
class Response:
    status: int
    headers: CIMultiDict[str]
    body: bytes
    truncated: bool


class Stream:
    """The body of a streamed answer (a Kubernetes watch), read line by line as it arrives.

    Reading is paused while more than `STREAM_BUFFER` bytes wait, so a slow reader holds
    the peer back instead of growing the buffer; a line longer than `max_line` fails.
    """

    def __init__(
        self,
        connection: _Connection,
        max_line: int,
        discard: Callable[[_Connection], None],
    ) -> None:
        self._connection = connection
        self._discard = discard
        self._max_line = max_line
        self._buffer = bytearray()
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False
        self._error: Exception | None = None
        self._paused = False

    def feed(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > STREAM_BUFFER and not self._paused:
            transport = self._connection.transport
            if transport is not None:
                transport.pause_reading()
                self._paused = True
        self._wake()

    def end(self, error: Exception | None = None) -> None:
        if not self._ended:
            self._ended, self._error = True, error
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _resume(self) -> None:
        transport = self._connection.transport
        if self._paused and transport is not None and not self._connection.closed:
            transport.resume_reading()
        self._paused = False

    async def readline(self, silence: float | None = None) -> bytes:
        """The next line with its newline (the last one may lack it); b"" at the end.

        `TimeoutError` when nothing completes a line for `silence` seconds; the connection
        lost before the end is `ServerDisconnectedError`.
        """
        loop = asyncio.get_running_loop()
        deadline = None if silence is None else loop.time() + silence
        start = 0
        while True:
            at = self._buffer.find(b"\n", start)
            if at >= 0:
                line = bytes(self._buffer[: at + 1])
                del self._buffer[: at + 1]
                if len(self._buffer) <= STREAM_BUFFER:
                    self._resume()
                return line
            start = len(self._buffer)
            if start > self._max_line:
                self.close()
                raise ClientPayloadError(f"a streamed line is longer than {self._max_line} bytes")
            if self._ended:
                if self._error is not None:
                    raise self._error
                rest = bytes(self._buffer)
                self._buffer.clear()
                return rest
            self._resume()  # no whole line yet: more must come in whatever the buffer holds
            self._waiter = loop.create_future()
            async with asyncio.timeout_at(deadline):
                await self._waiter

    async def read(self, limit: int) -> bytes:
        """The rest of the body, up to `limit` bytes (an error answer's Status)."""
        parts: list[bytes] = []
        size = 0
        while size < limit:
            line = await self.readline()
            if not line:
                break
            parts.append(line)
            size += len(line)
        return b"".join(parts)[:limit]

    def close(self) -> None:
        """Drop the connection at once (a TLS close would wait for the peer's close_notify,
        from a peer that may be why the reader gave up)."""
        self._connection.abort()
        self._discard(self._connection)  # the pool forgets it


def _head(where: Endpoint, headers: Mapping[str, str], body: bytes) -> bytes:
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    if lines.count("\n") != len(headers) or lines.count("\r") != len(headers):
        raise ClientError("a header name or value contains a line break")
    encoded = lines.encode("utf-8", "surrogateescape")
    return where.head + encoded + b"Content-Length: %d\r\n\r\n" % len(body)


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection; answers are parsed as they arrive (one request at a time).

    Parser callbacks (`on_*`) are called by llhttp from inside `data_received`.
    """

    def __init__(self, body_limit: int) -> None:
        self._limit = body_limit
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = False
        self.received = False
        """A byte of the current request's answer arrived."""
        self.idle_since = 0.0
        self.opened_at = time.monotonic()
        self.deadline = math.inf
        """Loop time by which the answer in flight must be complete (the pool's timer)."""
        self._answer: asyncio.Future[Response] | None = None
        self._lines: list[tuple[bytes, bytes]] = []
        self._headers: CIMultiDict[str] = CIMultiDict()
        self._status = 0
        self._final = False  # the final (non-1xx) head is complete
        self._complete = False  # the final answer is complete
        self._identity = False  # in a Content-Length or until-close body
        self._until_close = False
        self._progress = False
        self._stalled = 0
        self._head_bytes = 0
        self._count = 0
        self._chunks: list[bytes] = []
        self._size = 0
        self.stream: Stream | None = None
        """Set for a streamed answer: its body goes there, the answer resolves at its head."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._final and self._until_close and not self._complete:
            self._finish(truncated=False)  # the close is the end of this body
        self._fail(ServerDisconnectedError("Server disconnected"))

    def request(self, head: bytes, body: bytes = b"") -> asyncio.Future[Response]:
        """Send a request; a large `body` is handed to the transport as it is, never copied
        (the same bytes may be in flight to many subscribers: memory is the caller's bound)."""
        assert self.transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self.reusable = self.received = False
        self._lines = []
        self._status = self._stalled = self._head_bytes = self._count = self._size = 0
        self._final = self._complete = self._identity = self._until_close = False
        self._chunks = []
        if len(body) <= JOIN_LIMIT:
            self.transport.write(head + body)  # one write, one segment for small requests
        else:
            self.transport.writelines((head, body))
        return self._answer

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def expire(self, seconds: float) -> None:
        """The answer did not arrive in time: fail the request and close the connection."""
        self._fail(TimeoutError(f"no complete answer within {seconds} s"))
        self.close()

    def _fail(self, exc: Exception) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_exception(exc)
        if self.stream is not None:
            self.stream.end(exc)

    def data_received(self, data: bytes) -> None:
        if self._answer is None and (self.stream is None or self._complete):
            self.close()  # bytes nobody asked for: the connection cannot be trusted
            return
        self.received = True
        try:
            if self._identity or len(data) <= LINE_LIMIT:
                self._feed(data)
                return
            # Pieces of at most LINE_LIMIT, so that the limits are checked before llhttp
            # (which accumulates a header line across calls) holds much more than they allow.
            view = memoryview(data)
            offset = 0
            while offset < len(data) and (self._answer is not None or self._streaming):
                end = len(data) if self._identity else offset + LINE_LIMIT
                self._feed(view[offset:end])
                offset = end
        except httptools.HttpParserUpgrade:
            self._fail(ClientPayloadError("the server switched protocols"))
            self.close()
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            if isinstance(cause, ClientPayloadError):
                self._fail(cause)
            elif not isinstance(cause, _Stop):
                self._fail(ClientPayloadError(f"invalid HTTP answer: {exc}"))
            self.close()
        except ClientPayloadError as exc:
            self._fail(exc)
            self.close()

    @property
    def _streaming(self) -> bool:
        return self.stream is not None and not self._complete

    def _feed(self, data: bytes | memoryview) -> None:
        self._progress = False
        self._parser.feed_data(data)
        if self._answer is None and not self._streaming:
            return
        if self._progress:
            self._stalled = 0
            return
        self._stalled += len(data)
        if self._stalled > LINE_LIMIT:
            raise ClientPayloadError(f"an answer line is longer than {LINE_LIMIT} bytes")

    # -- llhttp callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._complete:
            self.reusable = False  # bytes after a complete answer
            raise _Stop
        self._lines = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._progress = True
        self._count += 1
        if self._count > MAX_HEADERS:
            raise ClientPayloadError(f"more than {MAX_HEADERS} header lines")
        if len(name) + len(value) > LINE_LIMIT:
            raise ClientPayloadError(f"a header line is longer than {LINE_LIMIT} bytes")
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > HEAD_LIMIT:
            raise ClientPayloadError(f"answer head larger than {HEAD_LIMIT} bytes")
        if not self._final:  # trailers are not kept
            self._lines.append((name, value))

    def on_headers_complete(self) -> None:
        self._progress = True
        status = self._parser.get_status_code()
        if status < 200:
            return  # an interim answer (100 Continue...): the final one follows
        headers: CIMultiDict[str] = CIMultiDict()
        for name, value in self._lines:
            headers.add(
                name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape")
            )
        self._status, self._headers, self._final = status, headers, True
        encoding = headers.get("Transfer-Encoding")
        chunked = encoding is not None and encoding.lower().rstrip().endswith("chunked")
        self._identity = not chunked
        self._until_close = not chunked and "Content-Length" not in headers
        if self.stream is not None:
            answer, self._answer = self._answer, None
            if answer is not None and not answer.done():
                answer.set_result(Response(status, headers, b"", False))

    def on_body(self, body: bytes) -> None:
        self._progress = True
        if self.stream is not None:
            self.stream.feed(body)
            return
        room = self._limit - self._size
        if len(body) > room:
            if room > 0:
                self._chunks.append(body[:room])
                self._size += room
            self._finish(truncated=True)
            raise _Stop
        self._chunks.append(body)
        self._size += len(body)

    def on_chunk_header(self) -> None:
        self._progress = True

    def on_chunk_complete(self) -> None:
        self._progress = True

    def on_message_complete(self) -> None:
        self._progress = True
        if not self._final:
            return
        self._complete = True
        self._identity = False
        self.reusable = self._parser.should_keep_alive()
        self._finish(truncated=False)

    def _finish(self, *, truncated: bool) -> None:
        self._complete = True
        if self.stream is not None:
            self.stream.end()
        if truncated:
            self.reusable = False
        answer, self._answer = self._answer, None
        chunks, self._chunks = self._chunks, []
        if answer is not None and not answer.done():
            answer.set_result(Response(self._status, self._headers, b"".join(chunks), truncated))


@dataclasses.dataclass(slots=True)
class _Host:
    idle: collections.deque[_Connection] = dataclasses.field(default_factory=collections.deque)
    users: int = 0
    """Requests in `post()` for this host, waiting for a slot or holding one."""
    busy: int = 0
    """Slots taken (at most `limit_per_host`): a counting semaphore without `asyncio.Semaphore`'s
    per-call scan of its waiters."""
    waiters: collections.deque[asyncio.Future[None]] = dataclasses.field(
        default_factory=collections.deque
    )
    """Requests waiting for a slot, first come first served; a freed slot passes to the first."""


class Pool:
    def __init__(
        self,
        *,
        limit_per_host: int,
        body_limit: int,
        connect_timeout: float = CONNECT_TIMEOUT,
        idle_seconds: float = IDLE_SECONDS,
        max_age: float = MAX_AGE_SECONDS,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """`tls`: connections are TLS with this context (the server's name checked against
        its certificate, IP addresses included): the pool then serves `https://` endpoints."""
        self._tls = tls
        self._limit = limit_per_host
        self._max_age = max_age
        self._body_limit = body_limit
        self._connect_timeout = connect_timeout
        self._idle_seconds = idle_seconds
        self._hosts: dict[tuple[str, int], _Host] = {}
        self._open: set[_Connection] = set()
        self._reaper: asyncio.TimerHandle | None = None
        self._busy: dict[_Connection, float] = {}
        """Connections waiting for an answer with a deadline -> the request's timeout."""
        self._watch: asyncio.TimerHandle | None = None
        self._watch_at = math.inf

    @property
    def hosts(self) -> int:
        """Hosts the pool keeps state for (idle connections or requests in flight)."""
        return len(self._hosts)

    @property
    def idle(self) -> int:
        """Idle connections kept for reuse."""
        return sum(len(host.idle) for host in self._hosts.values())

    async def send(
        self,
        where: Endpoint,
        headers: Mapping[str, str],
        body: bytes,
        attempt_timeout: float | None = None,
    ) -> Response:
        """Send `body` as `where` says (method, target, host); raises `ClientError`, or
        `TimeoutError` when the answer is not complete `attempt_timeout` seconds after the
        call (waiting for a slot and connecting included)."""
        head = _head(where, headers, body)
        deadline = math.inf
        if attempt_timeout is not None:
            deadline = asyncio.get_running_loop().time() + attempt_timeout
        key = (where.host, where.port)
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = _Host()
        host.users += 1
        try:
            if host.busy < self._limit and not host.waiters:
                host.busy += 1
            else:
                await self._wait_for_slot(host, deadline)
            try:
                connection = self._reuse(host)
                fresh = connection is None
                if connection is None:
                    connection = await self._connect(key, deadline)
                try:
                    response = await self._request(
                        connection, head, body, deadline, attempt_timeout
                    )
                except ServerDisconnectedError:
                    self._discard(connection)
                    if fresh or connection.received:
                        raise
                    logger.debug(
                        "%s:%d closed a kept-alive connection before answering; "
                        "sending the request again on a new connection.", *key
                    )  # fmt: skip
                    connection = await self._connect(key, deadline)
                    try:
                        response = await self._request(
                            connection, head, body, deadline, attempt_timeout
                        )
                    except BaseException:
                        self._discard(connection)
                        raise
                except BaseException:
                    self._discard(connection)
                    raise
                if deadline < math.inf:
                    self._busy.pop(connection, None)
                now = time.monotonic()
                if (
                    connection.reusable
                    and not connection.closed
                    and now - connection.opened_at < self._max_age
                ):
                    connection.idle_since = now
                    host.idle.append(connection)
                    if self._reaper is None:
                        self._reaper = asyncio.get_running_loop().call_later(
                            self._idle_seconds, self._reap
                        )
                else:
                    self._discard(connection)
                return response
            finally:
                self._release(host)
        finally:
            host.users -= 1
            if not host.users and not host.idle and self._hosts.get(key) is host:
                del self._hosts[key]

    async def stream(
        self,
        where: Endpoint,
        headers: Mapping[str, str],
        body: bytes = b"",
        *,
        head_timeout: float | None = None,
        max_line: int = 64 * 1024 * 1024,
    ) -> tuple[Response, Stream]:
        """Send on a connection of its own; return the answer's head as soon as it arrives
        (within `head_timeout`, connecting included) and its body as a `Stream`, which the
        caller must close. Not counted in `limit_per_host`: a stream may last for hours."""
        head = _head(where, headers, body)
        deadline = math.inf
        if head_timeout is not None:
            deadline = asyncio.get_running_loop().time() + head_timeout
        connection = await self._connect((where.host, where.port), deadline)
        stream = connection.stream = Stream(connection, max_line, self._discard)
        try:
            response = await self._request(connection, head, body, deadline, head_timeout)
        except BaseException:
            self._discard(connection)
            raise
        self._busy.pop(connection, None)
        return response, stream

    async def _wait_for_slot(self, host: _Host, deadline: float) -> None:
        waiter = asyncio.get_running_loop().create_future()
        host.waiters.append(waiter)
        try:
            async with asyncio.timeout_at(deadline if deadline < math.inf else None):
                await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._release(host)  # the slot was passed to us as we gave up: pass it on
            else:
                with contextlib.suppress(ValueError):
                    host.waiters.remove(waiter)
            raise

    def _release(self, host: _Host) -> None:
        """Free a slot: it passes to the first request still waiting, if any."""
        while host.waiters:
            waiter = host.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        host.busy -= 1

    def _reuse(self, host: _Host) -> _Connection | None:
        """The most recently used idle connection still fit for a request, if any."""
        now = time.monotonic()
        while host.idle:
            connection = host.idle.pop()
            if not connection.closed and now - connection.idle_since < self._idle_seconds:
                return connection
            self._discard(connection)
        return None

    def _request(
        self,
        connection: _Connection,
        head: bytes,
        body: bytes,
        deadline: float,
        seconds: float | None,
    ) -> asyncio.Future[Response]:
        """Send on `connection`; the pool's timer fails the answer at `deadline`."""
        answer = connection.request(head, body)
        if deadline < math.inf:
            connection.deadline = deadline
            self._busy[connection] = seconds or 0.0
            if deadline < self._watch_at:
                self._rewatch(deadline)
        return answer

    def _rewatch(self, when: float) -> None:
        if self._watch is not None:
            self._watch.cancel()
        self._watch_at = when
        self._watch = asyncio.get_running_loop().call_at(when, self._expire)

    def _expire(self) -> None:
        """Fail the requests whose deadline passed; come back at the nearest other one."""
        self._watch, self._watch_at = None, math.inf
        now = asyncio.get_running_loop().time() + TIMER_SLACK
        nearest = math.inf
        for connection, seconds in list(self._busy.items()):
            if connection.deadline <= now:
                del self._busy[connection]
                connection.expire(seconds)
            else:
                nearest = min(nearest, connection.deadline)
        if nearest < math.inf:
            self._rewatch(nearest)

    async def _connect(self, key: tuple[str, int], deadline: float = math.inf) -> _Connection:
        loop = asyncio.get_running_loop()
        limit = self._body_limit
        seconds = self._connect_timeout
        left = deadline - loop.time()
        try:
            async with asyncio.timeout(min(seconds, left)):
                _, connection = await loop.create_connection(
                    lambda: _Connection(limit),
                    *key,
                    ssl=self._tls,
                    server_hostname=key[0] if self._tls is not None else None,
                )
        except TimeoutError as exc:
            if left <= seconds:
                raise  # the request's own timeout, not the connect timeout
            raise ConnectionTimeoutError(
                f"Connection timeout to host {key[0]}:{key[1]} after {self._connect_timeout} s"
            ) from exc
        except OSError as exc:
            tls = "ssl:default" if self._tls is None else "ssl:tls"
            raise ClientConnectorError(
                f"Cannot connect to host {key[0]}:{key[1]} {tls} [{exc.strerror or exc}]"
            ) from exc
        self._open.add(connection)
        return connection

    def _discard(self, connection: _Connection) -> None:
        if self._tls is not None:
            connection.abort()  # no wait for the peer's close_notify (see Stream.close)
        else:
            connection.close()
        self._open.discard(connection)
        self._busy.pop(connection, None)

    def _reap(self) -> None:
        """Close connections idle for `idle_seconds` or closed by their server, forget hosts
        with nothing left, and come back when the next idle connection expires."""
        self._reaper = None
        now = time.monotonic()
        expiry = now + 0.01 - self._idle_seconds  # idle since then: expired (timer slack)
        oldest: float | None = None
        for key, host in list(self._hosts.items()):
            kept: collections.deque[_Connection] = collections.deque()
            for connection in host.idle:
                if connection.closed or connection.idle_since <= expiry:
                    self._discard(connection)
                else:
                    kept.append(connection)
            host.idle = kept
            if kept:
                first = kept[0].idle_since  # oldest: connections are appended when idle
                oldest = first if oldest is None else min(oldest, first)
            elif not host.users:
                del self._hosts[key]
        if oldest is not None:
            delay = oldest + self._idle_seconds - now
            self._reaper = asyncio.get_running_loop().call_later(delay, self._reap)

    def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        if self._watch is not None:
            self._watch.cancel()
            self._watch, self._watch_at = None, math.inf
        self._busy.clear()
        for connection in self._open:
            if self._tls is not None:
                connection.abort()  # see _discard
            else:
                connection.close()
        self._open.clear()
        self._hosts.clear()
