"""The local Kafka's configuration (hack/localcluster/kafka.py): every listener on a port of
its own (Kafka refuses two IPv4 listeners on one port), pods told the Service's name and
ports, the Service's EndpointSlice pointing at the bridge listeners."""

from __future__ import annotations

import pathlib
from typing import Any, cast

from hack.localcluster import kafka

PORTS = {"kafka": 9092, "kafka-sasl": 9093, "kafka-pods": 9094, "kafka-pods-sasl": 9095,
         "kafka-controller": 40000}  # fmt: skip


def properties(bridge: str | None) -> dict[str, str]:
    text = kafka.server_properties(pathlib.Path("/state"), PORTS, bridge, "pw")
    return dict(line.split("=", 1) for line in text.splitlines())


def test_every_listener_has_its_own_port_and_pods_get_the_service_address() -> None:
    props = properties("10.244.0.1")
    listeners = props["listeners"].split(",")
    assert len({item.rsplit(":", 1)[1] for item in listeners}) == len(listeners) == 5
    assert "PODS://10.244.0.1:9094" in listeners
    assert props["advertised.listeners"].split(",") == [
        "PLAINTEXT://127.0.0.1:9092",
        "SASL_PLAINTEXT://127.0.0.1:9093",
        "PODS://kafka.kevents-system.svc.cluster.local:9092",
        "PODS_SASL://kafka.kevents-system.svc.cluster.local:9093",
    ]
    assert 'user_kevents="pw"' in props["listener.name.pods_sasl.plain.sasl.jaas.config"]


def test_without_pod_network_only_host_listeners() -> None:
    props = properties(None)
    assert "PODS" not in props["listeners"] + props["advertised.listeners"]
    assert kafka.credentials(PORTS, None, "pw")["pods_bootstrap"] is None


def test_service_ports_map_to_the_bridge_listeners() -> None:
    manifest = kafka.kafka_service("10.244.0.1", PORTS)
    service, endpoints = cast(list[dict[str, Any]], manifest["items"])
    assert [p["port"] for p in service["spec"]["ports"]] == [9092, 9093]
    assert [p["port"] for p in endpoints["ports"]] == [9094, 9095]
    assert endpoints["endpoints"][0]["addresses"] == ["10.244.0.1"]
