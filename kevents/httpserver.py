"""aiohttp's low-level HTTP server, hardened for callers we do not trust.

The ingresses face any pod of the cluster (and the GitHub receiver the internet). aiohttp's
server, as configured before, let a hostile or broken client cost us without limit
(issue 17):

- a connection that never sends a request was held forever (one fd each): now closed after
  `Timeouts.header`, counted;
- a header sent a byte at a time (slowloris) likewise: closed `Timeouts.header` after its
  first byte;
- an idle keep-alive connection was held 3,630 s: now `Timeouts.idle`, counted;
- a complete request followed by `shutdown(SHUT_WR)` was handled but never answered (asyncio
  closes the transport on EOF), so a retrying producer duplicated the event: now answered,
  then closed; a half-close before the body is complete still closes at once, and
  `answerable()` lets a handler accept nothing it can no longer answer;
- malformed HTTP logged an ERROR with a traceback each: now counted by reason
  (`kevents_http_requests_refused_total`) and summarised in one WARNING line per interval.

The body read timeout belongs to the handler that reads the body (`read_body()`): it knows
its size limit and its answers.

`Server` is an `aiohttp.web.Server`, so `kevents.webserver.WebServer` serves it unchanged.
Knative's own servers set no header timeout (Go's `http.Server` defaults); the idle
timeout of its ingress is Go's (`IdleTimeout` = `ReadTimeout`, unset); ours are settings.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import http_exceptions, web, web_protocol

from kevents import logs
from kevents import metrics as kevents_metrics

logger = logging.getLogger(__name__)

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


@dataclasses.dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds a connection may spend in each state (the deployable's settings give them)."""

    header: float = 10.0
    """From a new connection, or the first byte of the next request on a kept-alive one, to
    the end of the request's headers. 10 s is hundreds of round trips in a cluster."""
    idle: float = 120.0
    """A kept-alive connection between requests. Above Go's and our own client pools' idle
    time (90 s), so a client rarely sends into a connection we are closing."""
    body: float = 30.0
    """Reading one request body (`read_body`): 4 MiB at ~1 Mbit/s."""


class BodyTimeoutError(Exception):
    """The body did not arrive within `Timeouts.body` (answer 408)."""


class BodyTooLargeError(Exception):
    """The body is larger than the limit (answer 413)."""


class ConnectionGoneError(Exception):
    """The client closed the connection before its body was complete (nothing to answer)."""


async def read_body(request: web.BaseRequest, *, limit: int, seconds: float) -> bytes:
    """The whole body, at most `limit` bytes (chunked bodies counted as they come), within
    `seconds`; raises `BodyTooLargeError`, `BodyTimeoutError`, `ConnectionGoneError`."""
    length = request.content_length
    if length is not None and length > limit:
        raise BodyTooLargeError
    if request.headers.get("Expect", "").lower() == "100-continue":
        # What aiohttp's router does for us otherwise: curl waits a second without it.
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0
    chunks: list[bytes] = []
    size = 0
    content = request.content
    try:
        if content.is_eof():
            # A small event's body arrives with its head: taken as it is, with no timer to
            # set and cancel per request.
            body = content.read_nowait()
            if len(body) > limit:
                raise BodyTooLargeError
            return body
        async with asyncio.timeout(seconds):
            while chunk := await content.readany():
                size += len(chunk)
                if size > limit:
                    raise BodyTooLargeError
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTimeoutError from None
    except (ConnectionError, http_exceptions.HttpProcessingError) as exc:
        raise ConnectionGoneError from exc
    if not content.is_eof():  # pragma: no cover - readany() ends only at EOF
        raise ConnectionGoneError
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def answerable(request: web.BaseRequest) -> bool:
    """Whether an answer can still reach the client: accept nothing that cannot be answered
    (a producer that gets no answer retries, and the event would arrive twice)."""
    transport = request.transport
    return transport is not None and not transport.is_closing()


