"""The operational ports (`/metrics`, `/health`, `/readiness`) without aiohttp.

Why it exists: these two ports were aiohttp apps, so every deployable imported aiohttp's
server even when nothing else in it needs aiohttp. Measured (VmRSS of a fresh interpreter,
before and after `import kevents.endpoints`): 27.0 MiB with the aiohttp apps, 15.3 MiB with
this module; aiohttp's web server alone is 11.9 MiB on top of what the endpoints need anyway
(prometheus_client, httptools): a quarter of the 46 MiB Knative allows the ApiServerSource
adapter. The answers are tiny and synchronous (a Prometheus exposition, a readiness flag),
so a small `asyncio.Protocol` serves them: llhttp (`httptools`, already the sender's parser)
frames the requests; only the connection management is ours.

The ports face the cluster (Prometheus, the kubelet, and any pod that connects), so a client
cannot cost more than a bounded amount:
- only GET and HEAD (405 otherwise, closed at once, the body never read);
- the request target up to `LINE_LIMIT` bytes (414), each header line up to `LINE_LIMIT`,
  `HEAD_LIMIT` bytes of header lines in all, `MAX_HEADERS` of them (431); bytes are fed to
  the parser in slices of `FEED_SLICE`, and slices that complete nothing are counted against
  the line limit, so the parser never buffers more than `LINE_LIMIT + FEED_SLICE` bytes;
- a body up to `BODY_LIMIT` bytes (413); malformed HTTP is 400; each refusal closes the
  connection and is logged at debug level in one line (never a traceback: bad input is not
  our bug);
- a request must be complete `header_timeout` seconds after its first byte, or after the
  connection opened; a kept-alive connection is closed `idle_timeout` seconds after its
  last answer (5 s, the idle timeout of common servers; Prometheus, scraping every 15-60 s,
  reconnects, and a request racing our close is answered on a new connection);
- answers are written in request order (pipelining); while the client does not read them
  (the transport's write buffer is above its high-water mark) no further slice is parsed,
  and the idle timeout closes a connection whose client never reads.

Answers are those of the aiohttp apps before: the same paths (percent-decoded, query
ignored), status codes, bodies ("404: Not Found"), content types, HTTP/1.0 answered in
HTTP/1.0. Differences: any method but GET/HEAD is 405 on any path (aiohttp: 404 off its
routes), a refusal closes the connection, and no `Date`/`Server` headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http
import logging
import urllib.parse
from collections.abc import Callable, Mapping
from typing import cast

import httptools

logger = logging.getLogger(__name__)

TEXT = "text/plain; charset=utf-8"
LINE_LIMIT = 8 * 1024
"""Bytes of the request target, and of one header line."""
HEAD_LIMIT = 64 * 1024
"""Bytes of all header lines of one request."""
MAX_HEADERS = 100
"""Header lines of one request."""
FEED_SLICE = 256
"""Bytes fed to the parser at once. Parsing stops between slices while answers wait unread,
so a client pipelining requests without reading gets at most 14 answers (the shortest
request is 18 bytes) beyond the transport's high-water mark; a scrape's request is ~300
bytes: two slices."""
BODY_LIMIT = 1024
"""Bytes of a request body: these GETs have none; a small one is read and ignored."""
HEADER_TIMEOUT = 10.0
"""Seconds from a connection's opening, or a request's first byte, to the end of the request:
hundreds of round trips in a cluster, and a slow client costs one fd for that long only."""
IDLE_TIMEOUT = 5.0
"""Seconds a kept-alive connection may wait for its next request (see the docstring)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    content_type: str = TEXT


Route = Callable[[], Answer]
"""The answer to a GET (or HEAD) of one path; synchronous: answered in request order."""


class _Refused(Exception):
    """Raised in a parser callback after a refusal was written: stops parsing."""


def _error(status: int) -> Answer:
    return Answer(status, f"{status}: {http.HTTPStatus(status).phrase}".encode())


