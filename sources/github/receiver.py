"""`Receiver`: the webhook endpoint. Every request gets a clear answer; nothing crashes it.

Checks, in order (the first failing one answers):

| check | answer |
|---|---|
| body above GITHUB_MAX_PAYLOAD_BYTES (GitHub caps at 25 MB) | 413 |
| `X-Hub-Signature-256` missing, malformed or wrong | 401 (counted by reason) |
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
nothing). Upstream answers every failure 400; 401 and 5xx are deliberate, so GitHub's
delivery log shows the cause and a 5xx delivery can be redelivered. Dropped types get a 2xx:
the webhook works as configured, GitHub should neither flag it failing nor redeliver it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from urllib.parse import parse_qs

import orjson
from aiohttp import web
from opentelemetry import trace

from kevents import errors, probes
from sources.github import config, events, forwarder, payloads, signature
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

    def response(self) -> web.Response:
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if self.status == 503 else None
        response = web.Response(status=self.status, text=self.text + "\n", headers=headers)
        if self.status == 413:
            response.force_close()  # no keep-alive after an oversized upload
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

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=self._settings.max_payload)
        if self._readiness is not None:
            app[probes.READINESS] = self._readiness
            app.router.add_get("/health", self._health)
            app.router.add_get("/readiness", self._ready)
        app.router.add_post("/{path:.*}", self.handle)
        return app

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _ready(self, request: web.Request) -> web.Response:
        readiness = request.app[probes.READINESS]
        if readiness.ready:
            return web.Response(text="ready")
        return web.Response(status=503, text=f"not ready: {readiness.reason}")

    async def handle(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        event_name = request.headers.get(EVENT_HEADER)
        try:
            answer = await self._process(request, event_name)
        except Exception:  # a bug must cost one answer, never the process
            logger.exception("Handling a %s webhook failed unexpectedly.", event_name)
            answer = Answer(500, Outcome.BAD_REQUEST, "internal error")
        self._metrics.observe(event_name, answer.outcome, time.perf_counter() - started)
        return answer.response()

    async def _process(self, request: web.Request, event_name: str | None) -> Answer:
        limit = self._settings.max_payload
        if request.content_length is not None and request.content_length > limit:
            return Answer(413, Outcome.TOO_LARGE, f"payload above the {limit} byte limit")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return Answer(413, Outcome.TOO_LARGE, f"payload above the {limit} byte limit")
        verdict = signature.verify(self._secret, body, request.headers.get(signature.HEADER))
        if verdict is not signature.Verdict.VALID:
            self._metrics.signature_failures.labels(verdict.value).inc()
            logger.warning(
                "Refused a webhook from %s: signature %s.", request.remote, verdict.value
            )
            return Answer(401, Outcome.UNAUTHORIZED, verdict.explanation)
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
        data = _payload_bytes(request.content_type, body)
        if isinstance(data, Answer):
            return data
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            return _bad(f"malformed JSON payload: {exc}")
        if not isinstance(parsed, dict):
            return _bad(f"payload must be a JSON object, got {type(parsed).__name__}")
        payload: payloads.WebhookPayload = parsed  # type: ignore[assignment]
        try:
            event = events.make(event_name, delivery_id, payload, data, source=self._source)
        except errors.InvalidEventError as exc:
            return _bad(f"cannot make a CloudEvent of this webhook: {exc.reason}")
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


def _payload_bytes(content_type: str, body: bytes) -> bytes | Answer:
    """The JSON bytes of a webhook: the body (`json`) or its `payload` field (`form`)."""
    if content_type in ("application/json", "application/octet-stream", ""):
        return body  # aiohttp reports a missing Content-Type as application/octet-stream
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
