"""The pure parts of the Broker/Trigger controllers: defaults, the trigger channel, the
Subscription a Trigger makes (the dispatcher's contract), names, filters, injection."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml

from controller.broker import defaults, resources
from controller.brokerinjection import injection
from controller.channel import backing
from controller.trigger import dependency, reconciler, subscription

SYSTEM = "kevents-system"
REPO = pathlib.Path(__file__).resolve().parents[2]


def configmap(data: dict[str, str], name: str = "cm", namespace: str = "ns") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace}, "data": data}


UID = "8a3c5f2e-1b2d-4c3e-9f4a-5b6c7d8e9f01"


def test_subscription_name_is_broker_trigger_uid_when_it_fits() -> None:
    assert subscription.name("default", "orders", UID) == f"default-orders-{UID}"


def test_long_subscription_name_is_cut_to_63_with_a_stable_hash() -> None:
    got = subscription.name("default", "a-very-long-trigger-name-for-orders", UID)
    # md5("default-a-very-long-trigger-name-for-orders-<uid>"), as `md5sum` prints it
    assert got == "default-a-very-long-trigger-nam" + "d6472f1ddbb31e1c6b511ead4207d271"
    assert len(got) == 63
    other = subscription.name("default", "a-very-long-trigger-name-for-orderz", UID)
    assert other != got and len(other) == 63


DEFAULTS = """
clusterDefault:
  brokerClass: MTChannelBasedBroker
  apiVersion: v1
  kind: ConfigMap
  name: config-br-default-channel
  namespace: kevents-system
  delivery: {retry: 3}
namespaceDefaults:
  team-a:
    brokerClass: Kafka
  team-b:
    apiVersion: v1
    kind: ConfigMap
    name: team-b-channel
