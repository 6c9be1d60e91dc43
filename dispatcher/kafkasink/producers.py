"""The KafkaSinks the ingress serves and the Kafka producers behind them.

`Table.update/remove` follow the informer; `Table.target(key)` gives what one request needs:
the sink, and a started `kevents.kafka.Producer` for its bootstrap servers and credentials.

- One producer per distinct client configuration (bootstrap servers + credentials), shared
  by every sink with that configuration: a producer holds connections and a thread, so a
  thousand sinks on one cluster cost one producer, not a thousand. A producer no sink uses
  any more is flushed and closed.
- Credentials come from the Secret the sink names, read with `get` (the ingress may not
  list or watch Secrets): cached, read again after `secret_recheck` seconds while the sink
  is used, and at once when the KafkaSink changes. A Secret that cannot be read or parsed
  makes its sink unavailable (`SinkUnavailableError`, 503) with the reason, never a value;
  that answer is cached for `FAILURE_CACHE` seconds so a misconfigured sink under traffic
  does not turn every request into an apiserver GET.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from dispatcher.kafkasink import metrics as sink_metrics
from dispatcher.kafkasink import sinks
from kevents import errors, kafka, kubeapi

logger = logging.getLogger(__name__)

SECRETS = kubeapi.Resource("", "v1", "secrets")
FAILURE_CACHE = 5.0
"""Seconds a Secret that could not be read or parsed is not asked for again."""

CLOSE_GRACE = 2.0
"""Seconds a closing producer may flush records still queued before they are purged."""

Fingerprint = tuple[tuple[str, str], ...]


class SinkUnavailableError(Exception):
    """The sink cannot produce now (credentials missing or invalid): answer 503."""


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    sink: sinks.Sink
    producer: kafka.Producer


@dataclasses.dataclass(slots=True)
class _Credentials:
    auth: kafka.KafkaAuth | None
    problem: str | None
    read_at: float


class Table:
    def __init__(
        self,
        api: kubeapi.KubeApi,
        metrics: sink_metrics.KafkaSinkMetrics,
        *,
        produce_timeout: float,
        secret_recheck: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._metrics = metrics
        self._produce_timeout = produce_timeout
        self._recheck = secret_recheck
        self._clock = clock
        self.sinks: dict[sinks.Key, sinks.Sink] = {}
        self._secrets: dict[sinks.Key, _Credentials] = {}
        self._reading: dict[sinks.Key, asyncio.Lock] = {}
        self._producers: dict[Fingerprint, kafka.Producer] = {}
        self._uses: dict[sinks.Key, Fingerprint] = {}
        self._used_with: dict[sinks.Key, tuple[sinks.Sink, kafka.KafkaAuth | None]] = {}
        """The sink and credentials each `_uses` fingerprint was computed from."""
        self._retired: list[kafka.Producer] = []
        self._wake = asyncio.Event()

    def update(self, sink: sinks.Sink) -> None:
        old = self.sinks.get(sink.key)
        self.sinks[sink.key] = sink
        if old is not None and old != sink:
            self._forget(sink.key, old)
        self._metrics.sinks.set(len(self.sinks))

    def remove(self, key: sinks.Key) -> None:
        old = self.sinks.pop(key, None)
        if old is not None:
            self._forget(key, old)
        self._metrics.sinks.set(len(self.sinks))

    def _forget(self, key: sinks.Key, old: sinks.Sink) -> None:
        if old.secret_key is not None:
            self._secrets.pop(old.secret_key, None)
        self._uses.pop(key, None)
        self._used_with.pop(key, None)
        self._prune()

    def _prune(self) -> None:
        """Retire producers no sink uses (closed by `close_retired`)."""
        used = set(self._uses.values())
        for fingerprint in [f for f in self._producers if f not in used]:
            self._retired.append(self._producers.pop(fingerprint))
            self._wake.set()
        self._metrics.producers.set(len(self._producers))

    async def close_retired(self) -> None:
        """Close retired producers. What is still queued in one belongs to requests already
        answered (the ingress drains before the table stops; a send that failed or timed out
        was answered 503), so `CLOSE_GRACE` bounds the wait instead of the produce timeout."""
        while self._retired:
            producer = self._retired.pop()
            await producer.close(grace=CLOSE_GRACE)

    async def target(self, key: sinks.Key) -> Target | None:
        """The sink and its producer; None for an unknown sink; raises
        `SinkUnavailableError` when its credentials cannot be had."""
        sink = self.sinks.get(key)
        if sink is None:
            return None
        auth = await self._auth(sink)
        if self.sinks.get(key) is not sink:  # changed while the Secret was read
            return await self.target(key)
        fingerprint = self._uses.get(key)
        producer = self._producers.get(fingerprint) if fingerprint is not None else None
        if producer is not None and self._used_with.get(key) == (sink, auth):
            return Target(sink, producer)  # the hot path: nothing changed since last time
        try:
            # A record never creates its topic (the controller creates it with the sink's
            # partitions, or the topic must exist): a missing topic is a 503, not a topic
            # made with the broker's defaults.
            config = kafka.client_config(
                list(sink.bootstrap_servers), auth, allow_auto_create_topics=False
            )
        except errors.ConfigError as exc:
            raise SinkUnavailableError("; ".join(exc.problems)) from exc
        fingerprint = tuple(sorted((k, str(v)) for k, v in config.items()))
        producer = self._producers.get(fingerprint)
        if producer is None:
            producer = kafka.Producer(config, delivery_timeout=self._produce_timeout)
            producer.start()
            self._producers[fingerprint] = producer
            logger.info(
                "Opened a Kafka producer for %s (KafkaSink %s/%s).",
                ",".join(sink.bootstrap_servers), sink.namespace, sink.name,
                extra={"namespace": sink.namespace, "object_name": sink.name},
            )  # fmt: skip
        previous = self._uses.get(key)
        self._uses[key] = fingerprint
        self._used_with[key] = (sink, auth)
        if previous is not None and previous != fingerprint:
            self._prune()
        self._metrics.producers.set(len(self._producers))
        return Target(sink, producer)

    async def auth(self, sink: sinks.Sink) -> kafka.KafkaAuth | None:
        """The credentials of `sink` (cached as for its producer); raises
        `SinkUnavailableError` when they cannot be had (consumers of the same topic)."""
        return await self._auth(sink)

    async def _auth(self, sink: sinks.Sink) -> kafka.KafkaAuth | None:
        secret_key = sink.secret_key
        if secret_key is None:
            return None
        cached = self._secrets.get(secret_key)
        now = self._clock()
        if cached is not None:
            age = now - cached.read_at
            if cached.problem is None and age < self._recheck:
                return cached.auth
            if cached.problem is not None and age < FAILURE_CACHE:
                raise SinkUnavailableError(cached.problem)
        lock = self._reading.setdefault(secret_key, asyncio.Lock())
        async with lock:  # one GET for a burst of requests, not one each
            current = self._secrets.get(secret_key)
            if current is not None and current is not cached:
                found = current  # read by another request while this one waited
            else:
                found = await self._read_secret(sink)
                self._secrets[secret_key] = found
        if not lock.locked():
            self._reading.pop(secret_key, None)
        if found.problem is not None:
            raise SinkUnavailableError(found.problem)
        return found.auth

    async def _read_secret(self, sink: sinks.Sink) -> _Credentials:
        where = f'Secret "{sink.secret}" of KafkaSink {sink.namespace}/{sink.name}'
        now = self._clock()
        namespace = sink.secret_namespace or sink.namespace
        try:
            secret: dict[str, Any] = await self._api.get(SECRETS, namespace, str(sink.secret))
        except kubeapi.NotFound:
            return _Credentials(None, f"{where} not found", now)
        except kubeapi.ApiError as exc:
            return _Credentials(None, f"{where} cannot be read: {exc}", now)
        try:
            return _Credentials(kafka.KafkaAuth.from_secret(secret), None, now)
        except errors.ConfigError as exc:
            return _Credentials(None, f"{where}: {'; '.join(exc.problems)}", now)

    async def run(self) -> None:
        """Close retired producers as they come; all of them when stopped."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                await self.close_retired()
        finally:
            await asyncio.shield(self.close())

    async def close(self) -> None:
        self._retired.extend(self._producers.values())
        self._producers.clear()
        self._uses.clear()
        self._used_with.clear()
        await self.close_retired()
        self._metrics.producers.set(0)