_PROTOCOL_REASONS = {
    http_exceptions.BadHttpMethod: "bad_method",
    http_exceptions.BadStatusLine: "bad_request_line",
    http_exceptions.LineTooLong: "line_too_long",
    http_exceptions.InvalidHeader: "bad_header",
    http_exceptions.InvalidURLError: "bad_url",
    http_exceptions.ContentLengthError: "bad_content_length",
    http_exceptions.TransferEncodingError: "bad_transfer_encoding",
    http_exceptions.ContentEncodingError: "bad_content_encoding",
}
REASONS = (*sorted(set(_PROTOCOL_REASONS.values())), "bad_http", "handler_error")
"""Every `reason` label of `kevents_http_requests_refused_total` (bounded)."""


def protocol_reason(exc: BaseException | None) -> str:
    for kind in type(exc).__mro__:
        reason = _PROTOCOL_REASONS.get(kind)
        if reason is not None:
            return reason
    return "bad_http" if isinstance(exc, http_exceptions.HttpProcessingError) else "handler_error"


class _Phase(enum.Enum):
    WAITING = "waiting for a request"  # header_timeout runs
    HANDLING = "handling a request"  # no connection timer: the handler bounds its reads
    IDLE = "idle between requests"  # idle_timeout runs


_TIMER_SLACK = 0.001
"""Seconds: a deadline this close counts as reached (loop timers have millisecond
resolution and may fire that much early)."""


