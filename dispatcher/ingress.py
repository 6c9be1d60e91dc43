"""The channel ingress: HTTP in, an accepted event handed to the fan-out, 202 out.

Knative's channel receiver contract (`knative/eventing:pkg/channel/event_receiver.go`):

| request                                   | answer                                         |
|-------------------------------------------|------------------------------------------------|
| OPTIONS                                   | 200, `Allow: POST, OPTIONS`, WebHook-Allowed-*  |
| other non-POST                            | 405 with `Allow`                               |
| no channel named by Host or `/NS/NAME`    | 400                                            |
| unknown channel                           | 404                                            |
| process draining for shutdown             | 503 + Retry-After (retry lands on a replica)   |
| body above the size limit                 | 413                                            |
| body not received within its timeout      | 408, connection closed                         |
| not a valid CloudEvent (binary/structured)| 400 with the reason (bad attribute name, JSON  |
|                                           | nested too deeply, ...)                        |
| client closed (or half-closed mid-body)   | nothing accepted: no answer could reach it     |
| bounded queue or subscriber backlog full  | 429 + Retry-After                              |
| accepted, synchronous channel (default)   | 202 once every subscriber (or its dead letter  |
|                                           | sink) took it; 500 when one did not, 429 when  |
|                                           | a subscriber's lane was full (retry)           |
| accepted, `async-handler: "true"`         | 202 at once (delivered asynchronously)         |

The same class serves the broker ingress (`POST /<namespace>/<broker>`, Knative's MT broker
ingress contract: `/` and unknown brokers 404, wrong segment count 400): its `lookup` finds
the broker's trigger channel, and `prepare` sets the broker TTL (`dispatcher.broker.ttl`), refusing
an event whose TTL is exhausted with 400. Both then hand the event to the same fan-out.

The hot path does a dict lookup for the route, one body read, a validation of the CloudEvent
that keeps its received bytes for forwarding (`kevents.rawevent`: no decode, no re-encode) and
no span when tracing is off; answers are plain text for people reading curl output.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from opentelemetry import context as otel_context
from opentelemetry import trace

from dispatcher import fanout, headers, routing
from dispatcher import metrics as dispatcher_metrics
from kevents import cloudevent, errors, httpserver, rawevent, tracing
from kevents import metrics as kevents_metrics

Lookup = Callable[[str, str], fanout.Route]
"""(Host, path) -> the route of the request; raises `routing.RoutingError` for the answer."""
Prepare = Callable[[rawevent.RawEvent], cloudevent.CloudEvent | rawevent.RawEvent]
"""The accepted event as the channel gets it; raises `errors.InvalidEventError` for a 400."""

_OPTIONS_HEADERS = {
    "Allow": "POST, OPTIONS",
    "WebHook-Allowed-Origin": "*",
    "WebHook-Allowed-Rate": "*",
}
_TRACE_HEADERS = ("traceparent", "X-B3-TraceId")


class Ingress:
    def __init__(
        self,
        channels_fanout: fanout.Fanout,
        metrics: dispatcher_metrics.DispatcherMetrics,
        *,
        max_body_size: int,
        retry_after: int,
        tracer_provider: trace.TracerProvider | None = None,
        lookup: Lookup | None = None,
        prepare: Prepare | None = None,
        span_name: str = "imc.receive",
        answered: Callable[[int], None] | None = None,
        timeouts: httpserver.Timeouts | None = None,
    ) -> None:
        """Defaults make the channel ingress; the broker ingress passes its own `lookup`,
        `prepare`, `span_name` and `answered` (its metric). `timeouts.body` bounds reading
        one body (408); the header and idle timeouts belong to `make_server()`'s server."""
        self._fanout = channels_fanout
        self._metrics = metrics
        self._lookup = lookup if lookup is not None else self.channel_route
        self._prepare = prepare
        self._span_name = span_name
        self._count = answered if answered is not None else metrics.answered
        self._max_body = max_body_size
        self.timeouts = timeouts if timeouts is not None else httpserver.Timeouts()
        self._retry_after = {"Retry-After": str(retry_after)}
        # No provider (tracing off): no ingress span; the producer's context still flows on.
        self._tracer = (
            tracer_provider.get_tracer("kevents.dispatcher")
            if tracer_provider is not None
            else None
        )

    def make_server(
        self, *, name: str, metrics: kevents_metrics.HTTPServerMetrics
    ) -> httpserver.Server:
        """aiohttp's low-level server (no router, middlewares or Application per request),
        hardened against hostile clients (`kevents.httpserver`)."""
        return httpserver.Server(self.handle, name=name, timeouts=self.timeouts, metrics=metrics)

    def channel_route(self, host: str, path: str) -> fanout.Route:
        """The channel named by Host or `/NS/NAME`."""
        key = routing.resolve(host, path)
        route = self._fanout.routes.get(key)
        if route is None:
            # A long-named channel's Service name is shortened (`kevents.names`).
            alias = self._fanout.aliases.get(key)
            route = None if alias is None else self._fanout.routes.get(alias)
            if route is None:
                raise routing.RoutingError(404, f"channel {key[0]}/{key[1]} not found")
        return route

    def _answer(self, status: int, text: str = "", **extra: str) -> web.Response:
        self._count(status)
        if not text and not extra:
            # No body and so no Content-Type, as Knative's 202 (and a third cheaper to make).
            return web.Response(status=status)
        return web.Response(status=status, text=text, headers=extra or None)

    async def handle(self, request: web.BaseRequest) -> web.Response:
        """One request; a bug's 500 is counted with the other answers (the server logs it,
        rate-limited)."""
        try:
            return await self._handle(request)
        except Exception:
            self._count(500)
            raise

    async def _handle(self, request: web.BaseRequest) -> web.Response:
        if request.method != "POST":
            if request.method == "OPTIONS":
                return web.Response(status=200, headers=_OPTIONS_HEADERS)
            return self._answer(405, "only POST is allowed\n", Allow="POST, OPTIONS")
        try:
            route = self._lookup(request.host, request.path)
        except routing.RoutingError as exc:
            return self._answer(exc.status, exc.reason + "\n")
        if self._fanout.draining:
            return self._answer(
                503, "shutting down: retry on another replica\n", **self._retry_after
            )
        request_headers = request.headers
        try:
            body = await httpserver.read_body(
                request, limit=self._max_body, seconds=self.timeouts.body
            )
        except httpserver.BodyTooLargeError:
            return self._too_large()
        except httpserver.BodyTimeoutError:
            answer = self._answer(408, f"the body did not arrive within {self.timeouts.body:g} s\n")
            answer.force_close()  # the rest of a slow body is not waited for
            return answer
        except httpserver.ConnectionGoneError:
            return web.Response(status=400)  # the client left: nobody reads an answer
        event: cloudevent.CloudEvent | rawevent.RawEvent
        try:
            event = rawevent.receive(request_headers, body)
            if self._prepare is not None:
                event = self._prepare(event)
        except errors.InvalidEventError as exc:
            return self._answer(400, f"invalid CloudEvent: {exc.reason}\n")
        if not httpserver.answerable(request):
            # The client shut down before we could answer: accepting now would deliver an
            # event whose producer never learns it, and retries it (a duplicate).
            return web.Response(status=400)
        forwarded = headers.passthrough(request_headers.items())
        forwarded[headers.PREFER_REPLY[0]] = headers.PREFER_REPLY[1]
        # Knative's fan-out and broker filter name the channel's (Trigger's) namespace on
        # every delivery: subscriber, reply and dead letter alike.
        forwarded[headers.NAMESPACE_HEADER] = route.channel.namespace
        parent = (
            tracing.extract(request_headers)
            if any(h in request_headers for h in _TRACE_HEADERS)
            else otel_context.Context()
        )
        tracer = self._tracer
        if tracer is None:
            return await self._submit(route, event, forwarded, parent, len(body))
        span = tracer.start_span(self._span_name, context=parent, kind=trace.SpanKind.SERVER)
        try:
            if span.is_recording():
                span.set_attributes(
                    {
                        "messaging.system": "knative",
                        "messaging.destination.name": route.channel.namespace
                        + "/"
                        + route.channel.name,
                        "cloudevents.event_id": event.get_id(),
                        "cloudevents.event_type": event.get_type(),
                        "cloudevents.event_source": event.get_source(),
                    }
                )
            answer = await self._submit(
                route, event, forwarded, trace.set_span_in_context(span, parent), len(body)
            )
            if answer.status != 202:
                span.set_status(trace.StatusCode.ERROR, f"answered {answer.status}")
            return answer
        finally:
            span.end()

    async def _submit(
        self,
        route: fanout.Route,
        event: cloudevent.CloudEvent | rawevent.RawEvent,
        forwarded: dict[str, str],
        context: otel_context.Context,
        size: int,
    ) -> web.Response:
        """Admit the event; for a synchronous channel, answer once every subscriber is done."""
        try:
            envelope = self._fanout.submit(route, event, forwarded, context, size)
        except errors.QueueFullError as exc:
            return self._answer(
                429, f"channel is at capacity ({exc}); retry later\n", **self._retry_after
            )
        except errors.QueueClosedError:
            return self._answer(
                503, "shutting down: retry on another replica\n", **self._retry_after
            )
        if envelope is None or envelope.done is None:
            return self._answer(202)
        # Awaited directly (no shield): only this handler waits for it, and the fan-out never
        # resolves a future that is already done, so a cancelled handler harms no delivery.
        if await envelope.done:
            return self._answer(202)
        total = envelope.wanted
        if envelope.failed == envelope.skipped:
            return self._answer(
                429,
                f"{envelope.skipped} of {total} subscriber(s) are at capacity and did not get "
                "the event; retry later\n",
                **self._retry_after,
            )
        return self._answer(
            500,
            f"the event could not be delivered to {envelope.failed} of {total} subscriber(s) "
            "(nor to a dead letter sink); retry\n",
        )

    def _too_large(self) -> web.Response:
        return self._answer(413, f"event body is larger than {self._max_body} bytes\n")