"""
FALLBACK = {"apiVersion": "v1", "kind": "ConfigMap", "name": "config-br-default-channel",
            "namespace": SYSTEM}  # fmt: skip
CLUSTER = dict(FALLBACK)

DEFAULT_CASES = {
    "no-configmap": (None, "any", defaults.BrokerDefaults("MTChannelBasedBroker", FALLBACK)),
    "empty-key": ({}, "any", defaults.BrokerDefaults("MTChannelBasedBroker", FALLBACK)),
    "cluster-default": (
        {"default-br-config": DEFAULTS}, "other",
        defaults.BrokerDefaults("MTChannelBasedBroker", CLUSTER, {"retry": 3}),
    ),
    "namespace-class-only": (
        {"default-br-config": DEFAULTS}, "team-a",
        defaults.BrokerDefaults("Kafka", CLUSTER, {"retry": 3}),
    ),
    "namespace-config-in-own-namespace": (
        {"default-br-config": DEFAULTS}, "team-b",
        defaults.BrokerDefaults(
            "MTChannelBasedBroker",
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "team-b-channel",
             "namespace": "team-b"},
        ),
    ),
}  # fmt: skip


@pytest.mark.parametrize(
    ("data", "namespace", "want"), DEFAULT_CASES.values(), ids=DEFAULT_CASES.keys()
)
def test_broker_defaults_from_config_br_defaults(
    data: dict[str, str] | None, namespace: str, want: defaults.BrokerDefaults
) -> None:
    cm = None if data is None else configmap(data)
    assert defaults.defaults_for(cm, namespace, SYSTEM) == want


@pytest.mark.parametrize("raw", ["clusterDefault: [", "- a list"], ids=["not-yaml", "not-map"])
def test_bad_config_br_defaults_is_an_error(raw: str) -> None:
    with pytest.raises(defaults.DefaultsError, match="config-br-defaults/default-br-config"):
        defaults.defaults_for(configmap({"default-br-config": raw}), "ns", SYSTEM)


def test_channel_template_with_spec() -> None:
    raw = (
        "apiVersion: messaging.knative.dev/v1\nkind: InMemoryChannel\n"
        "spec:\n  delivery: {retry: 2}\n"
    )
    assert defaults.channel_template(configmap({"channel-template-spec": raw})) == {
        "apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel",
        "spec": {"delivery": {"retry": 2}},
    }  # fmt: skip


TEMPLATE_ERRORS = {
    "missing-key": ({}, "ConfigMap ns/cm has no channel-template-spec"),
    "not-yaml": ({"channel-template-spec": "kind: ["},
                 "ConfigMap ns/cm: channel-template-spec is not YAML"),
    "no-kind": ({"channel-template-spec": "apiVersion: v1"},
                "ConfigMap ns/cm: channel-template-spec needs apiVersion and kind"),
}  # fmt: skip


@pytest.mark.parametrize(("data", "message"), TEMPLATE_ERRORS.values(), ids=TEMPLATE_ERRORS.keys())
def test_unusable_channel_template_says_why(data: dict[str, str], message: str) -> None:
    with pytest.raises(defaults.TemplateError) as caught:
        defaults.channel_template(configmap(data))
    assert str(caught.value).startswith(message)


CONFIGS = {
    "ok": ({"apiVersion": "v1", "kind": "ConfigMap", "name": "a", "namespace": "b"}, None),
    "secret": ({"apiVersion": "v1", "kind": "Secret", "name": "a", "namespace": "b"},
               "Broker.Spec.Config configuration not supported, only "
               "[kind: ConfigMap, apiVersion: v1]"),
    "no-namespace": ({"apiVersion": "v1", "kind": "ConfigMap", "name": "a"},
                     "Broker.Spec.Config name and namespace are required"),
}  # fmt: skip


@pytest.mark.parametrize(("config", "problem"), CONFIGS.values(), ids=CONFIGS.keys())
def test_broker_config_must_be_a_configmap(config: dict[str, str], problem: str | None) -> None:
    assert defaults.config_problem(config) == problem


BROKER = {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
          "metadata": {"name": "default", "namespace": "shop", "uid": "b-uid"}}  # fmt: skip


def test_trigger_channel_is_the_dispatcher_contract() -> None:
    template = {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel",
                "spec": {"delivery": {"retry": 1}}}  # fmt: skip
    assert resources.trigger_channel(BROKER, template) == {  # type: ignore[arg-type]
        "apiVersion": "messaging.knative.dev/v1",
        "kind": "InMemoryChannel",
        "metadata": {
            "name": "default-kne-trigger",
            "namespace": "shop",
            "labels": {"eventing.knative.dev/broker": "default",
                       "eventing.knative.dev/brokerEverything": "true"},
            "ownerReferences": [{"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
                                 "name": "default", "uid": "b-uid", "controller": True,
                                 "blockOwnerDeletion": True}],
            "annotations": {"eventing.knative.dev/scope": "cluster"},
        },
        "spec": {"delivery": {"retry": 1}},
    }  # fmt: skip


def test_broker_address_is_the_shared_ingress_with_its_path() -> None:
    url = resources.ingress_url("broker-ingress", SYSTEM, "shop", "default")
    assert url == "http://broker-ingress.kevents-system.svc.cluster.local/shop/default"


TRIGGER = {"metadata": {"name": "orders", "namespace": "shop", "uid": UID}}
DLS = {"deadLetterSinkUri": "http://dls.shop.svc.cluster.local"}
DELIVERIES = {
    "none": (None, None, None, None),
    "trigger-wins": ({"retry": 1}, {"retry": 9}, None, {"retry": 1}),
    "broker-fallback": (None, {"retry": 9}, None, {"retry": 9}),
    "dls-ref-replaced-by-uri": (
        {"retry": 1, "deadLetterSink": {"ref": {"kind": "Service", "name": "dls"}}}, None, DLS,
        {"retry": 1, "deadLetterSink": {"uri": "http://dls.shop.svc.cluster.local"}},
    ),
    "broker-dls-into-trigger-delivery": (
        {"retry": 1}, {"deadLetterSink": {"uri": "http://x"}}, DLS,
        {"retry": 1, "deadLetterSink": {"uri": "http://dls.shop.svc.cluster.local"}},
    ),
    "dls-with-ca-and-audience": (
        None, {"deadLetterSink": {"uri": "https://x"}},
        {"deadLetterSinkUri": "https://x", "deadLetterSinkCACerts": "PEM",
         "deadLetterSinkAudience": "aud"},
        {"deadLetterSink": {"uri": "https://x", "CACerts": "PEM", "audience": "aud"}},
    ),
}  # fmt: skip


@pytest.mark.parametrize(
    ("own", "brokers", "dls", "want"), DELIVERIES.values(), ids=DELIVERIES.keys()
)
def test_subscription_delivery(
    own: dict[str, Any] | None,
    brokers: dict[str, Any] | None,
    dls: Any,
    want: dict[str, Any] | None,
) -> None:
    assert subscription.delivery(own, brokers, dls) == want


def test_subscription_is_the_dispatcher_contract() -> None:
    channel = {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel",
               "name": "default-kne-trigger"}  # fmt: skip
    filter_uri = subscription.filter_uri("broker-filter", SYSTEM, TRIGGER)
    assert filter_uri == (
        f"http://broker-filter.kevents-system.svc.cluster.local/triggers/shop/orders/{UID}"
    )
    reply = "http://broker-ingress.kevents-system.svc.cluster.local/shop/default"
    got = subscription.subscription(TRIGGER, "default", channel, filter_uri, reply, {"retry": 2})
    assert got == {
        "apiVersion": "messaging.knative.dev/v1",
        "kind": "Subscription",
        "metadata": {
            "name": f"default-orders-{UID}",
            "namespace": "shop",
            "labels": {"eventing.knative.dev/broker": "default",
                       "eventing.knative.dev/trigger": "orders"},
            "ownerReferences": [{"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
                                 "name": "orders", "uid": UID, "controller": True,
                                 "blockOwnerDeletion": True}],
        },
        "spec": {
            "channel": channel,
            "subscriber": {"uri": filter_uri},
            "reply": {"uri": reply},
            "delivery": {"retry": 2},
        },
    }  # fmt: skip


def test_broker_channel_ref_is_read_from_status_annotations() -> None:
    template = {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel"}
    annotations = resources.channel_annotations(template, "default-kne-trigger", "http://c")  # type: ignore[arg-type]
    assert annotations == {
        "knative.dev/channelAddress": "http://c",
        "knative.dev/channelAPIVersion": "messaging.knative.dev/v1",
        "knative.dev/channelKind": "InMemoryChannel",
        "knative.dev/channelName": "default-kne-trigger",
    }
    assert resources.channel_ref({"status": {"annotations": annotations}}) == {
        "apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel",
        "name": "default-kne-trigger",
    }  # fmt: skip
    assert resources.channel_ref({"status": {}}) is None


FILTERS = {
    "valid": ({"filters": [{"any": [{"exact": {"type": "a"}}, {"cesql": "source = 'x'"}]}]}, []),
    "nested-two-dialects": (
        {"filters": [{"all": [{"exact": {"type": "a"}, "prefix": {"type": "b"}}]}]},
        ["spec.filters[0].all[0]: exactly one of exact, prefix, suffix, all, any, not, cesql "
         "must be set, found exact, prefix"],
    ),
    "cesql-syntax": (
        {"filters": [{"not": {"cesql": "type = "}}]},
        ["spec.filters[0].not.cesql: "],
    ),
}  # fmt: skip


@pytest.mark.parametrize(("spec", "want"), FILTERS.values(), ids=FILTERS.keys())
def test_filter_problems_reach_what_cel_cannot(spec: dict[str, Any], want: list[str]) -> None:
    problems = reconciler.filter_problems(spec)
    assert len(problems) == len(want)
    for got, prefix in zip(problems, want, strict=True):
        assert got.startswith(prefix)


BROKER_NAMES = {
    "broker": ({"broker": "b"}, "b"),
    "ref-same-namespace": ({"brokerRef": {"kind": "Broker", "name": "r"}}, "r"),
    "ref-explicit-same": ({"brokerRef": {"kind": "Broker", "name": "r", "namespace": "shop"}}, "r"),
    "ref-other-namespace": ({"brokerRef": {"kind": "Broker", "name": "r", "namespace": "x"}}, None),
}  # fmt: skip


@pytest.mark.parametrize(("spec", "want"), BROKER_NAMES.values(), ids=BROKER_NAMES.keys())
def test_broker_name_of_trigger(spec: dict[str, Any], want: str | None) -> None:
    assert reconciler.broker_name({**TRIGGER, "spec": spec}) == want


def test_dependency_annotation() -> None:
    raw = '{"kind": "PingSource", "name": "beat", "apiVersion": "sources.knative.dev/v1"}'
    assert dependency.parse(raw) == dependency.Dependency(
        "sources.knative.dev/v1", "PingSource", "beat"
    )
    with pytest.raises(dependency.DependencyError, match="missing field"):
        dependency.parse('{"kind": "PingSource"}')
    with pytest.raises(dependency.DependencyError):
        dependency.parse("not json")


INJECTION = {
    "new-label": ({"eventing.knative.dev/injection": "enabled"}, True),
    "old-label": ({"knative-eventing-injection": "enabled"}, True),
    "disabled": ({"eventing.knative.dev/injection": "disabled"}, False),
    "none": (None, False),
}


@pytest.mark.parametrize(("marks", "want"), INJECTION.values(), ids=INJECTION.keys())
def test_injection_enabled(marks: dict[str, str] | None, want: bool) -> None:
    assert injection.enabled(marks) is want


def test_injected_broker() -> None:
    assert injection.broker("shop", "default", "MTChannelBasedBroker") == {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Broker",
        "metadata": {
            "name": "default", "namespace": "shop",
            "labels": {"eventing.knative.dev/injected": "true"},
            "annotations": {"eventing.knative.dev/broker.class": "MTChannelBasedBroker"},
        },
    }  # fmt: skip


def test_the_shipped_config_br_defaults_gives_knatives_default_delivery() -> None:
    """rekt TestBrokerDefaultDelivery: a Broker naming no config and no delivery gets
    Knative's shipped default (config/core/configmaps/default-broker.yaml)."""
    docs = yaml.safe_load_all((REPO / "manifests" / "400-config.yaml").read_text())
    shipped = next(d for d in docs if d and d["metadata"]["name"] == "config-br-defaults")
    found = defaults.defaults_for(shipped, "any", "kevents-system")
    assert found.delivery == {"retry": 10, "backoffPolicy": "exponential", "backoffDelay": "PT0.2S"}


def test_the_trigger_channel_carries_the_brokers_messaging_annotations() -> None:
    """Knative v0.49's MT broker: `eventing.knative.dev/scope: cluster` and the Broker's
    `messaging.knative.dev*` annotations on the trigger channel (rekt
    TestBrokerPropagatesMetadata), nothing else of the Broker's."""
    broker = {
        "metadata": {
            "name": "b", "namespace": "n", "uid": "u",
            "annotations": {
                "eventing.knative.dev/broker.class": "MTChannelBasedBroker",
                "messaging.knative.dev/async-handler": "false",
                "team": "a",
            },
        },
    }  # fmt: skip
    template: backing.TemplateDict = {"apiVersion": "messaging.knative.dev/v1",
                                      "kind": "InMemoryChannel"}  # fmt: skip
    channel = resources.trigger_channel(broker, template)
    assert channel["metadata"]["annotations"] == {
        "eventing.knative.dev/scope": "cluster",
        "messaging.knative.dev/async-handler": "false",
    }
