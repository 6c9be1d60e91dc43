"""kevents.kafka's pure parts: credentials from Secrets and `spec.net`, client config, error
classification, the CloudEvents Kafka binding (hypothesis round-trips in both content modes).
The client itself is tested against the real broker (tests/integration/test_kafka_broker.py)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import confluent_kafka as ck
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kevents import cloudevent, errors, kafka

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"
SECRET_VALUE = "s3cr3t-do-not-print"


def secret(**data: str) -> dict[str, Any]:
    encoded = {k.replace("_", "."): base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "data": encoded}


def test_sasl_plaintext_secret_gives_librdkafka_sasl_config() -> None:
    auth = kafka.KafkaAuth.from_secret(
        secret(protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512", user="u", password="p")
    )
    config = kafka.client_config("k1:9092, k2:9093", auth)
    assert config == {
        "bootstrap.servers": "k1:9092,k2:9093",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "u",
        "sasl.password": "p",
    }


def test_sasl_mechanism_defaults_to_plain() -> None:
    auth = kafka.KafkaAuth.from_data({"protocol": b"SASL_SSL", "user": b"u", "password": b"p"})
    assert auth.mechanism is kafka.Mechanism.PLAIN
    assert kafka.client_config(["k:9092"], auth)["sasl.mechanism"] == "PLAIN"


def test_ssl_secret_passes_pem_material() -> None:
    auth = kafka.KafkaAuth.from_data(
        {"protocol": "SSL", "ca.crt": PEM, "user.crt": PEM, "user.key": KEY}
    )
    config = kafka.client_config("k:9093", auth)
    assert config["security.protocol"] == "SSL"
    assert (config["ssl.ca.pem"], config["ssl.certificate.pem"], config["ssl.key.pem"]) == (
        PEM,
        PEM,
        KEY,
    )
    assert "sasl.username" not in config


def test_user_skip_drops_client_certificate() -> None:
    auth = kafka.KafkaAuth.from_data({"protocol": "SSL", "ca.crt": PEM, "user.skip": "true"})
    assert "ssl.certificate.pem" not in kafka.client_config("k:9093", auth)


def test_repr_never_shows_secrets() -> None:
    auth = kafka.KafkaAuth.from_data(
        {
            "protocol": "SASL_SSL",
            "user": "u",
            "password": SECRET_VALUE,
            "user.crt": PEM,
            "user.key": KEY,
        }
    )
    assert SECRET_VALUE not in repr(auth)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, ["secret key 'protocol' is required"]),
        ({"protocol": "KERBEROS"}, ["secret key 'protocol': unsupported value"]),
        (
            {"protocol": "SASL_PLAINTEXT", "sasl.mechanism": "GSSAPI", "password": SECRET_VALUE},
            ["secret key 'sasl.mechanism': unsupported value", "secret key 'user' is required"],
        ),
        (
            {"protocol": "SSL", "user.crt": PEM},
            ["secret key 'user.key' is required with the other one"],
        ),
        ({"protocol": "SSL", "ca.crt": SECRET_VALUE}, ["secret key 'ca.crt': not PEM"]),
    ],
    ids=["no-protocol", "bad-protocol", "sasl-incomplete", "cert-without-key", "ca-not-pem"],
)
def test_bad_secret_names_every_key_and_no_value(data: dict[str, str], expected: list[str]) -> None:
    with pytest.raises(errors.ConfigError) as caught:
        kafka.KafkaAuth.from_data(data)
    assert len(caught.value.problems) == len(expected)
    for problem, start in zip(caught.value.problems, expected, strict=True):
        assert problem.startswith(start)
    assert SECRET_VALUE not in str(caught.value)


def test_secret_data_that_is_not_base64_is_named() -> None:
    with pytest.raises(errors.ConfigError, match="secret key 'user': not valid base64"):
        kafka.KafkaAuth.from_secret({"data": {"protocol": "UExBSU5URVhU", "user": "@@@"}})


NET: dict[str, Any] = {
    "sasl": {
        "enable": True,
        "user": {"secretKeyRef": {"name": "creds", "key": "username"}},
        "password": {"secretKeyRef": {"name": "creds", "key": "pw"}},
        "type": {"secretKeyRef": {"name": "creds", "key": "mech"}},
    },
    "tls": {"enable": False, "caCert": {"secretKeyRef": {"name": "tls", "key": "ca.crt"}}},
}


def test_kafkasource_net_maps_to_auth() -> None:
    assert kafka.net_secret_refs(NET) == {("creds", "username"), ("creds", "pw"), ("creds", "mech")}
    values = {
        ("creds", "username"): b"u",
        ("creds", "pw"): b"p",
        ("creds", "mech"): b"SCRAM-SHA-256",
    }
    auth = kafka.KafkaAuth.from_net(NET, values)
    assert (auth.protocol, auth.mechanism, auth.user, auth.password) == (
        kafka.Protocol.SASL_PLAINTEXT,
        kafka.Mechanism.SCRAM_SHA_256,
        "u",
        "p",
    )
    assert kafka.KafkaAuth.from_net({}, {}).protocol is kafka.Protocol.PLAINTEXT


def test_kafkasource_net_problems_name_the_field() -> None:
    with pytest.raises(errors.ConfigError) as caught:
        kafka.KafkaAuth.from_net(NET, {("creds", "username"): b"u", ("creds", "mech"): b"X"})
    assert caught.value.problems == (
        "spec.net.sasl.password: key 'pw' of secret 'creds' not found",
    )
    with pytest.raises(errors.ConfigError) as caught:
        kafka.KafkaAuth.from_net(
            NET, {("creds", "username"): b"u", ("creds", "pw"): b"p", ("creds", "mech"): b"X"}
        )
    assert caught.value.problems[0].startswith("spec.net.sasl.type: unsupported value")


@pytest.mark.parametrize(
    "servers", ["", "kafka", "kafka:http", "kafka:0", ":9092"], ids=lambda s: s or "empty"
)
def test_bad_bootstrap_servers_are_refused(servers: str) -> None:
    with pytest.raises(errors.ConfigError):
        kafka.parse_bootstrap(servers)


def test_bootstrap_lists_and_commas_combine() -> None:
    assert kafka.parse_bootstrap(["a:1,b:2", " c:3 "]) == ["a:1", "b:2", "c:3"]


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (ck.KafkaError._AUTHENTICATION, errors.KafkaAuthenticationError),
        (ck.KafkaError.SASL_AUTHENTICATION_FAILED, errors.KafkaAuthenticationError),
        (ck.KafkaError._ALL_BROKERS_DOWN, errors.KafkaUnreachableError),
        (ck.KafkaError._TRANSPORT, errors.KafkaUnreachableError),
        (ck.KafkaError._MSG_TIMED_OUT, errors.KafkaUnreachableError),
        (ck.KafkaError.TOPIC_AUTHORIZATION_FAILED, errors.KafkaTopicError),
        (ck.KafkaError.UNKNOWN_TOPIC_OR_PART, errors.KafkaTopicError),
        (ck.KafkaError.INVALID_REPLICATION_FACTOR, errors.KafkaTopicError),
        (ck.KafkaError.MSG_SIZE_TOO_LARGE, errors.KafkaError),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_client_errors_are_classified_with_the_brokers_message(
    code: int, kind: type[errors.KafkaError]
) -> None:
    classified = kafka.classify(ck.KafkaException(ck.KafkaError(code, "the broker said so")))
    assert type(classified) is kind
    assert str(classified) == "the broker said so"
    assert classified.code == ck.KafkaError(code).name()


WHEN = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def record(message: kafka.Message) -> kafka.Record:
    return kafka.Record("t", 0, 7, message.key, message.value, message.headers)


def test_binary_mode_uses_ce_headers_and_partitionkey_as_key() -> None:
    event = cloudevent.build(
        "com.example.build",
        "/ci",
        {"buildstatus": "pass"},
        id="1",
        datacontenttype="application/json",
        time=WHEN,
        extensions={"partitionkey": "build-7", "flag": True},
    )
    message = kafka.encode_event(event)
    assert message.key == b"build-7"
    assert dict(message.headers) == {
        "ce_specversion": b"1.0",
        "ce_id": b"1",
        "ce_source": b"/ci",
        "ce_type": b"com.example.build",
        "ce_time": b"2026-03-01T12:00:00.123456Z",
        "ce_partitionkey": b"build-7",
        "ce_flag": b"true",
        "content-type": b"application/json",
    }
    assert json.loads(message.value or b"") == {"buildstatus": "pass"}


def test_structured_mode_is_a_json_envelope() -> None:
    event = cloudevent.build("t", "/s", "hello", id="2", datacontenttype="text/plain")
    message = kafka.encode_event(event, kafka.ContentMode.STRUCTURED)
    assert message.headers == (("content-type", b"application/cloudevents+json"),)
    envelope = json.loads(message.value or b"")
    assert (envelope["id"], envelope["data"], envelope["specversion"]) == ("2", "hello", "1.0")


def test_plain_record_is_not_a_cloudevent() -> None:
    plain = kafka.Record("t", 0, 1, b"k", b'{"a": 1}', (("content-type", b"application/json"),))
    assert kafka.decode_record(plain) is None


def test_record_claiming_cloudevent_without_id_is_refused() -> None:
    broken = kafka.Record("t", 0, 1, None, b"", (("ce_specversion", b"1.0"), ("ce_type", b"x")))
    with pytest.raises(errors.InvalidEventError, match="missing required attribute"):
        kafka.decode_record(broken)


_names = st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True).filter(
    lambda n: n not in {"id", "source", "type", "specversion", "time", "subject", "data",
                        "datacontenttype", "dataschema", "partitionkey", "data_base64"}
)  # fmt: skip
_text = st.text(st.characters(codec="utf-8"), max_size=30)
_data = st.one_of(
    st.none(),
    st.binary(min_size=1, max_size=40),  # an empty body is no data (None), as over HTTP
    st.dictionaries(st.text(max_size=5), st.integers() | _text, max_size=3),
)


@given(
    event_id=_text.filter(bool),
    extensions=st.dictionaries(_names, _text, max_size=3),
    data=_data,
    key=st.none() | _text.filter(bool),
    mode=st.sampled_from(list(kafka.ContentMode)),
)
def test_round_trip_in_both_modes(
    event_id: str,
    extensions: dict[str, str],
    data: Any,
    key: str | None,
    mode: kafka.ContentMode,
) -> None:
    extra: dict[str, object] = dict(extensions)
    if key is not None:
        extra["partitionkey"] = key
    content_type = "application/json" if isinstance(data, dict) else None
    if isinstance(data, bytes):
        content_type = "application/octet-stream"
    event = cloudevent.build(
        "t", "/s", data, id=event_id, time=WHEN, datacontenttype=content_type, extensions=extra
    )
    decoded = kafka.decode_record(record(kafka.encode_event(event, mode)))
    assert decoded is not None
    assert decoded.get_attributes() == event.get_attributes()
    assert decoded.get_data() == event.get_data()
