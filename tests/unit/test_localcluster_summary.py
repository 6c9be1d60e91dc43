"""`hack/cluster status` for people (issue 25): the summary of a status answer names each
component with its state, pid, uptime and ports, the URLs to open and Kafka's addresses."""

from __future__ import annotations

from typing import Any

from hack.localcluster import summary

RUNNING: dict[str, Any] = {
    "state": "/s",
    "apiserver": "https://127.0.0.1:6443",
    "ready": True,
    "kubeconfig": "/s/admin.kubeconfig",
    "ports": {"etcd": 2379, "etcd-peer": 2380, "apiserver": 6443, "prometheus": 9090,
              "kafka": 9092, "kafka-sasl": 9093, "spare": 1234},
    "kafka": {"bootstrap": "127.0.0.1:9092", "sasl_bootstrap": "127.0.0.1:9093",
              "pods_bootstrap": "kafka.kevents-system.svc.cluster.local:9092",
              "pods_sasl_bootstrap": "kafka.kevents-system.svc.cluster.local:9093",
              "credentials": "/s/kafka/credentials.json"},
    "processes": [
        {"name": "etcd", "pid": 10, "alive": True, "log": "/s/logs/etcd.log",
         "uptime_seconds": 3725.0},
        {"name": "kube-apiserver", "pid": 11, "alive": True, "log": "/s/logs/a.log",
         "uptime_seconds": 65.2},
        {"name": "zipkin", "pid": 12, "alive": True, "log": "/s/logs/z.log",
         "uptime_seconds": 9.0},
        {"name": "prometheus", "pid": 13, "alive": False, "log": "/s/logs/prometheus.log",
         "uptime_seconds": None},
        {"name": "kafka", "pid": 14, "alive": True, "log": "/s/logs/k.log",
         "uptime_seconds": 200000.0},
    ],
}  # fmt: skip


def test_summary_of_a_running_cluster() -> None:
    assert summary.render(RUNNING) == (
        "cluster: ready (https://127.0.0.1:6443), state in /s\n"
        "components\n"
        "  etcd             running   pid 10   up 1h 02m   ports etcd 2379, etcd-peer 2380\n"
        "  kube-apiserver   running   pid 11   up 1m 05s   ports apiserver 6443\n"
        "  zipkin           running   pid 12   up 9.0s\n"
        "  prometheus       STOPPED   pid 13               ports prometheus 9090\n"
        "  kafka            running   pid 14   up 2d 07h   ports kafka 9092, kafka-sasl 9093\n"
        "  other ports: spare 1234\n"
        "urls\n"
        "  apiserver   https://127.0.0.1:6443   KUBECONFIG=/s/admin.kubeconfig\n"
        "  zipkin      http://127.0.0.1:9411\n"
        "kafka\n"
        "  bootstrap (PLAINTEXT)        127.0.0.1:9092\n"
        "  bootstrap (SASL_PLAINTEXT)   127.0.0.1:9093\n"
        "  from pods                    kafka.kevents-system.svc.cluster.local:9092\n"
        "  from pods (SASL)             kafka.kevents-system.svc.cluster.local:9093\n"
        "  test user in                 /s/kafka/credentials.json\n"
        "logs of stopped components\n"
        "  prometheus   /s/logs/prometheus.log\n"
    )


def test_summary_of_nothing_started() -> None:
    info: dict[str, Any] = {"state": "/s", "apiserver": None, "ready": False, "kubeconfig": "/s/k",
            "ports": {}, "kafka": None, "processes": []}  # fmt: skip
    assert summary.render(info) == (
        "cluster: NOT ready, state in /s\n  nothing recorded: `hack/cluster up` starts it\n"
    )
