"""The one Kafka client layer: confluent-kafka (librdkafka) behind a small asyncio API.

Every Kafka user in kevents (KafkaSink ingress, KafkaSource adapter, tests, benchmarks) goes
through this module; nobody builds a client config or a CloudEvents Kafka message elsewhere.
Why confluent-kafka and not aiokafka: `bench/kafka.py` measures both (README, "Kafka").

Credentials
    `KafkaAuth`                   protocol, SASL mechanism, user/password, PEM certificates
    `KafkaAuth.from_secret(obj)`  from a Secret object (`data` base64, Knative's keys:
                                  `protocol` PLAINTEXT|SASL_PLAINTEXT|SSL|SASL_SSL,
                                  `sasl.mechanism` PLAIN|SCRAM-SHA-256|SCRAM-SHA-512 (default
                                  PLAIN), `user`, `password`, `ca.crt`, `user.crt`, `user.key`,
                                  `user.skip`); `KafkaAuth.from_data(mapping)` from decoded data
    `KafkaAuth.from_net(net, values)`  from a KafkaSource `spec.net` and the secret values it
                                  references (`net_secret_refs(net)` lists them)
    Bad input raises `errors.ConfigError` whose problems name each key, never a value.
    `parse_bootstrap(servers)`    "a:9092,b:9092" or a list of such -> ["a:9092", "b:9092"]
    `client_config(servers, auth=None, **overrides)`  librdkafka config dict

Errors (kevents.errors): `KafkaAuthenticationError`, `KafkaUnreachableError`,
`KafkaTopicError` (all `KafkaError`: `.reason` for a condition, `.code`, the broker's message).
`classify(error)` turns a confluent-kafka error into one of them.

Admin (each runs the blocking call in a thread; `request_timeout` in seconds)
    `await check(config, topic=None)`               metadata round trip (the topic must exist);
                                                    raises the classified error
    `await ensure_topic(config, topic, partitions=, replication_factor=)`  True when created
    `await delete_topic(config, topic)`             True when deleted, False when it was missing
    `await init_offsets(config, group, topics, initial_offset)`  commit start offsets for the
                                                    partitions a group has none for (KafkaSource)

Producing (`acks=all`, idempotent; one background poll thread per producer)
    `async with Producer(config, delivery_timeout=30.0) as producer:`
        `await producer.send(topic, value, key=None, headers=None)` -> `Delivered`
        (resolves once every in-sync replica has the record; raises a `KafkaError`;
        refused credentials fail it within a reconnect, not after `delivery_timeout`)
        `await producer.send_message(topic, encode_event(event))`
    `producer.problem`: the latest client error since the last delivery (or None)

Consuming (explicit offsets; blocking calls on one thread per consumer)
    `async with Consumer(config, group_id=, topics=, initial_offset="earliest") as consumer:`
        `await consumer.poll(max_records=500, wait=1.0)` -> list[`Record`]
        `await consumer.commit({(topic, partition): next_offset})`  synchronous commit
        `consumer.assignment()`, `consumer.problem`, `pause`/`resume`, `high_watermark`;
        optional `on_assign`/`on_revoke` rebalance callbacks (the KafkaSource adapter)

CloudEvents Kafka protocol binding (the `cloudevents.core.bindings.kafka` SDK module, with
kevents.cloudevent's data format, so bytes survive the trip):
    `encode_event(event, ContentMode.BINARY | STRUCTURED)` -> `Message` (`ce_` headers +
        `content-type`, or `application/cloudevents+json`); `partitionkey` becomes the key
    `is_cloudevent(headers)`; `decode_record(record, key_as_partitionkey=True)` -> CloudEvent
        or None for a plain record; a broken CloudEvent raises `errors.InvalidEventError`
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import enum
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import confluent_kafka as ck
import confluent_kafka.admin as ck_admin
from cloudevents.core import exceptions as ce_exceptions
from cloudevents.core.bindings import kafka as ce_kafka
from confluent_kafka import cimpl as ck_cimpl

from kevents import cloudevent, errors

logger = logging.getLogger(__name__)
_LIBRDKAFKA_LOG = logging.getLogger("kevents.kafka.librdkafka")

STRUCTURED_CONTENT_TYPE = cloudevent.STRUCTURED_CONTENT_TYPE
Headers = tuple[tuple[str, bytes], ...]


# ---------------------------------------------------------------------------- credentials


class Protocol(enum.StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SSL = "SSL"
    SASL_SSL = "SASL_SSL"


class Mechanism(enum.StrEnum):
    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


@dataclass(frozen=True)
class KafkaAuth:
    """How to authenticate to the brokers. Secrets are kept out of `repr`."""

    protocol: Protocol = Protocol.PLAINTEXT
    mechanism: Mechanism | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_pem: str | None = field(default=None, repr=False)
    cert_pem: str | None = field(default=None, repr=False)
    key_pem: str | None = field(default=None, repr=False)

    @property
    def sasl(self) -> bool:
        return self.protocol in (Protocol.SASL_PLAINTEXT, Protocol.SASL_SSL)

    @property
    def tls(self) -> bool:
        return self.protocol in (Protocol.SSL, Protocol.SASL_SSL)

    @classmethod
    def from_secret(cls, secret: Mapping[str, Any]) -> KafkaAuth:
        """From a Secret object as the API returns it (`data` values base64)."""
        problems: list[str] = []
        decoded: dict[str, bytes] = {}
        raw = secret.get("data") or {}
        for key, value in raw.items():
            try:
                decoded[str(key)] = base64.b64decode(str(value), validate=True)
            except (binascii.Error, ValueError):
                problems.append(f"secret key {key!r}: not valid base64")
        if problems:
            raise errors.ConfigError(problems)
        return cls.from_data(decoded)

    @classmethod
    def from_data(cls, data: Mapping[str, str | bytes]) -> KafkaAuth:
        """From decoded Secret data with Knative's keys; every problem names its key."""
        problems: list[str] = []
        text: dict[str, str] = {}
        for key, value in data.items():
            try:
                text[key] = value.decode() if isinstance(value, bytes) else value
            except UnicodeDecodeError:
                problems.append(f"secret key {key!r}: not UTF-8 text")
        protocol_text = text.get("protocol", "").strip()
        protocol: Protocol | None = None
        if not protocol_text:
            problems.append(
                f"secret key 'protocol' is required (one of {', '.join(p.value for p in Protocol)})"
            )
        else:
            try:
                protocol = Protocol(protocol_text.upper())
            except ValueError:
                problems.append(
                    "secret key 'protocol': unsupported value "
                    f"(one of {', '.join(p.value for p in Protocol)})"
                )
        mechanism: Mechanism | None = None
        user = password = None
        if protocol in (Protocol.SASL_PLAINTEXT, Protocol.SASL_SSL):
            mech_text = text.get("sasl.mechanism", "").strip() or Mechanism.PLAIN.value
            try:
                mechanism = Mechanism(mech_text.upper())
            except ValueError:
                problems.append(
                    "secret key 'sasl.mechanism': unsupported value "
                    f"(one of {', '.join(m.value for m in Mechanism)})"
                )
            user, password = text.get("user"), text.get("password")
            for name, given in (("user", user), ("password", password)):
                if not given:
                    problems.append(f"secret key {name!r} is required for protocol {protocol}")
        ca = cert = key_pem = None
        if protocol in (Protocol.SSL, Protocol.SASL_SSL):
            ca, cert, key_pem = text.get("ca.crt"), text.get("user.crt"), text.get("user.key")
            if text.get("user.skip", "").strip().lower() == "true":
                cert = key_pem = None
            elif bool(cert) != bool(key_pem):
                missing = "user.key" if cert else "user.crt"
                problems.append(f"secret key {missing!r} is required with the other one")
            for name, pem in (("ca.crt", ca), ("user.crt", cert), ("user.key", key_pem)):
                if pem and "-----BEGIN" not in pem:
                    problems.append(f"secret key {name!r}: not PEM (no '-----BEGIN' line)")
        if problems or protocol is None:
            raise errors.ConfigError(problems)
        return cls(protocol, mechanism, user, password, ca or None, cert or None, key_pem or None)

    @classmethod
    def from_net(cls, net: Mapping[str, Any], values: Mapping[tuple[str, str], bytes]) -> KafkaAuth:
        """From a KafkaSource's `spec.net` (sasl/tls with secretKeyRefs), given the values of
        the references `net_secret_refs(net)` lists, keyed by (secret name, key)."""
        data: dict[str, str | bytes] = {}
        problems: list[str] = []
        for path, (name, key) in _net_refs(net).items():
            value = values.get((name, key))
            if value is None:
                problems.append(f"spec.net.{path}: key {key!r} of secret {name!r} not found")
            else:
                data[path] = value
        if problems:
            raise errors.ConfigError(problems)
        protocol = net_protocol(net)
        mapped: dict[str, str | bytes] = {"protocol": protocol.value}
        names = NET_KEYS
        for path, found in data.items():
            mapped[names[path]] = found
        try:
            return cls.from_data(mapped)
        except errors.ConfigError as err:
            reverse = {v: k for k, v in names.items()}
            renamed = [_rename_keys(p, reverse) for p in err.problems]
            raise errors.ConfigError(renamed) from None


