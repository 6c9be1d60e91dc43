"""One dispatch: an event to one subscriber, its reply onwards, failures to the dead letter sink.

Knative's delivery semantics (`knative/eventing:pkg/kncloudevents/event_dispatcher.go`):

1. POST the event to `subscriberUri` with `Prefer: reply`, retrying per the subscriber's
   DeliverySpec (through the shared `kevents.sender.Sender`: one pooled session, a CLIENT span
   per attempt, Retry-After honoured by default).
2. A 2xx response carrying a CloudEvent (binary or structured) is the reply: it goes to
   `replyUri` (same retry policy); without a reply destination it is dropped, as in Knative.
   A subscription with only a reply sends the event itself to `replyUri`.
3. After the last failed attempt (or a failed reply forwarding, or a reply that claims to be a
   CloudEvent but is not one) the ORIGINAL event goes to the dead letter sink with
   `knativeerrordest`, `knativeerrorcode` and `knativeerrordata`.
4. Without a dead letter sink, or when it fails too, the loss is logged and counted in
   `kevents_events_lost_total`; nothing disappears silently.

A Trigger's subscription (its subscriber URI is the broker filter's, `dispatcher.broker.triggers`)
takes one more step first: the event must match the Trigger's filter, and is then delivered
to the Trigger's subscriber by steps 1-4, its reply (one TTL hop lower, `dispatcher.broker.ttl`)
going back into the broker. No HTTP hop to a filter service, no second delivery path.

All sends run in the trace context of the ingress span, so replies and dead letters stay in
the producer's trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from opentelemetry import context as otel_context
from opentelemetry import trace

from dispatcher import channels, headers, lane
from dispatcher import metrics as dispatcher_metrics
from dispatcher.broker import triggers, ttl
from kevents import cloudevent, delivery, errors, rawevent, sender

logger = logging.getLogger(__name__)


class Courier:
    def __init__(
        self,
        event_sender: sender.EventForwarder,
        metrics: dispatcher_metrics.DispatcherMetrics,
        *,
        trigger_table: Mapping[tuple[str, str], triggers.Trigger] | None = None,
        filter_tracer: trace.Tracer | None = None,
        trigger_sender: sender.EventForwarder | None = None,
        trigger_wait: float = 10.0,
    ) -> None:
        """`trigger_table` is the dispatcher's live (namespace, name) -> Trigger table;
        `trigger_sender` (default: `event_sender`) sends a Trigger's deliveries, replies
        and dead letters, so their spans carry the broker filter's name;
        `trigger_wait` (10 s) how long a delivery waits for a Trigger the table does not
        know yet: its informer may lag the channel's by a moment after the Trigger is made."""
        self._sender = event_sender
        self._trigger_sender = trigger_sender if trigger_sender is not None else event_sender
        self._metrics = metrics
        self._triggers: Mapping[tuple[str, str], triggers.Trigger] = (
            trigger_table if trigger_table is not None else {}
        )
        self._filter_tracer = filter_tracer
        self._trigger_wait = trigger_wait

    def _sender_for(self, target: channels.Target) -> sender.EventForwarder:
        return self._trigger_sender if target.trigger is not None else self._sender

    def wants(self, target: channels.Target, attributes: Mapping[str, object]) -> bool:
        """False only for a known Trigger whose filter does not match (decided at admission,
        so the event takes no room in that Trigger's lane); the delivery decides the rest."""
        key = target.trigger
        found = triggers.servable(self._triggers, key) if key is not None else None
        return found is None or found.filter.matches(attributes)

    async def deliver(self, target: channels.Target, envelope: lane.Envelope) -> bool:
        """Run steps 1-4 for one subscriber; never raises for delivery failures. True when
        the subscriber (and the reply destination) or else the dead letter sink took the
        event, or a Trigger's filter did not match: what a synchronous channel acknowledges."""
        token = otel_context.attach(envelope.context)
        try:
            if target.trigger is not None:
                return await self._through_filter(target, target.trigger, envelope)
            if not target.subscriber_uri:
                return await self._reply(target, envelope, envelope.event)
            return await self._send(target, envelope, target.subscriber_uri, None)
        finally:
            otel_context.detach(token)

    async def _send(
        self,
        target: channels.Target,
        envelope: lane.Envelope,
        url: str,
        trigger: triggers.Trigger | None,
    ) -> bool:
        """Steps 1-3 towards `url`: the subscriber's, or a Trigger's subscriber (which gets
        the event without the broker's internal TTL, as from Knative's filter)."""
        result = await self._sender_for(target).send(
            ttl.without(envelope.event) if trigger is not None else envelope.event,
            url,
            policy=target.policy,
            headers=envelope.headers,
            encoding=target.encoding,
        )
        self._metrics.observe("subscriber", envelope.namespace, result)
        if not result.ok:
            return await self._fail(target, envelope, result, url)
        if not cloudevent.is_cloudevent(result.headers):
            return True  # an acknowledgement without an event: done
        try:
            reply = cloudevent.decode(result.headers, result.body)
        except errors.InvalidEventError as exc:
            logger.warning(
                "Subscriber %s answered event %s with an invalid CloudEvent (%s).",
                sender.safe_url(url), envelope.event.get_id(), exc.reason,
                extra={"event_id": envelope.event.get_id()},
            )  # fmt: skip
            return await self._fail(target, envelope, result, url)
        if trigger is not None:
            onward = ttl.for_reply(envelope.event, reply)
            if onward is None:
                self._metrics.replies_dropped.labels("ttl_exhausted").inc()
                logger.info(
                    "Reply %s of Trigger %s/%s to event %s is dropped: its broker TTL is "
                    "exhausted (a reply loop ends here).",
                    reply.get_id(), trigger.namespace, trigger.name, envelope.event.get_id(),
                    extra={"event_id": envelope.event.get_id(), "namespace": trigger.namespace,
                           "object_name": trigger.name},
                )  # fmt: skip
                return True
            reply = onward
        if target.reply_uri:
            return await self._reply(target, envelope, reply)
        return True

    async def _through_filter(
        self, target: channels.Target, key: triggers.FilterKey, envelope: lane.Envelope
    ) -> bool:
        """A Trigger's subscription: filter, then deliver to the Trigger's subscriber."""
        found = await self._trigger(key)
        if found is None or found.problem:
            self._metrics.filtered.labels("not_servable").inc()
            why = (
                found.problem
                if found is not None
                else "the dispatcher does not know this Trigger (deleted or not yet seen)"
            )
            result = delivery.DeliveryResult(
                status=None, duration=0.0, attempts=1, error=f"Trigger {key.namespace}/"
                f"{key.name}: {why}",
            )  # fmt: skip
            return await self._fail(target, envelope, result, target.subscriber_uri)
        matched = found.filter.matches(envelope.attributes())
        (self._metrics.filtered_matched if matched else self._metrics.filtered_unmatched).inc()
        tracer = self._filter_tracer
        span = (
            tracer.start_as_current_span(
                "broker.filter",
                kind=trace.SpanKind.SERVER,
                attributes={
                    "messaging.system": "knative",
                    "kn.broker.name": found.broker,
                    "kn.broker.namespace": found.namespace,
                    "kn.trigger.name": found.name,
                    "cloudevents.event_id": envelope.event.get_id(),
                    "cloudevents.event_type": envelope.event.get_type(),
                    "kn.filter.matched": matched,
                },
            )
            if tracer is not None
            else contextlib.nullcontext()
        )
        with span:
            if matched:
                return await self._send(target, envelope, found.subscriber_uri, found)
        return True

    async def _trigger(self, key: triggers.FilterKey) -> triggers.Trigger | None:
        """The Trigger of a filter URI, waiting a moment for one the table lacks (or has
        without a resolved subscriber yet); None when it never appears."""
        found = triggers.servable(self._triggers, key)
        if found is not None:
            return found  # the usual case: no clock, no wait
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._trigger_wait
        while True:
            found = self._triggers.get((key.namespace, key.name))
            if found is not None and found.uid != key.uid:
                found = None  # a Trigger made anew under the same name: not this one
            if (found is not None and not found.problem) or loop.time() >= deadline:
                return found
            await asyncio.sleep(0.1)

    async def _reply(
        self,
        target: channels.Target,
        envelope: lane.Envelope,
        reply: cloudevent.CloudEvent | rawevent.RawEvent,
    ) -> bool:
        result = await self._sender_for(target).send(
            reply,
            target.reply_uri,
            policy=target.policy,
            headers=_onward_headers(envelope),
            encoding=target.encoding,
        )
        self._metrics.observe("reply", envelope.namespace, result)
        if not result.ok:
            return await self._fail(target, envelope, result, target.reply_uri)
        return True

    async def _fail(
        self,
        target: channels.Target,
        envelope: lane.Envelope,
        result: delivery.DeliveryResult,
        destination: str,
    ) -> bool:
        """Step 3-4: the original event to the dead letter sink; True when it took it."""
        event = envelope.event
        reason = "retries_exhausted" if result.retryable else "refused"
        what = f"status {result.status}" if result.status is not None else str(result.error)
        if not target.dead_letter_uri:
            logger.error(
                "Event %s could not be delivered to %s (%s after %d attempt(s)) and the "
                "subscription has no dead letter sink: it is lost.",
                event.get_id(), sender.safe_url(destination), what, result.attempts,
                extra={"event_id": event.get_id(), "namespace": envelope.namespace,
                       "status": result.status, "attempt": result.attempts},
            )  # fmt: skip
            self._metrics.lost.labels(reason).inc()
            return False
        original = event.event() if isinstance(event, rawevent.RawEvent) else event
        dead = cloudevent.apply_overrides(
            original, delivery.dead_letter_extensions(result, destination)
        )
        outcome = await self._sender_for(target).send(
            dead,
            target.dead_letter_uri,
            policy=target.policy,
            headers=_onward_headers(envelope),
            encoding=target.encoding,
        )
        self._metrics.observe("dead_letter", envelope.namespace, outcome)
        if outcome.ok:
            logger.info(
                "Event %s went to the dead letter sink after %s from %s.",
                event.get_id(), what, sender.safe_url(destination),
                extra={"event_id": event.get_id(), "namespace": envelope.namespace},
            )  # fmt: skip
            return True
        logger.error(
            "Event %s failed at %s (%s) and at its dead letter sink %s: it is lost.",
            event.get_id(), sender.safe_url(destination), what,
            sender.safe_url(target.dead_letter_uri),
            extra={"event_id": event.get_id(), "namespace": envelope.namespace},
        )  # fmt: skip
        self._metrics.lost.labels("dead_letter_failed").inc()
        return False


def _onward_headers(envelope: lane.Envelope) -> dict[str, str]:
    """Headers for replies and dead letters: pass-through ones, no `Prefer`, `Kn-Namespace`."""
    onward = {k: v for k, v in envelope.headers.items() if k != headers.PREFER_REPLY[0]}
    onward[headers.NAMESPACE_HEADER] = envelope.namespace
    return onward
