"""The multi-tenant broker ingress: `POST /<namespace>/<broker>` into the broker's channel.

A Broker (class MTChannelBasedBroker) is served through its trigger channel
`<broker>-kne-trigger`, which the controller labels with the broker's name; the fan-out
keeps a (namespace, broker) -> route table from those labels (`fanout.Fanout.brokers`), so
the ingress needs no informer of its own and hands events to the channel in-process.
Everything after the lookup (size limit, validation, 202/429/503, tracing) is the channel
ingress's (`dispatcher.ingress.Ingress`); this module adds Knative's broker rules:

| request                          | answer |
|----------------------------------|--------|
| `/`                              | 404    |
| not exactly `/<ns>/<broker>`     | 400    |
| unknown broker                   | 404    |
| `knativebrokerttl` <= 0 or not an integer | 400 |
| accepted                         | 202, the TTL set to the maximum when absent |

The same port serves the filter's HTTP endpoint (`/triggers/...`,
`dispatcher.broker.filterendpoint`): a broker path has two segments, a filter path four, so
one listener tells them apart.
"""

from __future__ import annotations

from aiohttp import web

from dispatcher import fanout, ingress, routing
from dispatcher.broker import filterendpoint, triggers, ttl
from kevents import cloudevent, errors, httpserver, rawevent
from kevents import metrics as kevents_metrics


class BrokerIngress:
    def __init__(self, broker_fanout: fanout.Fanout, *, max_ttl: int = ttl.DEFAULT_MAX) -> None:
        self._fanout = broker_fanout
        self._max_ttl = max_ttl

    def lookup(self, host: str, path: str) -> fanout.Route:
        """The route of the broker's trigger channel."""
        if path in ("", "/"):
            raise routing.RoutingError(404, "POST events to /<namespace>/<broker>")
        try:
            key = routing.from_path(path)
        except routing.RoutingError:
            raise routing.RoutingError(
                400, f"path {path!r} names no broker: use /<ns>/<broker>"
            ) from None
        route = self._fanout.brokers.get(key)
        if route is None:
            raise routing.RoutingError(404, f"broker {key[0]}/{key[1]} not found")
        return route

    def prepare(self, event: rawevent.RawEvent) -> cloudevent.CloudEvent | rawevent.RawEvent:
        """The event with its TTL; an exhausted TTL is a 400."""
        try:
            admitted, _ = ttl.admit(event, self._max_ttl)
        except ttl.TTLError as exc:
            raise errors.InvalidEventError(str(exc)) from exc
        return admitted


def make_server(
    broker_ingress: ingress.Ingress,
    filter_endpoint: filterendpoint.FilterEndpoint,
    *,
    metrics: kevents_metrics.HTTPServerMetrics,
) -> httpserver.Server:
    """One low-level server for the broker ingress and the filter endpoint, hardened as the
    channel ingress's (`kevents.httpserver`)."""
    prefix = "/" + triggers.FILTER_PATH + "/"

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        if request.path.startswith(prefix):
            return await filter_endpoint.handle(request)
        return await broker_ingress.handle(request)

    return httpserver.Server(
        handle, name="broker_ingress", timeouts=broker_ingress.timeouts, metrics=metrics
    )
