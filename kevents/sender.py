"""Sending CloudEvents over HTTP with retries: the `Sender`.

Pooled keep-alive connections with a per-host limit: `kevents.connections` for plain http
(the lean path), one `aiohttp.ClientSession` per process for https (`kevents.transport`).
Binary mode by default; a received `rawevent.RawEvent` is sent as the bytes it arrived in.
Trace context (W3C + B3) injected on every attempt; each attempt is a CLIENT span when the
tracer can record (a no-op or ALWAYS_OFF tracer adds no span: the caller's context is
injected as it is, and nothing when it has none). `send()` never raises for HTTP or network
failures: it returns a `delivery.DeliveryResult`. Time comes from an injected `Clock` so
tests assert exact waits.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
import random
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import urlsplit

from opentelemetry import trace

from kevents import (
    cloudevent,
    connections,
    delivery,
    metrics,
    rawevent,
    retries,
    settings,
    tracing,
    transport,
)

logger = logging.getLogger(__name__)

DEFAULT_BODY_LIMIT = 1024 * 1024
"""Bytes of a response body kept in the result: room for a reply event, bounded memory."""
DEFAULT_LIMIT_PER_HOST = 64
"""Concurrent connections per sink host: enough for throughput, bounded so a slow sink
cannot exhaust file descriptors (knative/eventing#2238)."""


class Clock(Protocol):
    """Time as the sender sees it; tests inject a fake that records sleeps."""

    def monotonic(self) -> float: ...
    def now(self) -> datetime: ...
    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class EventSender(Protocol):
    """The seam sources and queues depend on; `Sender` is the HTTP implementation."""

    async def send(
        self,
        event: cloudevent.CloudEvent,
        url: str,
        *,
        policy: retries.RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        encoding: cloudevent.Encoding | None = None,
    ) -> delivery.DeliveryResult: ...


class EventForwarder(Protocol):
    """The seam of forwarders (the channel dispatcher): also sends received events as-is."""

    async def send(
        self,
        event: cloudevent.CloudEvent | rawevent.RawEvent,
        url: str,
        *,
        policy: retries.RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        encoding: cloudevent.Encoding | None = None,
    ) -> delivery.DeliveryResult: ...


def safe_url(url: str) -> str:
    """`url` without credentials or query string, fit for logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class Sender:
    def __init__(
        self,
        *,
        policy: retries.RetryPolicy | None = None,
        encoding: cloudevent.Encoding = cloudevent.Encoding.BINARY,
        headers: Mapping[str, str] | None = None,
        overrides: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        jitter: retries.Jitter | None = None,
        sender_metrics: metrics.SenderMetrics | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        ca_certs: str | None = None,
        limit_per_host: int = DEFAULT_LIMIT_PER_HOST,
        body_limit: int = DEFAULT_BODY_LIMIT,
        attempt_timeout: float = transport.DEFAULT_ATTEMPT_TIMEOUT,
        connect_timeout: float = connections.CONNECT_TIMEOUT,
    ) -> None:
        """`attempt_timeout` (seconds) bounds each attempt of a policy without a timeout;
        `connect_timeout` bounds opening a connection (kevents.transport says why 60 and 10)."""
        self.policy = policy if policy is not None else retries.RetryPolicy()
        self.encoding = encoding
        self._headers = dict(headers or {})
        self._overrides = dict(overrides or {})
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._jitter = jitter if jitter is not None else random.Random().random
        self._metrics = sender_metrics
        self._set_tracer(tracer_provider)
        self._transport = transport.Transport(
            ca_certs=ca_certs,
            limit_per_host=limit_per_host,
            body_limit=body_limit,
            attempt_timeout=attempt_timeout,
            connect_timeout=connect_timeout,
        )
        self._started = asyncio.Event()

    @classmethod
    def from_settings(
        cls, adapter: settings.AdapterSettings, *, policy: retries.RetryPolicy, **kwargs: object
    ) -> Sender:
        """A source adapter's sender: K_CE_OVERRIDES, Kn-Namespace, K_SINK_TIMEOUT, K_CA_CERTS."""
        if adapter.sink_timeout is not None:
            policy = dataclasses.replace(policy, timeout=adapter.sink_timeout)
        return cls(
            policy=policy,
            headers={"Kn-Namespace": adapter.namespace},
            overrides=adapter.ce_overrides,
            ca_certs=adapter.ca_certs,
            **kwargs,  # type: ignore[arg-type]
        )

    def traced_by(self, tracer_provider: trace.TracerProvider | None) -> Sender:
        """This sender with its spans from `tracer_provider`: the same session, policy and
        counters, for a second hop of one process that names itself differently in traces
        (the broker filter's deliveries, beside the channel dispatcher's)."""
        view = copy.copy(self)
        view._set_tracer(tracer_provider)
        return view

    def _set_tracer(self, tracer_provider: trace.TracerProvider | None) -> None:
        provider = tracer_provider if tracer_provider is not None else trace.NoOpTracerProvider()
        self._tracer = provider.get_tracer("kevents.sender")
        self._spans = tracing.records(tracer_provider)
        self._inject = tracer_provider is not None

    @property
    def is_open(self) -> bool:
        return self._transport.is_open

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> Sender:
        self._transport.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def wait_started(self) -> None:
        await self._started.wait()

    async def run(self) -> None:
        """Runner component: keep the session open until cancelled, then close it."""
        self._transport.open()
        self._started.set()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.shield(self.close())

    def _message(
        self, event: cloudevent.CloudEvent | rawevent.RawEvent, encoding: cloudevent.Encoding
    ) -> tuple[Mapping[str, str], bytes]:
        """Headers and body of `event` in `encoding`: a received event's own bytes if it can."""
        if isinstance(event, rawevent.RawEvent):
            received = None if self._overrides else event.message(encoding)
            if received is not None:
                return received
            event = event.event()
        message = cloudevent.encode(cloudevent.apply_overrides(event, self._overrides), encoding)
        return message.headers, message.body

    async def send(
        self,
        event: cloudevent.CloudEvent | rawevent.RawEvent,
        url: str,
        *,
        policy: retries.RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        encoding: cloudevent.Encoding | None = None,
    ) -> delivery.DeliveryResult:
        """Deliver `event` to `url` with retries; the result tells what happened."""
        policy = policy if policy is not None else self.policy
        message_headers, body = self._message(
            event, encoding if encoding is not None else self.encoding
        )
        request_headers = {**self._headers, **(headers or {}), **message_headers}
        scheme = url.partition(":")[0]
        clock = self._clock
        start = clock.monotonic()
        attempt = transport.Attempt()
        number = 0
        for number in range(1, policy.max_attempts + 1):
            if number > 1:
                wait = policy.wait_before_retry(
                    number - 2,
                    status=attempt.status,
                    retry_after=attempt.headers.get("Retry-After"),
                    now=clock.now(),
                    jitter=self._jitter,
                )
                if self._metrics is not None:
                    self._metrics.observe_retry(attempt.status, scheme=scheme)
                if wait > 0:
                    await clock.sleep(wait)
            attempt = await self._attempt(event, url, body, request_headers, policy.timeout, number)
            if attempt.status is not None and 200 <= attempt.status < 300:
                break
            if not policy.may_retry(
                number, attempt.status, attempt.headers.get("Retry-After"), clock.now()
            ):
                break
        result = delivery.DeliveryResult(
            status=attempt.status,
            duration=clock.monotonic() - start,
            attempts=number,
            error=attempt.error,
            body=attempt.body,
            body_truncated=attempt.truncated,
            headers=attempt.headers,
        )
        if self._metrics is not None:
            self._metrics.observe(result, scheme=scheme)
        if not result.ok:
            logger.warning(
                "Delivery of event %s to %s failed after %d attempt(s): %s.",
                event.get_id(), safe_url(url), result.attempts,
                f"status {result.status}" if result.status is not None else result.error,
                extra={"event_id": event.get_id(), "attempt": result.attempts,
                       "status": result.status},
            )  # fmt: skip
        return result

    async def _attempt(
        self,
        event: cloudevent.CloudEvent | rawevent.RawEvent,
        url: str,
        body: bytes,
        base_headers: Mapping[str, str],
        attempt_timeout: float | None,
        number: int,
    ) -> transport.Attempt:
        if not self._spans:
            headers = base_headers
            if self._inject and trace.get_current_span().get_span_context().is_valid:
                headers = dict(base_headers)
                tracing.inject(headers)  # the caller's context, when it has one
            return await self._transport.post(url, body, headers, attempt_timeout)
        attributes: dict[str, str | int] = {
            "http.request.method": "POST",
            "url.full": safe_url(url),
            "cloudevents.event_id": event.get_id(),
            "cloudevents.event_type": event.get_type(),
            "cloudevents.event_source": event.get_source(),
        }
        if number > 1:
            attributes["http.request.resend_count"] = number - 1
        with self._tracer.start_as_current_span(
            "POST", kind=trace.SpanKind.CLIENT, attributes=attributes
        ) as span:
            headers = dict(base_headers)
            tracing.inject(headers)
            outcome = await self._transport.post(url, body, headers, attempt_timeout)
            if outcome.status is not None:
                span.set_attribute("http.response.status_code", outcome.status)
            if outcome.status is None or not 200 <= outcome.status < 300:
                span.set_status(trace.StatusCode.ERROR, outcome.error)
        return outcome
