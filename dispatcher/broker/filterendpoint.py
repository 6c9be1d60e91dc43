"""The broker filter's HTTP endpoint: `POST /triggers/<ns>/<trigger>/<uid>`, Knative's contract.

Triggers of brokers this dispatcher serves are filtered in-process (`dispatch.Courier`) and
never reach this endpoint. It is there for a broker channel delivered by someone else (any
channel implementation that POSTs to the subscriber URI the controller wrote), and answers
as Knative's filter handler (`pkg/broker/filter/filter_handler.go`) does:

| request                                 | answer                                        |
|-----------------------------------------|-----------------------------------------------|
| not `/triggers/<ns>/<name>/<uid>`       | 400                                           |
| unknown Trigger, or another uid         | 404 (a channel retries it)                    |
| Trigger not servable (no subscriber)    | 503 + Retry-After                             |
| not a valid CloudEvent / too large      | 400 / 413                                     |
| the filter does not match               | 202, nothing sent                             |
| subscriber's 2xx carries a CloudEvent   | 200 with the reply (binary), TTL one lower;   |
|                                         | 202 when no TTL is left                       |
| subscriber's 2xx without an event       | 202                                           |
| subscriber failed                       | its status (502 without a response) and JSON  |
|                                         | `{"errdestination", "errresponsebody"}`       |

One attempt per request: retries and dead letters are the calling channel's, per the
subscription's delivery (which the controller set from the Trigger's).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

import orjson
from aiohttp import web
from opentelemetry import context as otel_context

from dispatcher import headers
from dispatcher import metrics as dispatcher_metrics
from dispatcher.broker import triggers, ttl
from kevents import cloudevent, errors, rawevent, retries, sender, tracing

ONE_ATTEMPT = retries.RetryPolicy()


class FilterEndpoint:
    def __init__(
        self,
        event_sender: sender.EventForwarder,
        trigger_table: Mapping[tuple[str, str], triggers.Trigger],
        metrics: dispatcher_metrics.DispatcherMetrics,
        *,
        max_body_size: int,
        retry_after: int,
    ) -> None:
        self._sender = event_sender
        self._triggers = trigger_table
        self._metrics = metrics
        self._max_body = max_body_size
        self._retry_after = {"Retry-After": str(retry_after)}

    async def handle(self, request: web.BaseRequest) -> web.Response:
        if request.method != "POST":
            return web.Response(
                status=405, text="only POST is allowed\n", headers={"Allow": "POST"}
            )
        key = triggers.parse_filter_path(request.path)
        if key is None:
            return web.Response(status=400, text="expected /triggers/<ns>/<trigger>/<uid>\n")
        found = self._triggers.get((key.namespace, key.name))
        if found is None or found.uid != key.uid:
            return web.Response(status=404, text=f"trigger {key.namespace}/{key.name} not found\n")
        if found.problem:
            self._metrics.filtered.labels("not_servable").inc()
            return web.Response(
                status=503,
                text=f"trigger not servable: {found.problem}\n",
                headers=self._retry_after,
            )
        body = await request.content.read(self._max_body + 1)
        if len(body) > self._max_body:
            return web.Response(status=413, text="event body is too large\n")
        try:
            event = rawevent.receive(request.headers, body)
        except errors.InvalidEventError as exc:
            return web.Response(status=400, text=f"invalid CloudEvent: {exc.reason}\n")
        if not found.filter.matches(event.attributes()):
            self._metrics.filtered_unmatched.inc()
            return web.Response(status=202)
        self._metrics.filtered_matched.inc()
        forwarded = headers.passthrough(request.headers.items())
        forwarded[headers.PREFER_REPLY[0]] = headers.PREFER_REPLY[1]
        token = otel_context.attach(tracing.extract(request.headers))
        try:
            result = await self._sender.send(
                ttl.without(event), found.subscriber_uri, policy=ONE_ATTEMPT, headers=forwarded
            )
        finally:
            otel_context.detach(token)
        self._metrics.observe("subscriber", key.namespace, result)
        if not result.ok:
            info = {
                "errdestination": found.subscriber_uri,
                "errresponsebody": base64.standard_b64encode(result.body).decode("ascii"),
            }
            return web.Response(
                status=result.status if result.status is not None else 502,
                body=orjson.dumps(info),
                content_type="application/json",
            )
        if not cloudevent.is_cloudevent(result.headers):
            return web.Response(status=202)
        try:
            reply = cloudevent.decode(result.headers, result.body)
        except errors.InvalidEventError as exc:
            return web.Response(
                status=502, text=f"subscriber replied with an invalid event: {exc}\n"
            )
        onward = ttl.for_reply(event, reply)
        if onward is None:
            self._metrics.replies_dropped.labels("ttl_exhausted").inc()
            return web.Response(status=202)
        message = cloudevent.encode(onward)
        return web.Response(status=200, body=message.body, headers=dict(message.headers))
