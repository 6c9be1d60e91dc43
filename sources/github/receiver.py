"""`Receiver`: the webhook endpoint. Every request gets a clear answer; nothing crashes it.

Checks, in order (the first failing one answers):

| check | answer |
|---|---|
| Content-Length above GITHUB_MAX_PAYLOAD_BYTES (GitHub caps at 25 MB) | 413, body unread |
| `X-Hub-Signature-256` missing or malformed | 401, body unread (counted by reason) |
| Content-Length does not fit in GITHUB_UNVERIFIED_BYTES now | 503 + Retry-After, unread |
| body above the limit / not received within GITHUB_BODY_TIMEOUT | 413 / 408 |
| `X-Hub-Signature-256` not the HMAC of the body (fed as it arrives) | 401 (counted) |
| `X-GitHub-Event` / `X-GitHub-Delivery` missing (as upstream) or malformed | 400 |
| delivery id already delivered | 200 `duplicate` |
| event type not in GITHUB_EVENT_TYPES (`ping` always passes) | 200 `dropped` |
| Content-Type neither JSON nor form-encoded (GitHub's two choices) | 415 |
| payload not a JSON object | 400 with the parser's reason |
| sink accepted the event | 202 `accepted` (upstream's answer) |
| still queued at the ack timeout | 202 `queued` |
| queue full (count or bytes) / shutting down / sink failing | 503 + Retry-After |
| sink refused it for good (e.g. 400) | 502 |

The signature is checked before anything else is looked at (an unauthenticated caller learns
nothing), and what an unauthenticated body may cost is bounded (`intake`). Refusals are
counted by reason and summarised in at most one log line a minute (`logs.RateLimitedSummary`);
malformed HTTP is counted and summarised by `kevents.httpserver`, whose header and idle
timeouts also apply here: a stranger can neither flood the logs nor hold connections.

Upstream answers every failure 400; 401 and 5xx are deliberate, so GitHub's
delivery log shows the cause and a 5xx delivery can be redelivered. Dropped types get a 2xx:
the webhook works as configured, GitHub should neither flag it failing nor redeliver it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from urllib.parse import parse_qs

import orjson
from aiohttp import web
from opentelemetry import trace

from kevents import cloudevent, errors, httpserver, logs, probes
from kevents import metrics as kevents_metrics
from sources.github import config, events, forwarder, intake, payloads, signature
from sources.github import metrics as github_metrics

logger = logging.getLogger(__name__)

EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
RETRY_AFTER_SECONDS = 5
"""Retry-After on 503: long enough for a restarting sink or a draining queue."""
MAX_DELIVERY_ID = 256

Outcome = github_metrics.Outcome


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    status: int
    outcome: Outcome
    text: str
    close: bool = False
    """No keep-alive: the body was not read to the end. aiohttp still reads and discards what
    the client sends for a while (its lingering close) so that the client sees this answer."""

    def response(self) -> web.Response:
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if self.status == 503 else None
        response = web.Response(status=self.status, text=self.text + "\n", headers=headers)
        if self.close:
            response.force_close()
        return response


_FATES = {
    forwarder.Fate.DELIVERED: (202, Outcome.ACCEPTED, "accepted"),
    forwarder.Fate.DUPLICATE: (200, Outcome.DUPLICATE, "duplicate delivery"),
    forwarder.Fate.QUEUED: (202, Outcome.QUEUED, "queued"),
    forwarder.Fate.FULL: (503, Outcome.OVERLOADED, "overloaded, retry later"),
    forwarder.Fate.CLOSED: (503, Outcome.OVERLOADED, "unavailable, retry later"),
    forwarder.Fate.FAILED: (503, Outcome.SINK_FAILED, "the sink did not accept the event"),
    forwarder.Fate.REFUSED: (502, Outcome.SINK_FAILED, "the sink refused the event"),
}


def _bad(text: str) -> Answer:
    return Answer(400, Outcome.BAD_REQUEST, text)


def _too_large(limit: int) -> Answer:
    return Answer(413, Outcome.TOO_LARGE, f"payload above the {limit} byte limit", close=True)


class Receiver:
    def __init__(
        self,
        settings: config.Settings,
        sink_forwarder: forwarder.Forwarder,
        *,
        github_metrics: github_metrics.GitHubMetrics,
        readiness: probes.Readiness | None = None,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        """With `readiness`, /health and /readiness are served here too (PORT = probes port)."""
        self._settings = settings
        self._secret = settings.secret_token
        self._source = settings.source
        self._forwarder = sink_forwarder
        self._metrics = github_metrics
        self._readiness = readiness
        provider = tracer_provider if tracer_provider is not None else trace.NoOpTracerProvider()
        self._tracer = provider.get_tracer("kevents.github")
        self._budget = intake.ByteBudget(settings.unverified_bytes)
        github_metrics.unverified_bytes.set_function(lambda: self._budget.in_use)
        self.refusals = logs.RateLimitedSummary(logger, "Refused webhook requests")
        """Run by the adapter: one line a minute at most, counts by reason."""

    def _refuse(self, reason: str, answer: Answer) -> Answer:
        self.refusals.note(reason)
        return answer

    def _unauthorized(self, verdict: signature.Verdict, *, close: bool = False) -> Answer:
        self._metrics.signature_failures.labels(verdict.value).inc()
        answer = Answer(401, Outcome.UNAUTHORIZED, verdict.explanation, close=close)
        return self._refuse(f"signature_{verdict.value}", answer)

    def make_server(
        self, http_metrics: kevents_metrics.HTTPServerMetrics, *, name: str = "webhooks"
    ) -> httpserver.Server:
        """aiohttp's low-level server hardened for the internet (`kevents.httpserver`: header
        and idle timeouts, malformed HTTP counted and summarised); its `run()` writes those
        summaries. Routes: POST any path = a webhook; GET /health and /readiness when the
        probes share this port."""
        timeouts = httpserver.Timeouts(body=self._settings.body_timeout)
        return httpserver.Server(self._route, name=name, timeouts=timeouts, metrics=http_metrics)

    async def _route(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method == "POST":
            return await self.handle(request)
        if self._readiness is not None and request.method in ("GET", "HEAD"):
            if request.path == "/health":
                return web.Response(text="ok")
            if request.path == "/readiness":
                if self._readiness.ready:
                    return web.Response(text="ready")
                return web.Response(status=503, text=f"not ready: {self._readiness.reason}")
        return web.Response(status=405, text="webhooks are POSTed\n", headers={"Allow": "POST"})

    async def handle(self, request: web.BaseRequest) -> web.Response:
        started = time.perf_counter()
        event_name = request.headers.get(EVENT_HEADER)
        try:
            answer = await self._process(request, event_name)
        except Exception:  # a bug must cost one answer, never the process
            logger.exception("Handling a %s webhook failed unexpectedly.", event_name)
            answer = Answer(500, Outcome.BAD_REQUEST, "internal error")
        self._metrics.observe(event_name, answer.outcome, time.perf_counter() - started)
        return answer.response()

    async def _process(self, request: web.BaseRequest, event_name: str | None) -> Answer:
        limit = self._settings.max_payload
        length = request.content_length
        if length is not None and length > limit:
            return self._refuse("too_large", _too_large(limit))
        claimed = signature.claimed_digest(request.headers.get(signature.HEADER))
        if isinstance(claimed, signature.Verdict):
            return self._unauthorized(claimed, close=True)
        with intake.Reservation(self._budget) as reservation:
            if length is not None and not reservation.cover(length):
                return self._refuse("busy", _busy())
            verifier = signature.Verifier(self._secret, claimed)
            body = await intake.read(
                request.content,
                verifier,
                reservation,
                limit=limit,
                deadline=asyncio.get_running_loop().time() + self._settings.body_timeout,
            )
            if isinstance(body, intake.Problem):
                return self._refuse(body.value, self._unread(body))
            verdict = verifier.verdict()
            if verdict is not signature.Verdict.VALID:
                return self._unauthorized(verdict)
            return await self._verified(request, event_name, body, reservation)

    def _unread(self, problem: intake.Problem) -> Answer:
        if problem is intake.Problem.TOO_LARGE:
            return _too_large(self._settings.max_payload)
        if problem is intake.Problem.BUSY:
            return _busy()
        if problem is intake.Problem.TIMEOUT:
            seconds = self._settings.body_timeout
            return Answer(408, Outcome.TIMEOUT, f"body not received within {seconds} s", True)
        return Answer(400, Outcome.INCOMPLETE, "the body ended early", close=True)

    async def _verified(
        self,
        request: web.BaseRequest,
        event_name: str | None,
        received: bytearray,
        reservation: intake.Reservation,
    ) -> Answer:
        """Everything after a valid signature; `reservation` still covers `received`."""
        delivery_id = request.headers.get(DELIVERY_HEADER, "").strip()
        if not event_name:
            return _bad(f"missing {EVENT_HEADER} header")
        if not delivery_id:
            return _bad(f"missing {DELIVERY_HEADER} header")
        if not events.EVENT_NAME.fullmatch(event_name):
            return _bad(f"{EVENT_HEADER} {event_name[:64]!r} is not a GitHub event name")
        if len(delivery_id) > MAX_DELIVERY_ID or not delivery_id.isprintable():
            return _bad(f"{DELIVERY_HEADER} must be at most {MAX_DELIVERY_ID} printable chars")
        if self._forwarder.delivered(delivery_id):
            return Answer(200, Outcome.DUPLICATE, "duplicate delivery")
        wanted = self._settings.event_types
        if wanted and event_name not in wanted and event_name != "ping":
            return Answer(
                200,
                Outcome.DROPPED,
                f"dropped: {event_name} is not in eventTypes ({', '.join(sorted(wanted))})",
            )
        # From here to the forwarder nothing awaits: the bytes copy and the parsed payload
        # exist for one request at a time, and `received` is dropped before the queue counts it.
        data = _payload_bytes(request.content_type, received)
        received.clear()
        if isinstance(data, Answer):
            return data
        event = _event(event_name, delivery_id, data, self._source)
        if isinstance(event, Answer):
            return event
        reservation.release()  # the forwarder's queue counts the payload from now on
        with self._tracer.start_as_current_span(
            f"{event_name} webhook",
            kind=trace.SpanKind.SERVER,
            attributes={"cloudevents.event_id": delivery_id, "github.event": event_name},
        ):
            forwarded = await self._forwarder.forward(event, len(data))
        status, outcome, text = _FATES[forwarded.fate]
        if forwarded.detail:
            text = f"{text}: {forwarded.detail}"
        return Answer(status, outcome, text)


def _busy() -> Answer:
    text = "too many webhook bodies are being received, retry later"
    return Answer(503, Outcome.BUSY, text, close=True)


def _event(
    event_name: str, delivery_id: str, data: bytes, source: str
) -> cloudevent.CloudEvent | Answer:
    """The CloudEvent of a webhook's JSON bytes; its parsed payload is gone on return."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return _bad(f"malformed JSON payload: {exc}")
    if not isinstance(parsed, dict):
        return _bad(f"payload must be a JSON object, got {type(parsed).__name__}")
    payload: payloads.WebhookPayload = parsed  # type: ignore[assignment]
    try:
        return events.make(event_name, delivery_id, payload, data, source=source)
    except errors.InvalidEventError as exc:
        return _bad(f"cannot make a CloudEvent of this webhook: {exc.reason}")


def _payload_bytes(content_type: str, body: bytearray) -> bytes | Answer:
    """The JSON bytes of a webhook: the body (`json`) or its `payload` field (`form`)."""
    if content_type in ("application/json", "application/octet-stream", ""):
        return bytes(body)  # aiohttp reports a missing Content-Type as application/octet-stream
    if content_type == "application/x-www-form-urlencoded":
        try:
            fields = parse_qs(body.decode("utf-8"), strict_parsing=False)
        except UnicodeDecodeError:
            return _bad("form-encoded payload is not UTF-8")
        values = fields.get("payload")
        if not values:
            return _bad("form-encoded webhook without a 'payload' field")
        return values[0].encode("utf-8")
    return Answer(
        415,
        Outcome.UNSUPPORTED_MEDIA,
        f"Content-Type {content_type} is neither application/json nor form-encoded",
    )
