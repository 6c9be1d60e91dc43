"""Sending CloudEvents over HTTP with retries: the `Sender`.

One `aiohttp.ClientSession` per process (pooled keep-alive connections, a per-host limit),
binary mode by default, trace context (W3C + B3) injected on every attempt, each attempt a
CLIENT span. `send()` never raises for HTTP or network failures: it returns a
`delivery.DeliveryResult`. Time comes from an injected `Clock` so tests assert exact waits.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import random
import ssl
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp
from opentelemetry import trace

from kevents import cloudevent, delivery, errors, metrics, retries, settings, tracing

logger = logging.getLogger(__name__)

DEFAULT_BODY_LIMIT = 1024 * 1024
"""Bytes of a response body kept in the result: room for a reply event, bounded memory."""
LARGE_BODY = 1024 * 1024
"""Bytes from which a request body is streamed instead of handed to aiohttp whole."""
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


def make_ssl_context(ca_certs: str | None) -> ssl.SSLContext:
    """System trust plus the PEM bundle `ca_certs` (K_CA_CERTS)."""
    context = ssl.create_default_context()
    if ca_certs:
        try:
            context.load_verify_locations(cadata=ca_certs)
        except (ssl.SSLError, ValueError) as exc:
            raise errors.ConfigError([f"K_CA_CERTS: not a valid PEM CA bundle ({exc})"]) from exc
    return context


def safe_url(url: str) -> str:
    """`url` without credentials or query string, fit for logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


@dataclasses.dataclass(slots=True)
class _Attempt:
    status: int | None = None
    error: str | None = None
    body: bytes = b""
    truncated: bool = False
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)


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
    ) -> None:
        self.policy = policy if policy is not None else retries.RetryPolicy()
        self.encoding = encoding
        self._headers = dict(headers or {})
        self._overrides = dict(overrides or {})
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._jitter = jitter if jitter is not None else random.Random().random
        self._metrics = sender_metrics
        provider = tracer_provider if tracer_provider is not None else trace.NoOpTracerProvider()
        self._tracer = provider.get_tracer("kevents.sender")
        self._ssl = make_ssl_context(ca_certs)
        self._limit_per_host = limit_per_host
        self._body_limit = body_limit
        self._session: aiohttp.ClientSession | None = None
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

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=0, limit_per_host=self._limit_per_host, ssl=self._ssl
            )
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        return self._session

    @property
    def is_open(self) -> bool:
        return self._session is not None and not self._session.closed

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Sender:
        self._open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def wait_started(self) -> None:
        await self._started.wait()

    async def run(self) -> None:
        """Runner component: keep the session open until cancelled, then close it."""
        self._open()
        self._started.set()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.shield(self.close())

    async def send(
        self,
        event: cloudevent.CloudEvent,
        url: str,
        *,
        policy: retries.RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        encoding: cloudevent.Encoding | None = None,
    ) -> delivery.DeliveryResult:
        """Deliver `event` to `url` with retries; the result tells what happened."""
        policy = policy if policy is not None else self.policy
        event = cloudevent.apply_overrides(event, self._overrides)
        message = cloudevent.encode(event, encoding if encoding is not None else self.encoding)
        request_headers = {**self._headers, **(headers or {}), **message.headers}
        session = self._open()
        scheme = url.partition(":")[0]
        clock = self._clock
        start = clock.monotonic()
        attempt = _Attempt()
        number = 0
        for number in range(1, policy.attempts + 1):
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
            attempt = await self._attempt(
                session, event, url, message.body, request_headers, policy.timeout, number
            )
            if attempt.status is not None and 200 <= attempt.status < 300:
                break
            if not policy.should_retry(attempt.status):
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
        session: aiohttp.ClientSession,
        event: cloudevent.CloudEvent,
        url: str,
        body: bytes,
        base_headers: Mapping[str, str],
        attempt_timeout: float | None,
        number: int,
    ) -> _Attempt:
        outcome = _Attempt()
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
            skip = () if "content-type" in headers else ("Content-Type",)
            try:
                async with session.post(
                    url,
                    # aiohttp warns about (and copies) large bytes bodies; a fresh stream per
                    # attempt sends the same bytes without either.
                    data=io.BytesIO(body) if len(body) > LARGE_BODY else body,
                    headers=headers,
                    skip_auto_headers=skip,
                    timeout=aiohttp.ClientTimeout(total=attempt_timeout),
                ) as response:
                    outcome.status = response.status
                    outcome.headers = response.headers
                    outcome.body, outcome.truncated = await self._read_body(response)
            except TimeoutError:
                outcome.error = f"no response within {attempt_timeout} s"
            except aiohttp.ClientError as exc:
                outcome.error = f"{type(exc).__name__}: {exc}"
            if outcome.status is not None:
                span.set_attribute("http.response.status_code", outcome.status)
                if outcome.error is None and not 200 <= outcome.status < 300:
                    outcome.error = f"status {outcome.status}"
            if outcome.status is None or not 200 <= outcome.status < 300:
                span.set_status(trace.StatusCode.ERROR, outcome.error)
        return outcome

    async def _read_body(self, response: aiohttp.ClientResponse) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        while size < self._body_limit:
            chunk = await response.content.read(self._body_limit - size)
            if not chunk:
                return b"".join(chunks), False
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks), not response.content.at_eof()
