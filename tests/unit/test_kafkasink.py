"""KafkaSink's pure parts: the ingress's reading of a KafkaSink object, its settings, the
address the controller publishes, and the CRD a user applies."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from controller.apis import __main__ as render
from controller.kafkasink import reconciler
from dispatcher.kafkasink import settings, sinks
from kevents import errors


def kafkasink(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": "s", "generation": 3},
        "spec": {"topic": "t", "bootstrapServers": ["kafka:9092"], **spec},
    }


def test_defaults_are_knatives_binary_without_auth() -> None:
    sink = sinks.parse(kafkasink())
    assert sink == sinks.Sink("ns", "s", "t", ("kafka:9092",), "binary", None, 3)
    assert sink.key == ("ns", "s")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"contentMode": "structured"}, {"content_mode": "structured"}),
        ({"auth": {"secret": {"ref": {"name": "creds"}}}}, {"secret": "creds"}),
        ({"bootstrapServers": ["a:9092", " b:9093 "]}, {"bootstrap_servers": ("a:9092", "b:9093")}),
        ({"bootstrapServers": "a:9092,b:9093"}, {"bootstrap_servers": ("a:9092", "b:9093")}),
    ],
    ids=["structured", "auth-secret", "servers-trimmed", "legacy-comma-string"],
)
def test_spec_fields(spec: dict[str, Any], expected: dict[str, Any]) -> None:
    sink = sinks.parse(kafkasink(**spec))
    assert {k: getattr(sink, k) for k in expected} == expected


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"topic": ""}, "spec.topic"),
        ({"bootstrapServers": []}, "spec.bootstrapServers"),
        ({"contentMode": "avro"}, "spec.contentMode"),
    ],
    ids=["no-topic", "no-servers", "bad-mode"],
)
def test_unservable_spec_names_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(sinks.SinkError, match=field):
        sinks.parse(kafkasink(**spec))


def test_address_is_knatives_path_on_the_shared_ingress() -> None:
    url = reconciler.address("kevents-system", "kafka-sink-ingress", "ns", "s")
    assert url == "http://kafka-sink-ingress.kevents-system.svc.cluster.local/ns/s"


def test_settings_report_every_bad_variable_by_name() -> None:
    with pytest.raises(errors.ConfigError) as caught:
        settings.KafkaSinkSettings.from_env(
            {
                "KEVENTS_PRODUCE_TIMEOUT": "soon",
                "KEVENTS_INGRESS_PORT": "70000",
                "KEVENTS_PRODUCE_TARGET": "-1",
            }
        )
    text = "; ".join(caught.value.problems)
    assert "KEVENTS_PRODUCE_TIMEOUT" in text and "KEVENTS_INGRESS_PORT" in text
    assert "KEVENTS_PRODUCE_TARGET" in text


def test_settings_defaults() -> None:
    config = settings.KafkaSinkSettings.from_env({})
    assert (config.ingress_port, config.probes_port, config.metrics_port) == (8000, 8080, 9090)
    assert config.produce_target == 1.0
    assert config.produce_timeout == 15.0


def crd_version() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(render.manifests()["300-kafkasink.yaml"])
    assert doc["metadata"]["name"] == "kafkasinks.eventing.knative.dev"
    assert doc["metadata"]["labels"]["duck.knative.dev/addressable"] == "true"
    (version,) = doc["spec"]["versions"]
    return dict(version)


def test_crd_is_knatives_v1alpha1_schema() -> None:
    version = crd_version()
    assert version["name"] == "v1alpha1" and version["storage"] is True
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["required"] == ["topic", "bootstrapServers"]
    props = spec["properties"]
    assert props["contentMode"]["default"] == "binary"
    assert props["contentMode"]["enum"] == ["binary", "structured"]
    assert props["auth"]["properties"]["secret"]["properties"]["ref"]["required"] == ["name"]
    assert props["numPartitions"]["minimum"] == 1
    assert props["replicationFactor"]["minimum"] == 1