NET_KEYS = {
    "sasl.user": "user",
    "sasl.password": "password",
    "sasl.type": "sasl.mechanism",
    "tls.caCert": "ca.crt",
    "tls.cert": "user.crt",
    "tls.key": "user.key",
}
"""A KafkaSource `spec.net` path -> the key of Knative's Kafka Secret holding that value."""


def net_protocol(net: Mapping[str, Any]) -> Protocol:
    """The security protocol a KafkaSource `spec.net` asks for (SASL and TLS enables)."""
    sasl_on = bool((net.get("sasl") or {}).get("enable"))
    tls_on = bool((net.get("tls") or {}).get("enable"))
    if sasl_on:
        return Protocol.SASL_SSL if tls_on else Protocol.SASL_PLAINTEXT
    return Protocol.SSL if tls_on else Protocol.PLAINTEXT


def _rename_keys(problem: str, reverse: Mapping[str, str]) -> str:
    for key, path in reverse.items():
        problem = problem.replace(f"secret key {key!r}", f"spec.net.{path}")
    return problem


def _net_refs(net: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    refs: dict[str, tuple[str, str]] = {}
    for section, fields in (
        ("sasl", ("user", "password", "type")),
        ("tls", ("caCert", "cert", "key")),
    ):
        part = net.get(section) or {}
        if not part.get("enable"):
            continue
        for name in fields:
            ref = ((part.get(name) or {}).get("secretKeyRef")) or {}
            if ref.get("name") and ref.get("key"):
                refs[f"{section}.{name}"] = (str(ref["name"]), str(ref["key"]))
    return refs


def net_refs(net: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """The (secret name, key) an enabled KafkaSource `spec.net` refers to, by path
    (`sasl.user`, `sasl.password`, `sasl.type`, `tls.caCert`, `tls.cert`, `tls.key`)."""
    return _net_refs(net)


def net_secret_refs(net: Mapping[str, Any]) -> set[tuple[str, str]]:
    """The (secret name, key) pairs an enabled KafkaSource `spec.net` refers to."""
    return set(_net_refs(net).values())


def parse_bootstrap(servers: str | Sequence[str]) -> list[str]:
    """Bootstrap servers as a list of host:port; raises ConfigError naming a bad entry."""
    items = [servers] if isinstance(servers, str) else list(servers)
    out: list[str] = []
    problems: list[str] = []
    for item in items:
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            host, sep, port = part.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                problems.append(f"bootstrap server {part!r}: expected host:port")
            else:
                out.append(part)
    if not out and not problems:
        problems.append("bootstrapServers: at least one host:port is required")
    if problems:
        raise errors.ConfigError(problems)
    return out


def client_config(
    servers: str | Sequence[str], auth: KafkaAuth | None = None, **overrides: Any
) -> dict[str, Any]:
    """The librdkafka configuration for `servers` (+ `auth`); keyword overrides use `_` for
    `.` (`client_id="x"` -> `client.id`)."""
    config: dict[str, Any] = {"bootstrap.servers": ",".join(parse_bootstrap(servers))}
    auth = auth or KafkaAuth()
    config["security.protocol"] = auth.protocol.value
    if auth.sasl:
        config["sasl.mechanism"] = (auth.mechanism or Mechanism.PLAIN).value
        config["sasl.username"] = auth.user or ""
        config["sasl.password"] = auth.password or ""
    if auth.tls:
        if auth.ca_pem:
            config["ssl.ca.pem"] = auth.ca_pem
        if auth.cert_pem and auth.key_pem:
            config["ssl.certificate.pem"] = auth.cert_pem
            config["ssl.key.pem"] = auth.key_pem
    for key, value in overrides.items():
        config[key.replace("_", ".")] = value
    return config


# ---------------------------------------------------------------------------- errors

_AUTHENTICATION = {
    ck.KafkaError._AUTHENTICATION,
    ck.KafkaError.SASL_AUTHENTICATION_FAILED,
    ck.KafkaError.UNSUPPORTED_SASL_MECHANISM,
    ck.KafkaError.ILLEGAL_SASL_STATE,
    ck.KafkaError._SSL,
}
_UNREACHABLE = {
    ck.KafkaError._TRANSPORT,
    ck.KafkaError._ALL_BROKERS_DOWN,
    ck.KafkaError._RESOLVE,
    ck.KafkaError._TIMED_OUT,
    ck.KafkaError._MSG_TIMED_OUT,
    ck.KafkaError.NETWORK_EXCEPTION,
    ck.KafkaError.REQUEST_TIMED_OUT,
    ck.KafkaError.LEADER_NOT_AVAILABLE,
    ck.KafkaError.BROKER_NOT_AVAILABLE,
    ck.KafkaError.COORDINATOR_NOT_AVAILABLE,
    ck.KafkaError.NOT_ENOUGH_REPLICAS,
}
_TOPIC = {
    ck.KafkaError.UNKNOWN_TOPIC_OR_PART,
    ck.KafkaError._UNKNOWN_TOPIC,
    ck.KafkaError._UNKNOWN_PARTITION,
    ck.KafkaError.TOPIC_AUTHORIZATION_FAILED,
    ck.KafkaError.GROUP_AUTHORIZATION_FAILED,
    ck.KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    ck.KafkaError.TOPIC_EXCEPTION,
    ck.KafkaError.INVALID_PARTITIONS,
    ck.KafkaError.INVALID_REPLICATION_FACTOR,
    ck.KafkaError.POLICY_VIOLATION,
}


def classify(error: ck.KafkaError | ck.KafkaException | BaseException) -> errors.KafkaError:
    """The kevents error for a confluent-kafka error (message: the broker's/client's words)."""
    if isinstance(error, errors.KafkaError):
        return error
    if isinstance(error, ck.KafkaException) and error.args:
        inner = error.args[0]
        if isinstance(inner, ck.KafkaError):
            error = inner
    if not isinstance(error, ck.KafkaError):
        return errors.KafkaError(str(error))
    code = error.code()
    kind: type[errors.KafkaError] = errors.KafkaError
    if code in _AUTHENTICATION:
        kind = errors.KafkaAuthenticationError
    elif code in _UNREACHABLE:
        kind = errors.KafkaUnreachableError
    elif code in _TOPIC:
        kind = errors.KafkaTopicError
    return kind(error.str(), code=error.name(), retryable=error.retriable())


_PRECEDENCE = (
    errors.KafkaAuthenticationError,
    errors.KafkaTopicError,
    errors.KafkaUnreachableError,
)


class _Latch:
    """The client's latest background errors (error_cb, any thread). An operation that times
    out reports the most telling of them: a wrong password shows as 'authentication failed',
    not as the timeout it causes."""

    def __init__(self, on_error: Callable[[errors.KafkaError], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._seen: dict[type[errors.KafkaError], tuple[errors.KafkaError, float]] = {}
        self._on_error = on_error

    def record(self, error: ck.KafkaError) -> None:
        classified = classify(error)
        with self._lock:
            new = type(classified) not in self._seen
            self._seen[type(classified)] = (classified, time.monotonic())
        if new:  # librdkafka repeats an error on every reconnect: say it once per episode
            logger.warning("Kafka client error: %s (%s).", classified, classified.code)
        if self._on_error is not None:
            self._on_error(classified)

    def clear(self) -> None:
        if not self._seen:  # the hot path (every acknowledged batch): no lock when clean
            return
        with self._lock:
            self._seen.clear()
        logger.info("Kafka client recovered: records flow again.")

    def worst(self) -> errors.KafkaError | None:
        with self._lock:
            for kind in _PRECEDENCE:
                if kind in self._seen:
                    return self._seen[kind][0]
            return next((seen[0] for seen in self._seen.values()), None)

    def authentication(self, within: float = 5.0) -> errors.KafkaError | None:
        """The authentication failure reported in the last `within` seconds, if any."""
        with self._lock:
            seen = self._seen.get(errors.KafkaAuthenticationError)
        if seen is not None and time.monotonic() - seen[1] <= within:
            return seen[0]
        return None

    def explain(self, error: BaseException) -> errors.KafkaError:
        """`error` classified, unless it is a timeout/transport error and a background error
        says more (refused credentials, refused connection, authorization)."""
        classified = classify(error)
        if type(classified) in (errors.KafkaUnreachableError, errors.KafkaError):
            # a background error names the cause ("Connection refused", "Invalid username
            # or password") where the operation only says "timed out" / "transport failure"
            return self.worst() or classified
        return classified


class _QuietLog:
    """librdkafka's log at DEBUG: it logs an ERROR line on every reconnect attempt, while the
    same errors reach error_cb and are logged once per episode by `_Latch`."""

    def log(self, level: int, msg: str, *args: object) -> None:
        _LIBRDKAFKA_LOG.debug(msg, *args)


_QUIET_LOG = _QuietLog()


def _with_callbacks(config: Mapping[str, Any], latch: _Latch) -> dict[str, Any]:
    conf = dict(config)
    conf["error_cb"] = latch.record
    conf.setdefault("logger", _QUIET_LOG)
    return conf


async def _admin_wait(
    admin: ck_admin.AdminClient, latch: _Latch, future: concurrent.futures.Future[Any], limit: float
) -> Any:
    """The admin operation's result; fails at once when the credentials are refused (the
    operation itself would only time out)."""
    wrapped = asyncio.wrap_future(future)
    deadline = asyncio.get_running_loop().time() + limit
    try:
        while True:
            done, _ = await asyncio.wait({wrapped}, timeout=0.25)
            if done:
                return wrapped.result()
            await asyncio.to_thread(admin.poll, 0)  # serves error_cb
            refused = latch.authentication()
            if refused is not None:
                raise refused
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError
    finally:
        wrapped.cancel()


# ---------------------------------------------------------------------------- admin


async def _admin_call(
    config: Mapping[str, Any],
    call: str,
    topic: str,
    request_timeout: float,
    topic_config: Mapping[str, str] | None = None,
    **new: int,
) -> bool:
    latch = _Latch()
    admin = ck_admin.AdminClient(_with_callbacks(config, latch))
    try:
        if call == "create":
            spec = ck_cimpl.NewTopic(
                topic, new["partitions"], new["replication_factor"], config=dict(topic_config or {})
            )
            futures = admin.create_topics(
                [spec], request_timeout=request_timeout, operation_timeout=request_timeout
            )
        else:
            futures = admin.delete_topics(
                [topic], request_timeout=request_timeout, operation_timeout=request_timeout
            )
        try:
            await _admin_wait(admin, latch, futures[topic], request_timeout + 5)
        except ck.KafkaException as exc:
            code = (
                exc.args[0].code() if exc.args and isinstance(exc.args[0], ck.KafkaError) else None
            )
            if call == "create" and code == ck.KafkaError.TOPIC_ALREADY_EXISTS:
                return False
            if call == "delete" and code == ck.KafkaError.UNKNOWN_TOPIC_OR_PART:
                return False
            await asyncio.to_thread(admin.poll, 0)  # serve error_cb
            raise latch.explain(exc) from exc
        except TimeoutError as exc:
            await asyncio.to_thread(admin.poll, 0)
            raise latch.worst() or errors.KafkaUnreachableError(
                f"no answer from {config.get('bootstrap.servers')} within {request_timeout:.0f}s"
            ) from exc
        return True
    finally:
        await asyncio.to_thread(admin.poll, 0)


async def ensure_topic(
    config: Mapping[str, Any],
    topic: str,
    *,
    partitions: int = 1,
    replication_factor: int = 1,
    request_timeout: float = 30.0,
    topic_config: Mapping[str, str] | None = None,
) -> bool:
    """Create `topic` unless it exists; True when this call created it. `topic_config`:
    topic-level settings at creation (`retention.ms` for a KafkaChannel's retentionDuration)."""
    created = await _admin_call(
        config,
        "create",
        topic,
        request_timeout,
        topic_config,
        partitions=partitions,
        replication_factor=replication_factor,
    )
    if created:
        logger.info("Created Kafka topic %s (%d partitions, replication factor %d).",
                    topic, partitions, replication_factor)  # fmt: skip
    return created


async def delete_topic(
    config: Mapping[str, Any], topic: str, *, request_timeout: float = 30.0
) -> bool:
    """Delete `topic`; False when it did not exist."""
    return await _admin_call(config, "delete", topic, request_timeout)


async def check(
    config: Mapping[str, Any], *, topic: str | None = None, request_timeout: float = 10.0
) -> None:
    """One metadata round trip; raises the classified error (e.g. for a Ready condition).
    With `topic`, it must exist with every partition led (else `KafkaTopicError`); asking
    never creates it (a broker with auto.create.topics.enable would, for a metadata request
    that allows it: librdkafka's default for this client)."""
    latch = _Latch()
    conf = {**config, "allow.auto.create.topics": False}
    admin = ck_admin.AdminClient(_with_callbacks(conf, latch))
    deadline = asyncio.get_running_loop().time() + request_timeout
    while True:  # in steps of a second, so refused credentials fail at once
        step = max(0.1, min(1.0, deadline - asyncio.get_running_loop().time()))
        try:
            metadata = await asyncio.to_thread(admin.list_topics, topic, timeout=step)
            break
        except ck.KafkaException as exc:
            await asyncio.to_thread(admin.poll, 0)
            refused = latch.authentication()
            if refused is not None:
                raise refused from exc
            if asyncio.get_running_loop().time() >= deadline:
                raise latch.explain(exc) from exc
    if topic is None:
        return
    found = metadata.topics.get(topic)
    error = found.error if found is not None else None
    if found is None or (error is not None and error.code() == ck.KafkaError.UNKNOWN_TOPIC_OR_PART):
        raise errors.KafkaTopicError(
            f"topic {topic!r} does not exist", code="UNKNOWN_TOPIC_OR_PART"
        )
    if error is not None:
        raise classify(error)


_GROUP_BUSY = {
    ck.KafkaError.ILLEGAL_GENERATION,
    ck.KafkaError.UNKNOWN_MEMBER_ID,
    ck.KafkaError.REBALANCE_IN_PROGRESS,
    ck.KafkaError.FENCED_INSTANCE_ID,
}
"""Commit refusals meaning the group has live members: they own the partitions' offsets."""


async def init_offsets(
    config: Mapping[str, Any],
    group_id: str,
    topics: Sequence[str],
    initial_offset: str,
    *,
    request_timeout: float = 10.0,
) -> int:
    """Commit `initial_offset` (earliest: each partition's start, latest: its end) for every
    partition of `topics` that `group_id` has no committed offset for, as Knative's
    `InitOffsets`: a consumer group that starts later begins where the source became Ready,
    so with `latest` nothing produced in between is missed. Returns how many partitions were
    initialized; a missing topic raises `KafkaTopicError`. While the group has live members
    the commit is refused and left to them (0 is returned)."""

    def run() -> int:
        latch = _Latch()
        conf = _with_callbacks(config, latch)
        conf.update({"group.id": group_id, "enable.auto.commit": False})
        consumer = ck.Consumer(conf)
        try:
            wanted: list[ck.TopicPartition] = []
            for topic in topics:
                metadata = consumer.list_topics(topic, timeout=request_timeout)
                found = metadata.topics.get(topic)
                if found is None or (
                    found.error is not None
                    and found.error.code() == ck.KafkaError.UNKNOWN_TOPIC_OR_PART
                ):
                    raise errors.KafkaTopicError(
                        f"topic {topic!r} does not exist", code="UNKNOWN_TOPIC_OR_PART"
                    )
                if found.error is not None:
                    raise classify(found.error)
                wanted += [ck.TopicPartition(topic, p) for p in sorted(found.partitions)]
            committed = consumer.committed(wanted, timeout=request_timeout)
            missing = [tp for tp in committed if tp.offset < 0]
            for tp in missing:
                low, high = consumer.get_watermark_offsets(
                    ck.TopicPartition(tp.topic, tp.partition), timeout=request_timeout
                )
                tp.offset = low if initial_offset == "earliest" else high
            if not missing:
                return 0
            try:
                consumer.commit(offsets=missing, asynchronous=False)
            except ck.KafkaException as exc:
                inner = exc.args[0] if exc.args else None
                if isinstance(inner, ck.KafkaError) and inner.code() in _GROUP_BUSY:
                    return 0
                raise
            return len(missing)
        except ck.KafkaException as exc:
            raise latch.explain(exc) from exc
        finally:
            consumer.close()

    return await asyncio.to_thread(run)


# ---------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class Message:
    """A record to produce."""

    value: bytes | None
    key: bytes | None = None
    headers: Headers = ()


@dataclass(frozen=True)
class Delivered:
    """Where an acknowledged record landed."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class Record:
    """A consumed record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers = ()
    timestamp_ms: int | None = None


def _bytes(value: str | bytes | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


# ---------------------------------------------------------------------------- producer


class Producer:
    """An idempotent `acks=all` producer whose `send()` resolves when the record is stored.

    A background thread serves librdkafka's callbacks (`poll`); acknowledgements reach the
    event loop in batches (one wake-up per poll, not one per record)."""

    def __init__(
        self, config: Mapping[str, Any], *, delivery_timeout: float = 30.0, linger_ms: int = 5
    ) -> None:
        self._latch = _Latch(self._on_error)
        conf = _with_callbacks(config, self._latch)
        conf.update(
            {
                "acks": "all",
                "enable.idempotence": True,
                # bounds how long a send waits for an unreachable broker before it fails
                "delivery.timeout.ms": int(delivery_timeout * 1000),
                "linger.ms": linger_ms,
            }
        )
        self._delivery_timeout = delivery_timeout
        self._producer = ck.Producer(conf)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._acks: list[tuple[asyncio.Future[Delivered], ck.KafkaError | None, Any]] = []
        self._acks_lock = threading.Lock()
        self._pending: set[asyncio.Future[Delivered]] = set()

    async def __aenter__(self) -> Producer:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._serve, name="kafka-producer", daemon=True)
        self._thread.start()

    @property
    def problem(self) -> errors.KafkaError | None:
        """The worst client error seen since the last acknowledged record, or None."""
        return self._latch.worst()

    def _on_error(self, error: errors.KafkaError) -> None:
        """(poll thread) Refused credentials fail every waiting send at once: librdkafka
        would retry until the delivery timeout, and a sink should answer now."""
        if isinstance(error, errors.KafkaAuthenticationError) and self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self._fail_pending, error)
            except RuntimeError:  # loop closed
                pass

    def _fail_pending(self, error: errors.KafkaError) -> None:
        for future in self._pending:
            if not future.done():
                future.set_exception(error)

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)
            self._hand_over()
        self._hand_over()

    def _hand_over(self) -> None:
        with self._acks_lock:
            batch, self._acks = self._acks, []
        if batch and self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self._resolve, batch)
            except RuntimeError:  # loop closed: nobody waits any more
                pass

    def _resolve(
        self, batch: list[tuple[asyncio.Future[Delivered], ck.KafkaError | None, Any]]
    ) -> None:
        delivered = False
        for future, err, msg in batch:
            if future.done():
                continue
            if err is not None:
                future.set_exception(self._latch.explain(ck.KafkaException(err)))
            else:
                delivered = True
                future.set_result(Delivered(msg.topic(), msg.partition(), msg.offset()))
        if delivered:
            self._latch.clear()

    async def send(
        self,
        topic: str,
        value: bytes | str | None,
        *,
        key: bytes | str | None = None,
        headers: Iterable[tuple[str, bytes]] = (),
        partition: int | None = None,
    ) -> Delivered:
        """Produce one record and wait until all in-sync replicas have it."""
        if self._thread is None:
            raise RuntimeError("Producer.send() before start()")
        refused = self._latch.authentication()
        if refused is not None:
            raise refused
        future: asyncio.Future[Delivered] = asyncio.get_running_loop().create_future()

        def acked(err: ck.KafkaError | None, msg: Any) -> None:
            with self._acks_lock:
                self._acks.append((future, err, msg))

        kwargs: dict[str, Any] = {
            "key": _bytes(key),
            "headers": list(headers),
            "on_delivery": acked,
        }
        if partition is not None:
            kwargs["partition"] = partition
        deadline = asyncio.get_running_loop().time() + self._delivery_timeout
        while True:
            try:
                self._producer.produce(topic, _bytes(value), **kwargs)
                break
            except BufferError:  # local queue full: wait for acknowledgements to drain it
                if asyncio.get_running_loop().time() > deadline:
                    raise self._latch.worst() or errors.KafkaUnreachableError(
                        "producer queue full: the broker does not keep up"
                    ) from None
                await asyncio.sleep(0.005)
            except ck.KafkaException as exc:
                raise self._latch.explain(exc) from exc
        self._pending.add(future)
        try:
            return await future
        finally:
            self._pending.discard(future)

    async def send_message(self, topic: str, message: Message) -> Delivered:
        return await self.send(topic, message.value, key=message.key, headers=message.headers)

    async def close(self, *, grace: float = 10.0) -> None:
        """Wait up to `grace` seconds for records in flight, then stop the poll thread."""
        if self._thread is None:
            return
        remaining = await asyncio.to_thread(self._producer.flush, grace)
        if remaining:
            logger.warning("Kafka producer closed with %d record(s) unacknowledged.", remaining)
            # their senders get an error (purged) instead of waiting forever
            self._producer.purge()
            await asyncio.to_thread(self._producer.poll, 0)
        self._stop.set()
        await asyncio.to_thread(self._thread.join)
        self._thread = None
        await asyncio.sleep(0)  # the last acknowledgements reach their senders


# ---------------------------------------------------------------------------- consumer


TopicPartition = tuple[str, int]
OnAssign = Callable[[list[TopicPartition]], None]
OnRevoke = Callable[[list[TopicPartition]], Mapping[TopicPartition, int]]


class Consumer:
    """A group consumer with explicit commits (no auto-commit, no auto offset store).

    Blocking client calls run on one thread owned by this consumer, so they never overlap.

    Rebalances (optional, for consumers that track offsets per partition, the KafkaSource
    adapter): `on_assign(partitions)` is told the partitions given to this member;
    `on_revoke(partitions)` is told those leaving and returns the offsets to commit for them,
    committed synchronously before the group moves them (so the next owner starts after what
    was finished here); for partitions *lost* (the member fell out of the group) it is called
    too but nothing is committed. Both run on the consumer's thread, inside a `poll`.
    `pause`/`resume` stop and restart fetching of partitions without leaving the group; they
    return at once and take effect on the consumer's thread before its next fetch (called on
    the event loop directly, librdkafka's pause/resume waited for the `poll` in progress:
    ~0.2-0.45 s of a blocked loop each, 40 per 20,000 records of a busy source); while any
    partition is paused a fetch waits at most `PAUSED_WAIT`, so a resume is not held up by a
    long idle poll. `high_watermark` is the partition's end as last fetched (for lag)."""

    PAUSED_WAIT = 0.05

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        group_id: str,
        topics: Sequence[str],
        initial_offset: str = "earliest",
        on_assign: OnAssign | None = None,
        on_revoke: OnRevoke | None = None,
    ) -> None:
        if initial_offset not in ("earliest", "latest"):
            raise errors.ConfigError([f"initialOffset {initial_offset!r}: earliest or latest"])
        self._latch = _Latch()
        conf = _with_callbacks(config, self._latch)
        conf.update(
            {
                "group.id": group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": initial_offset,
            }
        )
        self._consumer = ck.Consumer(conf)
        self._topics = list(topics)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="kafka-consumer"
        )
        self._started = False
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._lock = threading.Lock()
        self._flow: list[tuple[bool, list[TopicPartition]]] = []
        """Pauses (True) and resumes not yet applied, in order."""
        self._paused: set[TopicPartition] = set()

    async def __aenter__(self) -> Consumer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    async def start(self) -> None:
        callbacks: dict[str, Any] = {}
        if self._on_assign is not None:
            callbacks["on_assign"] = self._assigned
        if self._on_revoke is not None:
            callbacks["on_revoke"] = self._revoked
            callbacks["on_lost"] = self._lost
        await self._call(self._consumer.subscribe, self._topics, **callbacks)
        self._started = True

    def _assigned(self, _: Any, partitions: list[ck.TopicPartition]) -> None:
        self._forget_paused(partitions)  # a partition assigned again starts unpaused
        assert self._on_assign is not None
        self._on_assign([(tp.topic, tp.partition) for tp in partitions])

    def _revoked(self, consumer: Any, partitions: list[ck.TopicPartition]) -> None:
        self._forget_paused(partitions)
        assert self._on_revoke is not None
        offsets = self._on_revoke([(tp.topic, tp.partition) for tp in partitions])
        if not offsets:
            return
        try:
            consumer.commit(
                offsets=[ck.TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                asynchronous=False,
            )
        except ck.KafkaException as exc:
            logger.warning("Committing the offsets of revoked partitions failed: %s",
                           classify(exc))  # fmt: skip

    def _lost(self, _: Any, partitions: list[ck.TopicPartition]) -> None:
        self._forget_paused(partitions)
        assert self._on_revoke is not None
        self._on_revoke([(tp.topic, tp.partition) for tp in partitions])  # nothing to commit

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        """Stop fetching `partitions` (still assigned) from the next fetch on; the position is
        kept."""
        with self._lock:
            self._paused.update(partitions)
            self._flow.append((True, list(partitions)))

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        with self._lock:
            self._paused.difference_update(partitions)
            self._flow.append((False, list(partitions)))

    def _forget_paused(self, partitions: list[ck.TopicPartition]) -> None:
        """(consumer thread, rebalance) Partitions assigned or taken away start unpaused: a
        pause or resume queued for the previous assignment is dropped, so it cannot pause a
        partition whose new lane never asked for it."""
        gone = {(tp.topic, tp.partition) for tp in partitions}
        with self._lock:
            self._paused.difference_update(gone)
            flow = [(pause, [tp for tp in tps if tp not in gone]) for pause, tps in self._flow]
            self._flow = [(pause, tps) for pause, tps in flow if tps]

    def _apply_flow(self) -> bool:
        """On the consumer's thread: the pending pauses and resumes, in order; whether any
        partition stays paused."""
        with self._lock:
            flow, self._flow = self._flow, []
            paused = bool(self._paused)
        for pause, partitions in flow:
            tps = [ck.TopicPartition(t, p) for t, p in partitions]
            try:
                (self._consumer.pause if pause else self._consumer.resume)(tps)
            except ck.KafkaException as exc:  # e.g. revoked meanwhile: nothing to pause
                logger.debug("%s of %s: %s", "pause" if pause else "resume", partitions, exc)
        return paused

    def high_watermark(self, topic: str, partition: int) -> int | None:
        """The partition's end offset as last fetched (no request); None when unknown."""
        try:
            _, high = self._consumer.get_watermark_offsets(
                ck.TopicPartition(topic, partition), cached=True
            )
        except ck.KafkaException:
            return None
        return int(high) if high is not None and high >= 0 else None

    @property
    def problem(self) -> errors.KafkaError | None:
        """The worst client error seen since the last successful poll with records, or None."""
        return self._latch.worst()

    def _fetch(self, max_records: int, wait: float) -> list[Any]:
        """The first message within `wait`, then whatever else is already fetched: librdkafka's
        `consume(n, timeout)` alone waits the whole timeout unless n messages arrive, which
        made every record of a slow stream wait `wait` seconds."""
        if self._apply_flow():
            wait = min(wait, self.PAUSED_WAIT)
        first = self._consumer.poll(wait)
        if first is None:
            return []
        if max_records <= 1:
            return [first]
        return [first, *self._consumer.consume(max_records - 1, 0)]

    async def poll(self, max_records: int = 500, *, wait: float = 1.0) -> list[Record]:
        """Up to `max_records` records, waiting up to `wait` seconds for the first."""
        messages = await self._call(self._fetch, max_records, wait)
        records: list[Record] = []
        failure: ck.KafkaError | None = None
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() != ck.KafkaError._PARTITION_EOF:
                    failure = err
                continue
            _, stamp = msg.timestamp()
            records.append(
                Record(
                    topic=msg.topic(),
                    partition=msg.partition(),
                    offset=msg.offset(),
                    key=msg.key(),
                    value=msg.value(),
                    headers=tuple((k, v or b"") for k, v in (msg.headers() or ())),
                    timestamp_ms=stamp if stamp >= 0 else None,
                )
            )
        if records:
            self._latch.clear()
        elif failure is not None:
            raise self._latch.explain(ck.KafkaException(failure))
        return records

    async def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Commit `offsets` ((topic, partition) -> next offset to read) synchronously."""
        if not offsets:
            return
        partitions = [ck.TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            await self._call(self._consumer.commit, offsets=partitions, asynchronous=False)
        except ck.KafkaException as exc:
            raise self._latch.explain(exc) from exc

    def assignment(self) -> list[tuple[str, int]]:
        return [(tp.topic, tp.partition) for tp in self._consumer.assignment()]

    async def close(self) -> None:
        """Leave the group (its partitions go to other members at once) and stop the thread."""
        if self._started:
            self._started = False
            await self._call(self._consumer.close)
        self._executor.shutdown(wait=False)


# ---------------------------------------------------------------------------- CloudEvents


class ContentMode(enum.StrEnum):
    """KafkaSink's `contentMode`."""

    BINARY = "binary"
    STRUCTURED = "structured"


def encode_event(event: cloudevent.CloudEvent, mode: ContentMode = ContentMode.BINARY) -> Message:
    """The Kafka record for `event`: binary `ce_` headers + `content-type`, or structured
    `application/cloudevents+json`; the `partitionkey` extension is the record key."""
    if mode is ContentMode.STRUCTURED:
        msg = ce_kafka.to_structured(event, cloudevent.DATA_FORMAT)
    else:
        msg = ce_kafka.to_binary(cloudevent.canonical(event), cloudevent.DATA_FORMAT)
    return Message(value=msg.value, key=_bytes(msg.key), headers=tuple(msg.headers.items()))


def _header_map(headers: Iterable[tuple[str, bytes]]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name, value in headers:
        out.setdefault(name.lower(), value)  # the first of repeated headers counts
    return out


def is_cloudevent(headers: Iterable[tuple[str, bytes]]) -> bool:
    """Whether a record claims to carry a CloudEvent (binary or structured mode)."""
    mapped = _header_map(headers)
    if "ce_specversion" in mapped:
        return True
    content_type = mapped.get("content-type", b"").split(b";", 1)[0].strip().lower()
    return content_type == STRUCTURED_CONTENT_TYPE.encode()


def decode_record(
    record: Record, *, key_as_partitionkey: bool = True
) -> cloudevent.CloudEvent | None:
    """The CloudEvent in `record`, or None when it is a plain record; raises
    `errors.InvalidEventError` for a record that claims to be a CloudEvent and is not one."""
    if not is_cloudevent(record.headers):
        return None
    mapped = _header_map(record.headers)
    message = ce_kafka.KafkaMessage(
        headers=mapped, key=record.key if key_as_partitionkey else None, value=record.value or b""
    )
    try:
        if "ce_specversion" in mapped:
            event = ce_kafka.from_binary(
                message, cloudevent.DATA_FORMAT, cloudevent.decoding_factory
            )
        else:
            event = ce_kafka.from_structured(
                message, cloudevent.DATA_FORMAT, cloudevent.decoding_factory
            )
    except errors.InvalidEventError:
        raise
    except ce_exceptions.BaseCloudEventException as exc:
        raise errors.InvalidEventError(f"invalid CloudEvent: {exc}") from exc
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise errors.InvalidEventError(f"malformed CloudEvent: {exc}") from exc
    if not isinstance(event, cloudevent.CloudEvent):
        raise errors.InvalidEventError("unsupported CloudEvents specversion")
    return event
