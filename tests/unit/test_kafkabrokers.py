"""The Kafka Broker class's and KafkaChannel's pure rules (`kevents.kafkabrokers`) and what the
data plane makes of Broker and Trigger objects (`dispatcher.kafkabroker.brokers`)."""

from __future__ import annotations

from typing import Any

import pytest

from dispatcher.kafkabroker import brokers
from kevents import errors, kafkabrokers

GOOD = {
    "bootstrap.servers": "a:9092, b:9092",
    "default.topic.partitions": "10",
    "default.topic.replication.factor": "3",
}


def test_the_tutorial_config_parses_as_knative_reads_it() -> None:
    parsed = kafkabrokers.parse_config(
        {**GOOD, "auth.secret.ref.name": "creds"}, "knative-eventing"
    )
    assert parsed == kafkabrokers.BrokerConfig(
        bootstrap_servers=("a:9092", "b:9092"), partitions=10, replication_factor=3,
        secret_name="creds", secret_namespace="knative-eventing", delete_topic=True,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("data", "problems"),
    [
        ({}, ["bootstrapServers: at least one host:port is required",
              "default.topic.partitions: missing", "default.topic.replication.factor: missing"]),
        ({**GOOD, "default.topic.partitions": "ten"}, ["default.topic.partitions: not an integer"]),
        ({**GOOD, "default.topic.replication.factor": "0"},
         ["default.topic.replication.factor: must be at least 1"]),
        ({**GOOD, "bootstrap.servers": "kafka"}, ["bootstrap server 'kafka': expected host:port"]),
        ({**GOOD, "delete.topic.on.broker.delete": "maybe"},
         ["delete.topic.on.broker.delete: true or false"]),
    ],
    ids=["empty", "partitions-not-int", "replication-zero", "server-without-port", "bad-knob"],
)  # fmt: skip
def test_a_bad_config_names_every_bad_key(data: dict[str, str], problems: list[str]) -> None:
    with pytest.raises(errors.ConfigError) as raised:
        kafkabrokers.parse_config(data, "ns")
    assert list(raised.value.problems) == problems


def test_a_channel_config_needs_only_the_servers() -> None:
    parsed = kafkabrokers.parse_config({"bootstrap.servers": "k:9092"}, "ns", topic_defaults=False)
    assert (parsed.bootstrap_servers, parsed.partitions, parsed.secret_name) == (
        ("k:9092",),
        1,
        None,
    )


def test_names_are_knatives() -> None:
    assert kafkabrokers.topic_name("my-ns", "default") == "knative-broker-my-ns-default"
    assert kafkabrokers.group_id("my-ns", "t") == "knative-trigger-my-ns-t"
    assert kafkabrokers.channel_topic("ns", "c") == "knative-messaging-kafka.ns.c"
    assert kafkabrokers.channel_group("ns", "c", "u-1") == "kafka.ns.c.u-1"


@pytest.mark.parametrize(
    ("annotation", "order"),
    [(None, "unordered"), ("ordered", "ordered"), ("unordered", "unordered"),
     ("ORDERED", "ordered"), ("sideways", "unordered")],
    ids=["default", "ordered", "unordered", "case", "unknown"],
)  # fmt: skip
def test_delivery_order_annotation(annotation: str | None, order: str) -> None:
    meta: dict[str, Any] = {"name": "t"}
    if annotation is not None:
        meta["annotations"] = {kafkabrokers.DELIVERY_ORDER_ANNOTATION: annotation}
    assert kafkabrokers.delivery_order({"metadata": meta}) == order


def broker(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": "b",
                     "annotations": {"eventing.knative.dev/broker.class": "Kafka"}},
        "spec": {"delivery": {"retry": 3}},
        "status": status,
    }  # fmt: skip


def test_a_broker_is_served_only_once_the_controller_published_its_topic() -> None:
    assert brokers.parse(broker()) is None
    other = broker(annotations={"default.topic": "t", "bootstrap.servers": "k:9092"})
    other["metadata"]["annotations"] = {"eventing.knative.dev/broker.class": "MTChannelBasedBroker"}
    assert brokers.parse(other) is None
    served = brokers.parse(
        broker(annotations={"default.topic": "t", "bootstrap.servers": "k:9092,j:9092",
                            "auth.secret.ref.name": "s", "auth.secret.ref.namespace": "sys"},
               address={"url": "http://kafka-broker-ingress.sys.svc.cluster.local/ns/b"})
    )  # fmt: skip
    assert served is not None
    assert served.sink.topic == "t" and served.sink.bootstrap_servers == ("k:9092", "j:9092")
    assert served.sink.secret_key == ("sys", "s")


def test_a_trigger_target_filters_replies_through_the_ingress_and_inherits_delivery() -> None:
    served = brokers.parse(
        broker(annotations={"default.topic": "t", "bootstrap.servers": "k:9092"},
               address={"url": "http://kafka-broker-ingress.sys.svc.cluster.local/ns/b"})
    )  # fmt: skip
    assert served is not None
    trigger: dict[str, Any] = {
        "metadata": {"namespace": "ns", "name": "tr", "uid": "u1", "generation": 2},
        "spec": {"broker": "b", "subscriber": {"uri": "http://sub"}},
        "status": {"subscriberUri": "http://sub", "deadLetterSinkUri": "http://dls"},
    }
    target = brokers.target(trigger, served)
    assert target.trigger is not None and (target.trigger.name, target.trigger.uid) == ("tr", "u1")
    assert target.reply_uri == "http://kafka-broker-ingress.sys.svc.cluster.local/ns/b"
    assert target.dead_letter_uri == "http://dls"
    assert target.policy.retry == 3  # the Broker's delivery: the Trigger has none
    own = {**trigger, "spec": {"broker": "b", "delivery": {"retry": 1}}}
    assert brokers.target(own, served, reply_url="http://127.0.0.1:9").reply_uri == (
        "http://127.0.0.1:9/ns/b"
    )
    assert brokers.target(own, served).policy.retry == 1


@pytest.mark.parametrize(
    ("duration", "ms"),
    [(None, 604_800_000), ("PT2H", 7_200_000), ("P1D", 86_400_000), ("PT0.5S", 500)],
    ids=["knative-default", "hours", "days", "fraction"],
)
def test_retention_duration_becomes_retention_ms(duration: str | None, ms: int) -> None:
    assert kafkabrokers.retention_ms(duration) == ms


def test_a_retention_in_months_is_refused() -> None:
    with pytest.raises(errors.InvalidDurationError):
        kafkabrokers.retention_ms("P1M")
