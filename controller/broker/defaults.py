"""What a Broker gets when the user leaves it out (pure): class, config, channel template.

Knative's webhook defaults a Broker from ConfigMap `config-br-defaults` (key
`default-br-config`): the `eventing.knative.dev/broker.class` annotation and `spec.config`
(usually a reference to ConfigMap `config-br-default-channel`), taken from
`namespaceDefaults.<namespace>` when that entry has them, else from `clusterDefault`, else
MTChannelBasedBroker and `config-br-default-channel` in the system namespace. Without a
webhook the controller writes the same defaults into the Broker once, so they are visible
and sticky like Knative's. `spec.delivery` is defaulted from the same entry when it has one.

The ConfigMap named by `spec.config` holds the trigger channel's template under
`channel-template-spec` (`apiVersion`, `kind`, optional `spec`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import yaml

from controller.channel import backing
from kevents import kubeapi

BROKERS = kubeapi.Resource("eventing.knative.dev", "v1", "brokers")
API_VERSION = "eventing.knative.dev/v1"
KIND = "Broker"
CLASS_ANNOTATION = "eventing.knative.dev/broker.class"
MT_CLASS = "MTChannelBasedBroker"
KAFKA_CLASS = "Kafka"
CONFIGURED_CLASSES = (MT_CLASS, KAFKA_CLASS)
"""Classes whose `spec.config` kevents defaults (the others belong to someone else)."""
KAFKA_CONFIGMAP = "kafka-broker-config"
"""The Kafka class's config when no default names one (Knative ships it under that name)."""
DEFAULTS_CONFIGMAP = "config-br-defaults"
DEFAULTS_KEY = "default-br-config"
DEFAULT_CHANNEL_CONFIGMAP = "config-br-default-channel"
TEMPLATE_KEY = "channel-template-spec"
CONFIG_FIELDS = ("apiVersion", "kind", "name", "namespace")
KNATIVE_NAMESPACE = "knative-eventing"
"""Knative's system namespace: a `spec.config` naming it (as Knative's docs and samples do)
reads the ConfigMap from kevents' system namespace when it is not found there."""


class DefaultsError(ValueError):
    """`config-br-defaults` cannot be parsed."""


class TemplateError(ValueError):
    """The channel template cannot be read from the Broker's config."""


@dataclass(frozen=True, slots=True)
class BrokerDefaults:
    broker_class: str
    config: dict[str, str]
    """A KReference (apiVersion, kind, name, namespace)."""
    delivery: dict[str, Any] | None = field(default=None)


def fallback_config(system_namespace: str) -> dict[str, str]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": DEFAULT_CHANNEL_CONFIGMAP,
        "namespace": system_namespace,
    }


def _parsed(configmap: kubeapi.Json | None) -> dict[str, Any]:
    raw = ((configmap or {}).get("data") or {}).get(DEFAULTS_KEY)
    if not raw:
        return {}
    try:
        parsed = yaml.safe_load(raw) or {}
    except yaml.YAMLError as exc:
        raise DefaultsError(f"{DEFAULTS_CONFIGMAP}/{DEFAULTS_KEY} is not YAML: {exc}") from exc
    if not isinstance(parsed, dict):
        raise DefaultsError(f"{DEFAULTS_CONFIGMAP}/{DEFAULTS_KEY} is not a mapping")
    return parsed


def defaults_for(
    configmap: kubeapi.Json | None, namespace: str, system_namespace: str
) -> BrokerDefaults:
    """The defaults of a Broker in `namespace` from `config-br-defaults` (None: missing)."""
    parsed = _parsed(configmap)
    entries = [
        entry
        for entry in (
            (parsed.get("namespaceDefaults") or {}).get(namespace),
            parsed.get("clusterDefault"),
        )  # fmt: skip
        if isinstance(entry, dict)
    ]
    broker_class = next((str(e["brokerClass"]) for e in entries if e.get("brokerClass")), MT_CLASS)
    chosen = next((e for e in entries if e.get("kind") and e.get("name")), None)
    if chosen is None:
        return BrokerDefaults(broker_class, fallback_config(system_namespace))
    config = {k: str(chosen[k]) for k in CONFIG_FIELDS if chosen.get(k)}
    config.setdefault("namespace", namespace)  # KReference.SetDefaults: the parent's namespace
    delivery = chosen.get("delivery")
    return BrokerDefaults(
        broker_class, config, dict(delivery) if isinstance(delivery, dict) else None
    )


def config_for(found: BrokerDefaults, broker_class: str, system_namespace: str) -> dict[str, str]:
    """The `spec.config` a Broker of `broker_class` gets: the defaults' entry when it is for
    that class (Knative's `GetBrokerConfig(namespace, class)`), else the class's own default
    ConfigMap in the system namespace."""
    if found.broker_class == broker_class:
        return found.config
    if broker_class == KAFKA_CLASS:
        return {**fallback_config(system_namespace), "name": KAFKA_CONFIGMAP}
    return fallback_config(system_namespace)


def config_problem(config: kubeapi.Json) -> str | None:
    """Why `spec.config` cannot name a channel template (Knative's messages), or None."""
    if config.get("kind") != "ConfigMap" or config.get("apiVersion") != "v1":
        return (
            "Broker.Spec.Config configuration not supported, only [kind: ConfigMap, apiVersion: v1]"
        )
    if not config.get("namespace") or not config.get("name"):
        return "Broker.Spec.Config name and namespace are required"
    return None


def channel_template(configmap: kubeapi.Json) -> backing.TemplateDict:
    """The trigger channel template in `channel-template-spec` of the config ConfigMap."""
    meta = configmap.get("metadata") or {}
    where = f"ConfigMap {meta.get('namespace')}/{meta.get('name')}"
    raw = (configmap.get("data") or {}).get(TEMPLATE_KEY)
    if not raw:
        raise TemplateError(f"{where} has no {TEMPLATE_KEY}")
    try:
        parsed = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise TemplateError(f"{where}: {TEMPLATE_KEY} is not YAML: {exc}") from exc
    if not isinstance(parsed, dict):
        raise TemplateError(f"{where}: {TEMPLATE_KEY} is not a mapping")
    if not parsed.get("apiVersion") or not parsed.get("kind"):
        raise TemplateError(f"{where}: {TEMPLATE_KEY} needs apiVersion and kind")
    out = {"apiVersion": str(parsed["apiVersion"]), "kind": str(parsed["kind"])}
    template = cast(backing.TemplateDict, out)
    if isinstance(parsed.get("spec"), dict):
        template["spec"] = parsed["spec"]
    return template
