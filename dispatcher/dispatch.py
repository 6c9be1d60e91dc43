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

All sends run in the trace context of the ingress span, so replies and dead letters stay in
the producer's trace.
"""

from __future__ import annotations

import logging

from opentelemetry import context as otel_context

from dispatcher import channels, headers, lane
from dispatcher import metrics as dispatcher_metrics
from kevents import cloudevent, delivery, errors, rawevent, sender

logger = logging.getLogger(__name__)


class Courier:
    def __init__(
        self, event_sender: sender.EventForwarder, metrics: dispatcher_metrics.DispatcherMetrics
    ) -> None:
        self._sender = event_sender
        self._metrics = metrics

    async def deliver(self, target: channels.Target, envelope: lane.Envelope) -> None:
        """Run steps 1-4 for one subscriber; never raises for delivery failures."""
        token = otel_context.attach(envelope.context)
        try:
            if not target.subscriber_uri:
                await self._reply(target, envelope, envelope.event)
                return
            result = await self._sender.send(
                envelope.event,
                target.subscriber_uri,
                policy=target.policy,
                headers=envelope.headers,
                encoding=target.encoding,
            )
            self._metrics.observe("subscriber", envelope.namespace, result)
            if not result.ok:
                await self._fail(target, envelope, result, target.subscriber_uri)
                return
            if not cloudevent.is_cloudevent(result.headers):
                return  # an acknowledgement without an event: done
            try:
                reply = cloudevent.decode(result.headers, result.body)
            except errors.InvalidEventError as exc:
                logger.warning(
                    "Subscriber %s answered event %s with an invalid CloudEvent (%s).",
                    sender.safe_url(target.subscriber_uri), envelope.event.get_id(), exc.reason,
                    extra={"event_id": envelope.event.get_id()},
                )  # fmt: skip
                await self._fail(target, envelope, result, target.subscriber_uri)
                return
            if target.reply_uri:
                await self._reply(target, envelope, reply)
        finally:
            otel_context.detach(token)

    async def _reply(
        self,
        target: channels.Target,
        envelope: lane.Envelope,
        reply: cloudevent.CloudEvent | rawevent.RawEvent,
    ) -> None:
        result = await self._sender.send(
            reply,
            target.reply_uri,
            policy=target.policy,
            headers=_onward_headers(envelope),
            encoding=target.encoding,
        )
        self._metrics.observe("reply", envelope.namespace, result)
        if not result.ok:
            await self._fail(target, envelope, result, target.reply_uri)

    async def _fail(
        self,
        target: channels.Target,
        envelope: lane.Envelope,
        result: delivery.DeliveryResult,
        destination: str,
    ) -> None:
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
            return
        original = event.event() if isinstance(event, rawevent.RawEvent) else event
        dead = cloudevent.apply_overrides(
            original, delivery.dead_letter_extensions(result, destination)
        )
        outcome = await self._sender.send(
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
            return
        logger.error(
            "Event %s failed at %s (%s) and at its dead letter sink %s: it is lost.",
            event.get_id(), sender.safe_url(destination), what,
            sender.safe_url(target.dead_letter_uri),
            extra={"event_id": event.get_id(), "namespace": envelope.namespace},
        )  # fmt: skip
        self._metrics.lost.labels("dead_letter_failed").inc()


def _onward_headers(envelope: lane.Envelope) -> dict[str, str]:
    """Headers for replies and dead letters: pass-through ones, no `Prefer`, `Kn-Namespace`."""
    onward = {k: v for k, v in envelope.headers.items() if k != headers.PREFER_REPLY[0]}
    onward[headers.NAMESPACE_HEADER] = envelope.namespace
    return onward
