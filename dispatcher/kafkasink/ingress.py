"""The KafkaSink ingress: `POST /<namespace>/<kafkasink>` -> one Kafka record, 202 once stored.

Knative's KafkaSink receiver contract (eventing-kafka-broker `receiver`), ours:

| request                                         | answer                                 |
|-------------------------------------------------|----------------------------------------|
| not POST                                        | 405 with `Allow: POST`                 |
| `/`, or an unknown KafkaSink                    | 404                                    |
| not exactly `/<ns>/<name>`                      | 400                                    |
| process draining for shutdown                   | 503 + Retry-After                      |
| body above the size limit / not in time         | 413 / 408                              |
| not a valid CloudEvent (binary or structured)   | 400 with the reason                    |
| record refused by Kafka as too large            | 413 with Kafka's words                 |
| the sink's Secret missing or invalid            | 503 with the reason (fix it, retry)    |
| Kafka unreachable, credentials refused, topic   | 503 + Retry-After with Kafka's words:  |
| missing, no acknowledgement in time             | nothing was stored                     |
| Kafka not keeping up: an event of this target   | 429 + Retry-After at once: nothing was |
| waits beyond `produce_target`, acks are slow    | queued (Knative's receiver queues)     |
| stored: every in-sync replica has it (`acks=all`)| 202                                   |

The event is decoded with the shared decoder (`kevents.cloudevent.decode`, so the same events
are refused with the same reasons as everywhere) and written with the one CloudEvents Kafka
binding (`kevents.kafka.encode_event`): `binary` (default) puts the attributes in `ce_`
headers and the data as the value, `structured` the JSON envelope as the value. The
`partitionkey` extension is the record key. The trace context (W3C `traceparent`, B3) goes
into the record's headers, so a consumer continues the producer's trace.

Latency under overload is bounded by admission (`Admission`), as in the channel dispatcher:
once the oldest event of a target still waiting for Kafka has waited longer than
`produce_target` (1 s by default) and acknowledgements are not coming fast either (none
within that time, or the latest one waited longer too), new events for that target get 429
at once instead of joining a wait that would end at `produce_timeout` (15 s) with a 503. A
single stuck record while the rest of the topic is acknowledged quickly refuses nothing.

Nothing is accepted that was not stored: a 202 is sent only after Kafka's acknowledgement,
and a client that went away before its answer could be written gets no record (a producer
that gets no answer retries, and the record would be there twice).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time

from aiohttp import web
from opentelemetry import context as otel_context
from opentelemetry import trace

from dispatcher import routing
from dispatcher.kafkasink import metrics as sink_metrics
from dispatcher.kafkasink import producers
from kevents import cloudevent, errors, httpserver, kafka, tracing
from kevents import metrics as kevents_metrics

logger = logging.getLogger(__name__)

_TRACE_HEADERS = ("traceparent", "X-B3-TraceId")
_TOO_LARGE = frozenset({"MSG_SIZE_TOO_LARGE", "RECORD_LIST_TOO_LARGE", "_MSG_SIZE_TOO_LARGE"})


@dataclasses.dataclass(slots=True)
class Admission:
    """The events of one target waiting for Kafka's acknowledgement, and how the latest
    acknowledgement went: whether a new event should be refused (see the module docstring)."""

    target: float
    """Seconds (`produce_target`); 0: never refuse."""
    waiting: dict[int, float] = dataclasses.field(default_factory=dict)
    """Token -> when its event was handed to the producer; insertion order is age order."""
    last_done: float = -math.inf
    """When the latest acknowledgement (or failure) came."""
    last_wait: float = 0.0
    """How long that event had waited."""
    _next: int = 0

    def longest_wait(self, now: float) -> float:
        """Seconds the oldest event still waiting has waited (0 when none waits)."""
        return now - next(iter(self.waiting.values())) if self.waiting else 0.0

    def over_target(self, now: float) -> bool:
        if not self.target or self.longest_wait(now) <= self.target:
            return False
        return now - self.last_done > self.target or self.last_wait > self.target

    def started(self, now: float) -> int:
        token = self._next
        self._next += 1
        self.waiting[token] = now
        return token

    def finished(self, token: int, now: float) -> None:
        began = self.waiting.pop(token)
        self.last_done, self.last_wait = now, now - began


def _result(exc: errors.KafkaError) -> str:
    """The `records_out` result of a failed produce (`metrics.RESULTS`)."""
    if isinstance(exc, errors.KafkaUnreachableError):
        return "unreachable"
    if isinstance(exc, errors.KafkaAuthenticationError | errors.KafkaTopicError):
        return "refused"
    return "refused" if exc.code in _TOO_LARGE else "error"


class Ingress:
    def __init__(
        self,
        table: producers.Table,
        metrics: sink_metrics.KafkaSinkMetrics,
        *,
        max_body_size: int,
        produce_timeout: float,
        retry_after: int,
        produce_target: float = 0.0,
        tracer_provider: trace.TracerProvider | None = None,
        timeouts: httpserver.Timeouts | None = None,
        noun: str = "KafkaSink",
        span_name: str = "kafkasink.produce",
        by_host: bool = False,
    ) -> None:
        """`noun`/`span_name`: what the answers and the PRODUCER span call the target (the
        Kafka Broker class's ingress serves Brokers through this same class); `by_host`:
        route as a channel ingress (the Host `<name>-kn-channel.<ns>...`, or `/<ns>/<name>`:
        KafkaChannels)."""
        self._noun = noun
        self._by_host = by_host
        self._span_name = span_name
        self._table = table
        self._metrics = metrics
        self._max_body = max_body_size
        self._produce_timeout = produce_timeout
        self._produce_target = produce_target
        self._admissions: dict[tuple[str, str], Admission] = {}
        """Per target with events waiting for Kafka (forgotten when none are)."""
        self._retry_after = {"Retry-After": str(retry_after)}
        self.timeouts = timeouts if timeouts is not None else httpserver.Timeouts()
        self._tracer = (
            tracer_provider.get_tracer("kevents.kafkasink") if tracer_provider is not None else None
        )
        self.draining = False
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def longest_wait(self, key: tuple[str, str]) -> float:
        """Seconds the oldest event of target `key` still waiting for Kafka has waited (0 when
        none waits)."""
        admission = self._admissions.get(key)
        return admission.longest_wait(time.monotonic()) if admission is not None else 0.0

    def make_server(self, *, metrics: kevents_metrics.HTTPServerMetrics) -> httpserver.Server:
        return httpserver.Server(
            self.handle, name="kafka_sink_ingress", timeouts=self.timeouts, metrics=metrics
        )

    async def drain(self, grace: float) -> None:
        """Answer 503 to new requests; wait up to `grace` s for those being produced."""
        self.draining = True
        try:
            async with asyncio.timeout(grace):
                await self._idle.wait()
        except TimeoutError:
            logger.warning("%d event(s) still being produced at the end of the grace period.",
                           self._in_flight)  # fmt: skip

    def _answer(self, namespace: str, status: int, text: str = "", **extra: str) -> web.Response:
        self._metrics.answer(namespace, status)
        return web.Response(status=status, text=text, headers=extra or None)

    async def handle(self, request: web.BaseRequest) -> web.Response:
        try:
            return await self._handle(request)
        except Exception:
            self._metrics.answer("", 500)
            raise

    async def _handle(self, request: web.BaseRequest) -> web.Response:
        if request.method != "POST":
            return self._answer("", 405, "only POST is allowed\n", Allow="POST")
        path = request.path
        if self._by_host:  # a channel: its Host, or /<ns>/<name> (dispatcher.routing)
            try:
                key = routing.resolve(request.host, path)
            except routing.RoutingError as exc:
                return self._answer("", exc.status, f"{exc.reason}\n")
        elif path in ("", "/"):
            return self._answer("", 404, f"POST events to /<namespace>/<{self._noun.lower()}>\n")
        else:
            try:
                key = routing.from_path(path)
            except routing.RoutingError:
                return self._answer(
                    "", 400, f"path {path!r} names no {self._noun}: use /<ns>/<name>\n"
                )
        namespace = key[0]
        if key not in self._table.sinks:
            return self._answer(namespace, 404, f"{self._noun} {key[0]}/{key[1]} not found\n")
        if self.draining:
            return self._answer(namespace, 503, "shutting down: retry\n", **self._retry_after)
        try:
            body = await httpserver.read_body(
                request, limit=self._max_body, seconds=self.timeouts.body
            )
        except httpserver.BodyTooLargeError:
            return self._answer(
                namespace, 413, f"event body is larger than {self._max_body} bytes\n"
            )
        except httpserver.BodyTimeoutError:
            answer = self._answer(
                namespace, 408, f"the body did not arrive within {self.timeouts.body:g} s\n"
            )
            answer.force_close()
            return answer
        except httpserver.ConnectionGoneError:
            return web.Response(status=400)  # the client left: nobody reads an answer
        try:
            event = cloudevent.decode(request.headers, body)
        except errors.InvalidEventError as exc:
            return self._answer(namespace, 400, f"invalid CloudEvent: {exc.reason}\n")
        traced = any(h in request.headers for h in _TRACE_HEADERS)
        parent = tracing.extract(request.headers) if traced else otel_context.Context()
        self._in_flight += 1
        self._idle.clear()
        try:
            return await self._produce(request, key, event, parent, traced)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def _produce(
        self,
        request: web.BaseRequest,
        key: tuple[str, str],
        event: cloudevent.CloudEvent,
        parent: otel_context.Context,
        traced: bool,
    ) -> web.Response:
        namespace = key[0]
        try:
            target = await self._table.target(key)
        except producers.SinkUnavailableError as exc:
            return self._answer(namespace, 503, f"{exc}\n", **self._retry_after)
        if target is None:  # deleted while its Secret was read
            return self._answer(namespace, 404, f"{self._noun} {key[0]}/{key[1]} not found\n")
        sink = target.sink
        admission = self._admissions.get(key)
        now = time.monotonic()
        if admission is not None and admission.over_target(now):
            return self._answer(
                namespace, 429,
                f"Kafka is not keeping up: an event has waited {admission.longest_wait(now):.1f} s "
                "for its acknowledgement; retry later\n",
                **self._retry_after,
            )  # fmt: skip
        span = (
            self._tracer.start_span(self._span_name, context=parent, kind=trace.SpanKind.PRODUCER)
            if self._tracer is not None
            else trace.INVALID_SPAN
        )
        try:
            if span.is_recording():
                span.set_attributes(
                    {
                        "messaging.system": "kafka",
                        "messaging.destination.name": sink.topic,
                        "kevents.kafkasink": f"{sink.namespace}/{sink.name}",
                        "cloudevents.event_id": event.get_id(),
                        "cloudevents.event_type": event.get_type(),
                        "cloudevents.event_source": event.get_source(),
                    }
                )
            context = parent
            if span.is_recording():
                context, traced = trace.set_span_in_context(span, parent), True
            message = kafka.encode_event(event, kafka.ContentMode(sink.content_mode))
            headers = message.headers
            if traced:  # our span, or the producer's context passed on
                trace_headers: dict[str, str] = {}
                tracing.inject(trace_headers, context)
                headers += tuple((k, v.encode()) for k, v in trace_headers.items())
            if not httpserver.answerable(request):
                return web.Response(status=400)  # see the module docstring
            started = time.monotonic()
            admission = self._admissions.get(key)
            if admission is None:
                admission = self._admissions[key] = Admission(self._produce_target)
            token = admission.started(started)
            try:
                async with asyncio.timeout(self._produce_timeout + 5.0):
                    await target.producer.send(
                        sink.topic, message.value, key=message.key, headers=headers
                    )
            except errors.KafkaError as exc:
                result = _result(exc)
                self._metrics.produced(result, time.monotonic() - started)
                span.set_status(trace.StatusCode.ERROR, f"{exc.reason}: {exc}")
                if exc.code in _TOO_LARGE:
                    return self._answer(namespace, 413, f"Kafka refused the record: {exc}\n")
                return self._answer(
                    namespace, 503,
                    f"the event was not stored in Kafka ({exc.reason}): {exc}\n",
                    **self._retry_after,
                )  # fmt: skip
            except TimeoutError:
                self._metrics.produced("timeout", time.monotonic() - started)
                span.set_status(trace.StatusCode.ERROR, "no acknowledgement from Kafka")
                return self._answer(
                    namespace, 503,
                    f"Kafka did not acknowledge the event within {self._produce_timeout:g} s\n",
                    **self._retry_after,
                )  # fmt: skip
            finally:
                admission.finished(token, time.monotonic())
                if not admission.waiting and self._admissions.get(key) is admission:
                    del self._admissions[key]
            self._metrics.produced("stored", time.monotonic() - started, len(message.value or b""))
            return self._answer(namespace, 202)
        finally:
            span.end()