class _Connection(asyncio.Protocol):
    """One client connection; the parser calls `on_*` from inside `data_received`."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._parser = httptools.HttpRequestParser(self)
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closing = False
        self._pending = b""
        """Bytes received but not parsed while the client does not read its answers."""
        self._writing_paused = False
        self._progress = False
        self._stalled = 0
        self._url = bytearray()
        self._head_bytes = 0
        self._headers = 0
        self._body = 0
        self._method = b""

    # -- connection ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._server.connections.add(self)
        self._arm(self._server.header_timeout, "sent no complete request")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.transport = None
        self._server.forget(self)

    def eof_received(self) -> bool | None:
        return None  # the answers written are flushed, then the transport closes

    def pause_writing(self) -> None:
        self._writing_paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self.transport is not None and not self._closing:
            self.transport.resume_reading()
            pending, self._pending = self._pending, b""
            if pending:
                self.data_received(pending)

    def close(self) -> None:
        """Close once the answers written are sent (the server stops)."""
        self._closing = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- timers ---------------------------------------------------------------------------
    def _arm(self, seconds: float, why: str) -> None:
        self._disarm()
        self._timer = self._loop.call_later(seconds, self._expired, why)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self, why: str) -> None:
        self._timer = None
        transport = self.transport
        if transport is None:
            return
        if self._closing:
            transport.abort()  # its client does not read our last answer
            return
        logger.debug("Closing a connection to %s: it %s.", self._server.name, why)
        self._close_after_answer()

    # -- input ----------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        view = memoryview(data)
        for start in range(0, len(view), FEED_SLICE):
            if self._closing:
                return
            if self._writing_paused:
                self._pending += bytes(view[start:])  # at most one read: reading is paused
                return
            piece = view[start : start + FEED_SLICE]
            self._progress = False
            try:
                self._parser.feed_data(piece)
            except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
                # A callback's `_Refused` too (answered and closing). An upgrade request was
                # answered and closed (`on_message_complete`): we speak nothing else.
                if not self._closing:
                    self._refuse(400, f"malformed HTTP ({exc!r})")
                return
            if self._progress:
                self._stalled = 0
            else:
                self._stalled += len(piece)
                if self._stalled > LINE_LIMIT:
                    self._refuse(431, f"a line longer than {LINE_LIMIT} bytes")
                    return

    # -- parser callbacks -----------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._progress = True
        self._url.clear()
        self._head_bytes = self._headers = self._body = 0
        self._method = b""
        self._arm(self._server.header_timeout, "did not complete its request")

    def on_url(self, url: bytes) -> None:
        self._progress = True
        self._url += url
        if len(self._url) > LINE_LIMIT:
            self._refuse(414, f"a request target longer than {LINE_LIMIT} bytes")
            raise _Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        self._progress = True
        size = len(name) + len(value)
        self._head_bytes += size
        self._headers += 1
        if size > LINE_LIMIT or self._head_bytes > HEAD_LIMIT or self._headers > MAX_HEADERS:
            self._refuse(431, "request header fields too large or too many")
            raise _Refused

    def on_headers_complete(self) -> None:
        self._progress = True
        self._method = self._parser.get_method()
        if self._method not in (b"GET", b"HEAD"):
            self._refuse(405, f"method {self._method!r}", allow=True)
            raise _Refused

    def on_body(self, body: bytes) -> None:
        self._progress = True
        self._body += len(body)
        if self._body > BODY_LIMIT:
            self._refuse(413, f"a body over {BODY_LIMIT} bytes")
            raise _Refused

    def on_message_complete(self) -> None:
        self._progress = True
        keep_alive = self._parser.should_keep_alive() and not self._parser.should_upgrade()
        try:
            path = urllib.parse.unquote(
                (httptools.parse_url(bytes(self._url)).path or b"/").decode("latin-1")
            )  # the decoded path, as aiohttp's router matched it
        except httptools.HttpParserInvalidURLError:
            self._refuse(400, "an invalid request target")
            raise _Refused from None
        route = self._server.routes.get(path)
        if route is None:
            answer = _error(404)
        else:
            try:
                answer = route()
            except Exception:
                logger.exception("Answering %s on %s failed.", path, self._server.name)
                answer = _error(500)
        self._write(answer, keep_alive=keep_alive)
        if not keep_alive:
            self._close_after_answer()
            raise _Refused  # nothing after this request is parsed
        self._arm(self._server.idle_timeout, "stayed idle")

    # -- output ---------------------------------------------------------------------------
    def _write(self, answer: Answer, *, keep_alive: bool, allow: bool = False) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        version = "1.0" if self._parser.get_http_version() == "1.0" else "1.1"
        phrase = http.HTTPStatus(answer.status).phrase
        head = [
            f"HTTP/{version} {answer.status} {phrase}",
            f"Content-Type: {answer.content_type}",
            f"Content-Length: {len(answer.body)}",
        ]
        if allow:
            head.append("Allow: GET, HEAD")
        if not keep_alive:
            head.append("Connection: close")
        elif version == "1.0":
            head.append("Connection: keep-alive")
        wire = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        transport.write(wire if self._method == b"HEAD" else wire + answer.body)

    def _refuse(self, status: int, why: str, *, allow: bool = False) -> None:
        """Answer `status` and close: nothing more is read from this connection."""
        if self._closing:
            return
        logger.debug("Refused a request on %s: %s.", self._server.name, why)
        self._write(_error(status), keep_alive=False, allow=allow)
        self._close_after_answer()

    def _close_after_answer(self) -> None:
        """Close once the last answer is sent; dropped if its client does not read it."""
        self._closing = True
        if self.transport is not None:
            self.transport.close()
        self._arm(self._server.idle_timeout, "did not read its answer")


class Listener:
    """What the runner and callers see of any of our servers: its name and host, the port it
    bound (port 0 picks a free one; `port` tells which after `wait_started()`), its URL."""

    scheme = "http"

    def __init__(self, *, host: str, port: int, name: str, reuse_port: bool) -> None:
        self.host = host
        self.name = name
        self._requested_port = port
        self._reuse_port = reuse_port
        self._bound_port: int | None = None
        self._started = asyncio.Event()

    @property
    def port(self) -> int:
        """The bound port (useful with port 0); only valid once started."""
        if self._bound_port is None:
            raise RuntimeError(f"{self.name} server has not started")
        return self._bound_port

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    async def wait_started(self) -> None:
        await self._started.wait()

    def _serving(self, port: int) -> None:
        self._bound_port = port
        logger.info(
            "Serving %s on %s:%d.", self.name, self.host, port, extra={"component": self.name}
        )
        self._started.set()


class Server(Listener):
    """`routes` served over HTTP/1.1 as a runner component."""

    def __init__(
        self,
        routes: Mapping[str, Route],
        *,
        host: str,
        port: int,
        name: str = "http",
        reuse_port: bool = False,
        header_timeout: float = HEADER_TIMEOUT,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        """`reuse_port`: processes share the port (the dispatcher's workers, probes)."""
        super().__init__(host=host, port=port, name=name, reuse_port=reuse_port)
        self.routes = dict(routes)
        self.header_timeout = header_timeout
        self.idle_timeout = idle_timeout
        self.connections: set[_Connection] = set()
        self._gone: asyncio.Future[None] | None = None

    async def run(self) -> None:
        """Serve until cancelled, then close the listener and every connection."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _Connection(self),
            self.host,
            self._requested_port,
            reuse_port=self._reuse_port or None,
        )
        try:
            self._serving(int(server.sockets[0].getsockname()[1]))
            await asyncio.Event().wait()  # until cancelled
        finally:
            server.close()
            await asyncio.shield(self._close_connections())
            logger.info("Stopped serving %s.", self.name)

    async def _close_connections(self, grace: float = 1.0) -> None:
        """Close every connection (their answers are written: handlers are synchronous);
        drop those whose client does not take its last bytes within `grace` seconds."""
        for connection in list(self.connections):
            connection.close()
        await self._all_gone(grace)
        for connection in list(self.connections):
            connection.abort()
        await self._all_gone(grace)  # an abort reports `connection_lost` at the next turn

    async def _all_gone(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while self.connections and loop.time() < deadline:
            self._gone = loop.create_future()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await self._gone

    def forget(self, connection: _Connection) -> None:
        """A connection was lost."""
        self.connections.discard(connection)
        if self._gone is not None and not self._gone.done():
            self._gone.set_result(None)
