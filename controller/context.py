"""What every kind's controller is built from: the shared clients, caches and options.

One `Context` per process. Each kind's `wiring.build(ctx)` makes its reconciler and
`loop.Controller` from it, so adding a kind never touches the others.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller import configstore
from controller.framework import discovery, metrics, tracking, workqueue
from kevents import kubeapi


@dataclass(frozen=True, slots=True)
class Options:
    system_namespace: str
    """Where the controller, the dispatcher, the shared ping adapter and config-* live."""
    apiserver_adapter_image: str
    """Image of the per-source ApiServerSource adapter Deployments."""
    ping_adapter_image: str
    """Image of the shared `pingsource-mt-adapter` Deployment, created when missing."""
    github_adapter_image: str = "kevents/github-source:latest"
    """Image of the per-source GitHubSource receive adapter Deployments."""
    kafka_adapter_image: str = "kevents/kafka-source:latest"
    """Image of the per-source KafkaSource receive adapter Deployments."""
    workers: int = 4
    """Concurrent reconciles per kind."""
    resync: float = 600.0
    """Seconds between safety-net re-reconciles of every object."""
    namespace: str | None = None
    """Watch only this namespace (tests); None = cluster-wide."""
    config_recheck: float = 30.0
    """Seconds between reads of a ConfigMap a Broker's `spec.config` names outside the system
    namespace: the controller may only get those by name (no cluster-wide ConfigMap watch),
    so a missing one that appears, or one deleted, is seen within this time."""
    serving: bool = False
    """Reconcile the `serving.knative.dev` kinds (`SERVING_KINDS`, `controller/serving`)."""
    dispatcher_deployment: str = "kevents-dispatcher"
    """The InMemoryChannel dispatcher Deployment in the system namespace."""
    dispatcher_service: str = "dispatcher"
    """Its Service; every channel Service is an ExternalName pointing at it."""
    broker_ingress_service: str = "broker-ingress"
    """The shared broker ingress Service in the system namespace (Knative's name): every
    Broker's address is `http://broker-ingress.<system-ns>.svc.cluster.local/<ns>/<name>`."""
    broker_filter_service: str = "broker-filter"
    """The shared broker filter Service: each Trigger's Subscription delivers to
    `http://broker-filter.<system-ns>.svc.cluster.local/triggers/<ns>/<name>/<uid>`."""
    kafka_sink_ingress_service: str = "kafka-sink-ingress"
    """The KafkaSink ingress Service in the system namespace: every KafkaSink's address is
    `http://kafka-sink-ingress.<system-ns>.svc.cluster.local/<ns>/<name>`; its ready
    endpoints make KafkaSinks DataPlaneAvailable."""
    kafka_broker_ingress_service: str = "kafka-broker-ingress"
    """The Kafka Broker class's ingress Service in the system namespace (Knative's
    `kafka-broker-ingress`): a Kafka Broker's address is
    `http://kafka-broker-ingress.<system-ns>.svc.cluster.local/<ns>/<name>`."""
    kafka_channel_ingress_service: str = "kafka-channel-ingress"
    """The KafkaChannels' ingress Service in the system namespace: each channel's
    `<name>-kn-channel` Service is an ExternalName aliasing it (Knative's name)."""
    kafka_timeout: float = 10.0
    """Seconds one Kafka admin request (topic check or creation) may take in a reconcile
    before the broker counts as unreachable: a worker is not held longer by a dead broker."""


@dataclass(frozen=True, slots=True)
class Context:
    api: kubeapi.KubeApi
    kinds: discovery.Discovery
    tracker: tracking.Tracker
    config: configstore.ConfigStore
    metrics: metrics.ControllerMetrics
    options: Options

    def queue_and_scope(self, kind: str) -> tuple[workqueue.WorkQueue, tracking.Scope]:
        """A fresh work queue for `kind` and its view of the shared tracker feeding it."""
        queue = workqueue.WorkQueue()
        return queue, self.tracker.scope(kind, queue.add)
