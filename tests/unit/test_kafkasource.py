"""KafkaSource pieces without a broker: the committable position (kevents/consumergroup.py),
the spec rules (kevents/kafkasourcespec.py, also the webhook's), the adapter's settings and the
Deployment the controller applies (controller/kafkasource/adapter.py)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from controller import admission
from controller.apis import __main__ as render
from controller.framework import sinks
from controller.kafkasource import adapter as deployment
from kevents import cloudevent, consumergroup, errors, kafka, kafkasourcespec, validation
from sources.kafka import config

# ------------------------------------------------------------------ offsets


@pytest.mark.parametrize(
    ("taken", "finished", "position"),
    [
        ([5, 6, 7], [], None),
        ([5, 6, 7], [5], 6),
        ([5, 6, 7], [6, 7], None),
        ([5, 6, 7], [7, 5], 6),
        ([5, 6, 7], [7, 6, 5], 8),
        ([10, 12, 15], [10, 12], 13),
    ],
    ids=["nothing-finished", "first", "later-ones-only", "gap", "all-out-of-order", "sparse"],
)
def test_position_is_one_past_the_finished_prefix(
    taken: list[int], finished: list[int], position: int | None
) -> None:
    offsets = consumergroup.Offsets()
    for offset in taken:
        offsets.take(offset)
    for offset in finished:
        offsets.finish(offset)
    assert offsets.position == position
    assert offsets.pending == len(taken) - sum(1 for o in taken if position and o < position)


def test_to_commit_only_when_the_position_moved() -> None:
    offsets = consumergroup.Offsets()
    offsets.take(0)
    assert offsets.to_commit() is None
    offsets.finish(0)
    assert offsets.to_commit() == 1
    offsets.committed = 1
    assert offsets.to_commit() is None
    assert offsets.first == 0


# ------------------------------------------------------------------ spec rules

SPEC: dict[str, Any] = {
    "bootstrapServers": ["kafka.kevents-system.svc.cluster.local:9092"],
    "topics": ["build.done"],
    "sink": {"uri": "http://sink.default.svc.cluster.local"},
}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({}, None),
        ({"topics": []}, "spec.topics: missing field(s)"),
        ({"bootstrapServers": []}, "spec.bootstrapServers: missing field(s)"),
        ({"bootstrapServers": ["kafka"]}, "spec.bootstrapServers: bootstrap server 'kafka'"),
        ({"initialOffset": "oldest"}, "spec.initialOffset: invalid value: oldest"),
        ({"ordering": "random"}, "spec.ordering: invalid value: random"),
        ({"consumers": -1}, "spec.consumers: invalid value: -1"),
        ({"net": {"sasl": {"enable": True}}}, "spec.net.sasl.user: missing field(s)"),
        ({"delivery": {"retry": -1}}, "spec.delivery.retry"),
        ({"sink": None}, "spec.sink: missing field(s)"),
    ],
    ids=[
        "valid",
        "topics",
        "servers",
        "host-port",
        "offset",
        "ordering",
        "consumers",
        "sasl",
        "delivery",
        "sink",
    ],  # fmt: skip
)
def test_spec_rules(change: dict[str, Any], problem: str | None) -> None:
    found = validation.spec_problems("sources.knative.dev", "KafkaSource", {**SPEC, **change})
    if problem is None:
        assert found == []
    else:
        assert any(p.startswith(problem) for p in found), found


def test_consumer_group_is_immutable_once_set() -> None:
    old = {"spec": {**SPEC, "consumerGroup": "g1"}}
    new = {"spec": {**SPEC, "consumerGroup": "g2"}}
    assert any(
        p.startswith("spec.consumerGroup: Immutable")
        for p in validation.problems("sources.knative.dev", "KafkaSource", new, old)
    )
    defaulted = {"spec": dict(SPEC)}
    assert validation.problems("sources.knative.dev", "KafkaSource", old, defaulted) == []


def test_defaults_and_names() -> None:
    assert kafkasourcespec.new_consumer_group().startswith("knative-kafka-source-")
    assert kafkasourcespec.topics({"topics": ["a,b", " c "]}) == ["a", "b", "c"]
    assert kafkasourcespec.env_name("sasl.mechanism") == "KAFKA_NET_SASL_MECHANISM"
    assert kafkasourcespec.env_name("ca.crt") == "KAFKA_NET_CA_CRT"


# ------------------------------------------------------------------ adapter settings

ENV = {
    "KAFKA_BOOTSTRAP_SERVERS": "a:9092,b:9093",
    "KAFKA_TOPICS": "t1,t2",
    "KAFKA_CONSUMER_GROUP": "g",
}


def test_settings_from_env() -> None:
    env = {
        **ENV,
        "KAFKA_NET_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_NET_USER": "u",
        "KAFKA_NET_PASSWORD": "s3cr3t-pw",
        "KAFKA_NET_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_ORDERING": "unordered",
        "K_DELIVERY": '{"retry": 3, "backoffDelay": "PT0.5S", "backoffPolicy": "linear",'
        ' "format": "json"}',
        "K_DEAD_LETTER_SINK": "http://dls.default.svc.cluster.local",
    }
    got = config.Settings.from_env(env)
    assert got.bootstrap_servers == ("a:9092", "b:9093")
    assert got.topics == ("t1", "t2")
    assert got.auth.protocol is kafka.Protocol.SASL_PLAINTEXT
    assert got.auth.mechanism is kafka.Mechanism.SCRAM_SHA_512
    assert (got.auth.user, got.auth.password) == ("u", "s3cr3t-pw")
    assert got.ordering == "unordered"
    assert (got.policy.retry, got.policy.backoff_delay) == (3, 0.5)
    assert got.dead_letter_sink == "http://dls.default.svc.cluster.local"
    assert got.encoding is cloudevent.Encoding.STRUCTURED
    assert config.Settings.from_env(ENV).encoding is cloudevent.Encoding.BINARY
    assert "s3cr3t-pw" not in repr(got)


def test_every_bad_setting_is_reported_by_name() -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "nohost",
        "KAFKA_INITIAL_OFFSET": "oldest",
        "KAFKA_NET_PROTOCOL": "SASL_PLAINTEXT",
        "K_DELIVERY": '{"retry": -2}',
        "KAFKA_COMMIT_INTERVAL": "0",
    }
    with pytest.raises(errors.ConfigError) as caught:
        config.Settings.from_env(env)
    text = "\n".join(caught.value.problems)
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_TOPICS", "KAFKA_CONSUMER_GROUP",
                 "KAFKA_INITIAL_OFFSET", "KAFKA_NET_*", "K_DELIVERY",
                 "KAFKA_COMMIT_INTERVAL"):  # fmt: skip
        assert name in text, text


# ------------------------------------------------------------------ the Deployment


def inputs(**change: Any) -> deployment.Inputs:
    base: dict[str, Any] = {
        "name": "builds",
        "namespace": "ci",
        "uid": "0b3c3d7e-0000-4000-8000-000000000001",
        "sink": sinks.Address(
            url="http://broker-ingress.kevents-system.svc.cluster.local/ci/default"
        ),
        "bootstrap_servers": ["kafka:9093"],
        "topics": ["build.done", "test.done"],
        "consumer_group": "knative-kafka-source-1",
    }
    base.update(change)
    return deployment.Inputs(**base)


CONFIG = deployment.Config(image="kevents/kafka-source:latest", system_namespace="kevents-system")


def env_of(dep: dict[str, Any]) -> dict[str, Any]:
    container = dep["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_deployment_runs_consumers_replicas_with_the_env_contract() -> None:
    dep = deployment.deployment(
        inputs(
            replicas=3, protocol="SASL_PLAINTEXT", initial_offset="earliest",
            secret_refs={"user": ("kafka-auth", "user"), "password": ("kafka-auth", "password")},
            delivery={"retry": 2, "deadLetterSink": {"uri": "http://dls"}},
            dead_letter_sink="http://dls", secrets_version="abc",
        ),
        CONFIG,
    )  # fmt: skip
    assert dep["metadata"]["name"] == "kafkasource-builds-0b3c3d7e-0000-4000-8000-000000000001"
    assert dep["spec"]["replicas"] == 3
    env = env_of(dep)
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9093"
    assert env["KAFKA_TOPICS"] == "build.done,test.done"
    assert env["KAFKA_CONSUMER_GROUP"] == "knative-kafka-source-1"
    assert env["KAFKA_INITIAL_OFFSET"] == "earliest"
    assert env["KAFKA_NET_PROTOCOL"] == "SASL_PLAINTEXT"
    assert env["KAFKA_NET_PASSWORD"] == {"secretKeyRef": {"name": "kafka-auth", "key": "password"}}
    assert env["K_DELIVERY"] == '{"retry":2}'
    assert env["K_DEAD_LETTER_SINK"] == "http://dls"
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert annotations[deployment.SECRETS_VERSION] == "abc"
    assert deployment.selector("builds") == (
        "eventing.knative.dev/source=kafka-source-controller,eventing.knative.dev/sourceName=builds"
    )


# ------------------------------------------------------------------ the CRD


def test_crd_has_knatives_columns_defaults_and_scale_subresource() -> None:
    doc = yaml.safe_load(render.manifests()["300-kafkasource.yaml"])
    assert doc["metadata"]["name"] == "kafkasources.sources.knative.dev"
    (version,) = doc["spec"]["versions"]
    assert version["name"] == "v1beta1"
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Topics", "BootstrapServers", "Ready", "Reason", "Age",
    ]  # fmt: skip
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.consumers",
        "statusReplicasPath": ".status.consumers",
        "labelSelectorPath": ".status.selector",
    }
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert spec["initialOffset"]["default"] == "latest"
    assert spec["ordering"]["default"] == "ordered"
    assert spec["consumers"]["default"] == 1
    assert set(spec["net"]["properties"]["sasl"]["properties"]) == {
        "enable", "user", "password", "type",
    }  # fmt: skip


def test_the_defaulting_webhook_gives_a_new_source_a_consumer_group_once() -> None:
    def review(operation: str, spec: dict[str, Any]) -> list[dict[str, Any]]:
        return admission.defaults({
            "operation": operation,
            "kind": {"group": "sources.knative.dev", "version": "v1beta1", "kind": "KafkaSource"},
            "object": {"metadata": {"name": "s", "namespace": "ci"}, "spec": spec},
        })  # fmt: skip

    [patch] = review("CREATE", dict(SPEC))
    assert patch["op"] == "add" and patch["path"] == "/spec/consumerGroup"
    assert patch["value"].startswith("knative-kafka-source-")
    assert review("CREATE", {**SPEC, "consumerGroup": "mine"}) == []
    assert review("UPDATE", dict(SPEC)) == []