class _Protocol(web_protocol.RequestHandler):
    """One connection: aiohttp's, plus our timers, half-close rule and quiet error path."""

    def __init__(self, server: Server, **kwargs: Any) -> None:
        super().__init__(server, **kwargs)
        self._server = server
        self._phase = _Phase.WAITING
        self._deadline = 0.0
        """Loop time at which the current phase (WAITING or IDLE) ends the connection."""
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._request: web.BaseRequest | None = None
        self._last: web.BaseRequest | None = None
        self._refusing = False

    # -- timers ---------------------------------------------------------------------------
    # One timer per connection, set lazily: entering a phase only records its deadline, and
    # the timer is (re)set only when it would fire after that deadline. It is set at most
    # `header` seconds ahead, so a kept-alive connection going IDLE -> WAITING -> HANDLING
    # for every request sets none (three set-and-cancel per request cost ~3 µs); when it
    # fires early it checks the phase and comes back at the deadline.
    def _arm(self, phase: _Phase, seconds: float) -> None:
        now = self._loop.time()
        self._phase = phase
        self._deadline = deadline = now + seconds
        if self._timer is None or self._timer_at > deadline:
            self._schedule(min(deadline, now + self._server.timeouts.header))

    def _schedule(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        phase = self._phase
        if phase is _Phase.HANDLING or self.transport is None:
            return  # `finished()` sets the timer again
        now = self._loop.time()
        if now + _TIMER_SLACK < self._deadline:
            self._schedule(min(self._deadline, now + self._server.timeouts.header))
            return
        reason = "header_timeout" if phase is _Phase.WAITING else "idle_timeout"
        self._server.closed(reason)
        self.force_close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm(_Phase.WAITING, self._server.timeouts.header)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        last, self._last = self._last, None
        if last is not None and not last.content.is_eof():
            # aiohttp would keep reading ("lingering") the rest of an unread body of a
            # connection that is gone, for `lingering_time`: end that read now.
            last.content.feed_eof()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase is _Phase.IDLE and data:
            self._arm(_Phase.WAITING, self._server.timeouts.header)
        super().data_received(data)

    def started(self, request: web.BaseRequest) -> None:
        self._phase = _Phase.HANDLING  # no deadline; the timer, if set, finds it so
        self._request = request

    def finished(self) -> None:
        self._last, self._request = self._request, None
        if self.transport is not None:
            self._arm(_Phase.IDLE, self._server.timeouts.idle)

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        """aiohttp writes every answer here (the handler's and `handle_error`'s): until it
        is written, a half-close keeps our half open for it."""
        try:
            return await super().finish_response(request, resp, start_time)
        finally:
            self.finished()

    # -- half-close -----------------------------------------------------------------------
    def eof_received(self) -> bool | None:  # type: ignore[override]
        """The client shut down its sending half. Keep our half open while a complete
        request waits for its answer, then close; otherwise close now (aiohttp's rule)."""
        request = self._request
        if request is not None:
            complete = request.content.is_eof()
        else:
            complete = any(payload.is_eof() for _, payload in self._messages)
        if not complete:
            return None  # nothing can be answered: the transport closes
        self._server.closed("half_closed")
        self.close()  # no further request on this connection; closed after the answer(s)
        return True

    # -- hostile input --------------------------------------------------------------------
    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        reason = protocol_reason(exc)
        self._server.refused(reason, exc)
        self._refusing = True  # aiohttp's own ERROR line is replaced by the summary
        try:
            return super().handle_error(request, status, exc, message)
        finally:
            self._refusing = False

    def log_exception(self, *args: Any, **kw: Any) -> None:
        if self._refusing:
            return
        self._server.unexpected(args, kw)


class Server(web.Server):
    """`web.Server` whose connections are `_Protocol`s: see the module docstring.

    `name` labels the metrics (bounded: one per listener of a deployable)."""

    def __init__(
        self,
        handler: Handler,
        *,
        name: str,
        timeouts: Timeouts,
        metrics: kevents_metrics.HTTPServerMetrics,
        log_interval: float = 60.0,
    ) -> None:
        # aiohttp's keep-alive timer stays as a backstop behind ours.
        super().__init__(
            handler,
            access_log=None,
            keepalive_timeout=timeouts.idle + timeouts.header,
            # After an answer to a body not read to its end (413, 408), aiohttp reads and
            # drops the rest so the client sees the answer rather than a reset; bounded.
            lingering_time=min(10.0, timeouts.body),
        )
        self.name = name
        self.timeouts = timeouts
        self._closed = {
            reason: metrics.connections_closed.labels(name, reason)
            for reason in ("header_timeout", "idle_timeout", "half_closed")
        }
        self._refused = {
            reason: metrics.requests_refused.labels(name, reason) for reason in REASONS
        }
        self.refusals = logs.RateLimitedSummary(
            logger, f"Refused malformed HTTP requests on {name}", interval=log_interval
        )
        """Summary lines of malformed requests; its `run()` is a component of the deployable."""
        self.errors = logs.RateLimitedSummary(
            logger, f"Unexpected errors serving {name}", level=logging.ERROR,
            interval=log_interval,
        )  # fmt: skip
        self._log_interval = log_interval
        self._traceback_at = float("-inf")

    def __call__(self) -> web_protocol.RequestHandler:
        return _Protocol(self, loop=self._loop, **self._kwargs)

    def _make_request(
        self,
        message: Any,
        payload: Any,
        protocol: web_protocol.RequestHandler,
        writer: Any,
        task: asyncio.Task[None],
    ) -> web.BaseRequest:
        """aiohttp makes the request as it takes the message from its queue, in the same
        step: from here on a half-close must wait for this request's answer."""
        request = super()._make_request(message, payload, protocol, writer, task)
        if isinstance(protocol, _Protocol):
            protocol.started(request)
        return request

    def closed(self, reason: str) -> None:
        self._closed[reason].inc()

    def refused(self, reason: str, exc: BaseException | None) -> None:
        self._refused[reason].inc()
        if reason == "handler_error":
            self._error(exc)
        else:
            self.refusals.note(reason)

    def unexpected(self, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
        """aiohttp's `log_exception` outside a request's error answer (e.g. a failed write)."""
        self._refused["handler_error"].inc()
        exc = kw.get("exc_info")
        self._error(exc if isinstance(exc, BaseException) else None)

    def _error(self, exc: BaseException | None) -> None:
        """A bug: counted, summarised, and one traceback per interval to find it by."""
        self.errors.note("handler_error")
        now = time.monotonic()
        if exc is not None and now - self._traceback_at >= self._log_interval:
            self._traceback_at = now
            logger.error(
                "Unexpected error serving %s (one traceback per %g s).",
                self.name, self._log_interval, exc_info=exc,
            )  # fmt: skip

    async def run(self) -> None:
        """Write the summary lines every interval until cancelled (a runner component)."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.refusals.run())
            group.create_task(self.errors.run())
