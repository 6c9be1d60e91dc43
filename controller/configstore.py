"""The observability ConfigMaps of the system namespace, handed to every adapter as env.

`config-logging`, `config-observability` and `config-tracing` (Knative's names) are
watched; each change re-reconciles every source so adapters get the new
`K_LOGGING_CONFIG` / `K_METRICS_CONFIG` / `K_TRACING_CONFIG`. A missing ConfigMap is `{}`.
"""

from __future__ import annotations

from collections.abc import Callable

from controller import adapterpod
from controller.apiserversource import adapter
from kevents import kubeapi, watching

CONFIGMAPS = kubeapi.Resource("", "v1", "configmaps")
NAMES = ("config-logging", "config-observability", "config-tracing")


def _data_json(data: dict[str, str] | None) -> str:
    """Go marshals maps with sorted keys."""
    return adapterpod.go_json(dict(sorted((data or {}).items())))


class ConfigStore:
    def __init__(
        self,
        api: kubeapi.KubeApi,
        *,
        namespace: str,
        image: str,
        on_change: Callable[[], None],
        metrics_domain: str = "knative.dev/eventing",
    ) -> None:
        self.namespace = namespace
        self.image = image
        self.metrics_domain = metrics_domain
        self.on_change = on_change
        self._data: dict[str, dict[str, str]] = {}
        self.watcher = watching.Watcher(api, CONFIGMAPS, self._handle, namespace=namespace)

    def adapter_config(self) -> adapter.AdapterConfig:
        metrics = {
            "Domain": self.metrics_domain,
            "Component": "apiserversource",
            "PrometheusPort": adapterpod.METRICS_PORT,
            "PrometheusHost": "0.0.0.0",
            "ConfigMap": dict(sorted(self._data.get("config-observability", {}).items())),
        }
        return adapter.AdapterConfig(
            image=self.image,
            system_namespace=self.namespace,
            metrics_domain=self.metrics_domain,
            logging_config=_data_json(self._data.get("config-logging")),
            metrics_config=adapterpod.go_json(metrics),
            tracing_config=_data_json(self._data.get("config-tracing")),
        )

    def adapter_settings(self, image: str) -> adapterpod.Config:
        """The settings of a per-source adapter that runs `image` (GitHub, Kafka)."""
        return adapterpod.Config(
            image=image,
            system_namespace=self.namespace,
            logging_config=_data_json(self._data.get("config-logging")),
            tracing_config=_data_json(self._data.get("config-tracing")),
        )

    def _handle(self, kind: str, obj: kubeapi.Json) -> None:
        name = str(obj.get("metadata", {}).get("name", ""))
        if name not in NAMES:
            return
        data = {} if kind == "DELETED" else dict(obj.get("data") or {})
        if self._data.get(name) != data:
            self._data[name] = data
            if self.watcher.synced.is_set():
                self.on_change()
