"""Broker, Trigger and Broker injection controllers against the real apiserver, in-process.

The dispatcher's part is played by the test: a stand-in dispatcher (`controllers.DISPATCHER`)
and hand-written ready EndpointSlices of `broker-ingress` / `broker-filter`, and the
InMemoryChannel's `status.subscribers` report, patched like the dispatcher does. The test
namespace is also the system namespace.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client

from controller.broker import defaults, resources
from controller.inmemorychannel import service
from controller.trigger import subscription
from kevents import kubeapi
from tests.cluster import REPO, Kube
from tests.integration import controllers as c

pytestmark = pytest.mark.cluster

BROKERS, TRIGGERS, SUBS = defaults.BROKERS, subscription.TRIGGERS, subscription.SUBSCRIPTIONS
IMCS = service.INMEMORYCHANNELS
ALL = ["Namespace", "Broker", "Trigger", "InMemoryChannel", "Subscription"]

CHANNEL_CONFIG = """
apiVersion: v1
kind: ConfigMap
metadata: {name: config-br-default-channel}
data:
  channel-template-spec: |
    apiVersion: messaging.knative.dev/v1
    kind: InMemoryChannel
"""
BROKER_ENDPOINTS = """
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: broker-ingress-fake
  labels:
    kubernetes.io/service-name: broker-ingress
    endpointslice.kubernetes.io/managed-by: kevents-tests
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints: [{addresses: ["10.244.0.251"], conditions: {ready: true}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: broker-filter-fake
  labels:
    kubernetes.io/service-name: broker-filter
    endpointslice.kubernetes.io/managed-by: kevents-tests
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints: [{addresses: ["10.244.0.252"], conditions: {ready: true}}]
"""
SERVICES = """
apiVersion: v1
kind: Service
metadata: {name: handler}
spec: {ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: trigger-dls}
spec: {ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: broker-dls}
spec: {ports: [{port: 80, targetPort: 8080}]}
"""
BROKER = """
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: shop}
spec:
  delivery:
    retry: 4
    backoffPolicy: exponential
    backoffDelay: PT0.5S
    deadLetterSink: {ref: {apiVersion: v1, kind: Service, name: broker-dls}}
"""


def trigger_yaml(name: str, extra: str = "", *, broker: str = "shop") -> str:
    return f"""
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {{name: {name}}}
spec:
  broker: {broker}
  subscriber:
    ref: {{apiVersion: v1, kind: Service, name: handler}}
    uri: /orders
{extra}
"""


@pytest.fixture(scope="module")
def crds(kube: Kube) -> None:
    kube.install_crds(
        "brokers.eventing.knative.dev",
        "triggers.eventing.knative.dev",
        "subscriptions.messaging.knative.dev",
        "inmemorychannels.messaging.knative.dev",
    )


def dispatcher_side(kube: Kube, namespace: str) -> None:
    """Everything a Broker needs to become Ready, as the installed dispatcher provides it."""
    kube.apply(CHANNEL_CONFIG + "---" + c.DISPATCHER + "---" + BROKER_ENDPOINTS, namespace)


def report_ready(kube: Kube, namespace: str, imc: dict[str, Any]) -> None:
    """What the dispatcher does once it serves the subscribers: status.subscribers[]."""
    reports = [{"uid": s["uid"], "observedGeneration": s["generation"], "ready": "True"}
               for s in imc.get("spec", {}).get("subscribers", [])]  # fmt: skip
    kube.kubectl("patch", "inmemorychannel", imc["metadata"]["name"], "-n", namespace,
                 "--subresource=status", "--type=merge",
                 "-p", json.dumps({"status": {"subscribers": reports}}))  # fmt: skip


def ready(obj: dict[str, Any]) -> bool:
    return c.condition(obj, "Ready").get("status") == "True"


def ingress(namespace: str, broker: str) -> str:
    return f"http://broker-ingress.{namespace}.svc.cluster.local/{namespace}/{broker}"


async def test_labelled_namespace_gets_a_ready_default_broker_and_gets_it_back(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    api = kubeapi.KubeApi(api_client)
    dispatcher_side(kube, namespace)
    kube.kubectl("label", "namespace", namespace, "eventing.knative.dev/injection=enabled")
    async with c.running(api_client, namespace, ["Namespace", "Broker", "InMemoryChannel"]):
        broker = await c.eventually(lambda: api.get(BROKERS, namespace, "default"), ready)
        meta = broker["metadata"]
        assert meta["labels"] == {"eventing.knative.dev/injected": "true"}
        assert meta["annotations"]["eventing.knative.dev/broker.class"] == "MTChannelBasedBroker"
        assert broker["spec"]["config"] == {
            "apiVersion": "v1", "kind": "ConfigMap", "name": "config-br-default-channel",
            "namespace": namespace,
        }  # fmt: skip
        url = ingress(namespace, "default")
        channel_url = f"http://default-kne-trigger-kn-channel.{namespace}.svc.cluster.local"
        status = broker["status"]
        assert status["address"] == {"name": "http", "url": url}
        assert status["addresses"] == [{"name": "http", "url": url}]
        assert status["annotations"] == {
            "knative.dev/channelAddress": channel_url,
            "knative.dev/channelAPIVersion": "messaging.knative.dev/v1",
            "knative.dev/channelKind": "InMemoryChannel",
            "knative.dev/channelName": "default-kne-trigger",
        }
        assert c.statuses(broker) == {
            "Addressable": "True", "DeadLetterSinkResolved": "True", "EventPoliciesReady": "True",
            "FilterReady": "True", "IngressReady": "True", "TriggerChannelReady": "True",
            "Ready": "True",
        }  # fmt: skip
        assert c.condition(broker, "DeadLetterSinkResolved")["reason"] == (
            "DeadLetterSinkNotConfigured"
        )
        imc = await api.get(IMCS, namespace, "default-kne-trigger")
        assert imc["metadata"]["labels"] == {
            "eventing.knative.dev/broker": "default",
            "eventing.knative.dev/brokerEverything": "true",
        }
        owner = imc["metadata"]["ownerReferences"]
        assert [(o["kind"], o["name"], o["uid"], o["controller"]) for o in owner] == [
            ("Broker", "default", meta["uid"], True)
        ]
        printed = kube.kubectl("get", "broker", "default", "-n", namespace).stdout
        assert url in printed

        # Deleted while the label stays: Knative's sugar controller makes it again.
        kube.kubectl("delete", "broker", "default", "-n", namespace)
        again = await c.eventually(
            lambda: api.get(BROKERS, namespace, "default"),
            lambda b: b["metadata"]["uid"] != meta["uid"],
        )
        assert again["metadata"]["labels"] == {"eventing.knative.dev/injected": "true"}


async def test_a_trigger_channel_name_taken_by_a_foreign_channel_is_left_alone(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    """An InMemoryChannel the Broker does not control already has its trigger channel's name:
    TriggerChannelReady False NotOwned (the reason and message every kind gives), the
    Broker not Ready, the foreign channel unchanged and not adopted."""
    api = kubeapi.KubeApi(api_client)
    taken = resources.trigger_channel_name("shop")
    kube.apply(
        "apiVersion: messaging.knative.dev/v1\nkind: InMemoryChannel\n"
        f"metadata: {{name: {taken}, labels: {{mine: 'yes'}}}}\n",
        namespace,
    )
    dispatcher_side(kube, namespace)
    kube.apply(SERVICES + "---" + BROKER, namespace)
    async with c.running(api_client, namespace, ["Broker", "InMemoryChannel"]):
        broker = await c.eventually(
            lambda: api.get(BROKERS, namespace, "shop"),
            lambda b: c.condition(b, "TriggerChannelReady").get("status") == "False",
        )
    channel = c.condition(broker, "TriggerChannelReady")
    assert channel["reason"] == "NotOwned"
    assert channel["message"] == (
        f"There is an existing InMemoryChannel '{taken}' that we do not own "
        "(Broker 'shop' is not its controller)."
    )
    assert c.condition(broker, "Ready")["status"] == "False"
    foreign = await api.get(IMCS, namespace, taken)
    assert "ownerReferences" not in foreign["metadata"]
    assert foreign["metadata"]["labels"] == {"mine": "yes"}


async def test_broker_conditions_say_what_is_missing_until_it_is_there(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    api = kubeapi.KubeApi(api_client)
    kube.apply(SERVICES + "---" + BROKER, namespace)
    async with c.running(api_client, namespace, ["Broker", "InMemoryChannel"]):
        broker = await c.eventually(
            lambda: api.get(BROKERS, namespace, "shop"),
            lambda b: c.condition(b, "TriggerChannelReady").get("status") == "False",
        )
        assert broker["metadata"]["annotations"]["eventing.knative.dev/broker.class"] == (
            "MTChannelBasedBroker"
        )
        channel = c.condition(broker, "TriggerChannelReady")
        assert channel["reason"] == "ChannelTemplateFailed"
        assert channel["message"] == (
            'Error on setting up the ChannelTemplate: configmap "config-br-default-channel" '
            f"not found in namespace {namespace}"
        )
        for kind, svc in (("IngressReady", "broker-ingress"), ("FilterReady", "broker-filter")):
            cond = c.condition(broker, kind)
            assert (cond["status"], cond["reason"], cond["message"]) == (
                "False",
                "EndpointsUnavailable",
                f'Endpoints "{svc}" are unavailable.',
            )
        assert broker["status"]["deadLetterSinkUri"] == c.service_url("broker-dls", namespace)
        assert c.condition(broker, "Ready")["status"] == "False"

        kube.apply(CHANNEL_CONFIG + "---" + c.DISPATCHER, namespace)
        broker = await c.eventually(
            lambda: api.get(BROKERS, namespace, "shop"),
            lambda b: c.condition(b, "TriggerChannelReady").get("status") == "True",
        )
        assert c.condition(broker, "IngressReady")["status"] == "False"
        assert c.condition(broker, "Ready")["status"] == "False"

        kube.apply(BROKER_ENDPOINTS, namespace)
        broker = await c.eventually(lambda: api.get(BROKERS, namespace, "shop"), ready)
        assert broker["status"]["address"]["url"] == ingress(namespace, "shop")

        # A config without namespace is the ConfigMap of the Broker's own namespace.
        kube.apply("apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: local}\n"
                   "spec: {config: {apiVersion: v1, kind: ConfigMap, "
                   "name: config-br-default-channel}}\n", namespace)  # fmt: skip
        local = await c.eventually(lambda: api.get(BROKERS, namespace, "local"), ready)
        assert local["spec"]["config"] == {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": "config-br-default-channel",
        }

        # Knative YAML names Knative's system namespace: it means the one kevents runs in.
        kube.apply("apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: knative}\n"
                   "spec: {config: {apiVersion: v1, kind: ConfigMap, "
                   "name: config-br-default-channel, namespace: knative-eventing}}\n",
                   namespace)  # fmt: skip
        await c.eventually(lambda: api.get(BROKERS, namespace, "knative"), ready)

        # The filter's pods go away: the Broker is not Ready any more.
        kube.kubectl("delete", "endpointslice", "broker-filter-fake", "-n", namespace)
        broker = await c.eventually(
            lambda: api.get(BROKERS, namespace, "shop"),
            lambda b: c.condition(b, "FilterReady").get("status") == "False",
        )
        assert c.condition(broker, "Ready")["reason"] == "EndpointsUnavailable"


async def test_trigger_subscription_is_the_dispatcher_contract(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    api = kubeapi.KubeApi(api_client)
    dispatcher_side(kube, namespace)
    own_delivery = """
  filter: {attributes: {type: order.created}}
  delivery:
    retry: 2
    deadLetterSink: {ref: {apiVersion: v1, kind: Service, name: trigger-dls}}
"""
    kube.apply(SERVICES + "---" + BROKER + "---" + trigger_yaml("orders", own_delivery)
               + "---" + trigger_yaml("audit"), namespace)  # fmt: skip
    async with c.running(api_client, namespace, ALL):
        orders = await c.eventually(
            lambda: api.get(TRIGGERS, namespace, "orders"),
            lambda t: (
                c.condition(t, "SubscriptionReady").get("status") == "Unknown"
                and "subscriberUri" in t.get("status", {})
            ),
        )
        audit = await c.eventually(
            lambda: api.get(TRIGGERS, namespace, "audit"),
            lambda t: (
                c.condition(t, "BrokerReady").get("status") == "True"
                and "deadLetterSinkUri" in t.get("status", {})
            ),
        )
        uid = orders["metadata"]["uid"]
        assert orders["metadata"]["labels"] == {"eventing.knative.dev/broker": "shop"}
        subscriber = c.service_url("handler", namespace) + "/orders"
        assert orders["status"]["subscriberUri"] == subscriber
        assert orders["status"]["deadLetterSinkUri"] == c.service_url("trigger-dls", namespace)
        sub = await c.eventually(
            lambda: api.get(SUBS, namespace, f"shop-orders-{uid}"), lambda s: True
        )
        assert sub["metadata"]["labels"] == {
            "eventing.knative.dev/broker": "shop",
            "eventing.knative.dev/trigger": "orders",
        }
        assert [
            (o["kind"], o["name"], o["uid"], o["controller"])
            for o in sub["metadata"]["ownerReferences"]
        ] == [("Trigger", "orders", uid, True)]
        assert sub["spec"] == {
            "channel": {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel",
                        "name": "shop-kne-trigger"},
            "subscriber": {"uri": f"http://broker-filter.{namespace}.svc.cluster.local"
                                  f"/triggers/{namespace}/orders/{uid}"},
            "reply": {"uri": ingress(namespace, "shop")},
            "delivery": {"retry": 2,
                         "deadLetterSink": {"uri": c.service_url("trigger-dls", namespace)}},
        }  # fmt: skip

        # No delivery of its own: the Broker's, with the dead letter sink the Broker resolved.
        audit_uid = audit["metadata"]["uid"]
        assert audit["status"]["deadLetterSinkUri"] == c.service_url("broker-dls", namespace)
        audit_sub = await c.eventually(
            lambda: api.get(SUBS, namespace, f"shop-audit-{audit_uid}"), lambda s: True
        )
        assert audit_sub["spec"]["delivery"] == {
            "retry": 4, "backoffPolicy": "exponential", "backoffDelay": "PT0.5S",
            "deadLetterSink": {"uri": c.service_url("broker-dls", namespace)},
        }  # fmt: skip

        # The dispatcher reports the subscribers: Subscriptions and Triggers become Ready.
        async def reported() -> dict[str, Any]:
            report_ready(kube, namespace, await api.get(IMCS, namespace, "shop-kne-trigger"))
            return await api.get(TRIGGERS, namespace, "orders")

        orders = await c.eventually(reported, ready)
        assert c.statuses(orders) == {
            "BrokerReady": "True", "DeadLetterSinkResolved": "True", "DependencyReady": "True",
            "OIDCIdentityCreated": "True", "Ready": "True", "SubscriberResolved": "True",
            "SubscriptionReady": "True",
        }  # fmt: skip
        printed = kube.kubectl("get", "trigger", "orders", "-n", namespace).stdout
        assert subscriber in printed and "shop" in printed

        # The subscriber moves: status.subscriberUri follows (the dispatcher reads it).
        kube.kubectl("patch", "trigger", "orders", "-n", namespace, "--type=merge",
                     "-p", json.dumps({"spec": {"subscriber": {"uri": "/v2"}}}))  # fmt: skip
        orders = await c.eventually(
            lambda: api.get(TRIGGERS, namespace, "orders"),
            lambda t: t["status"].get("subscriberUri", "").endswith("/v2"),
        )
        assert orders["status"]["subscriberUri"] == c.service_url("handler", namespace) + "/v2"


async def test_trigger_waits_for_its_broker_then_proceeds(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    api = kubeapi.KubeApi(api_client)
    dispatcher_side(kube, namespace)
    kube.apply(SERVICES + "---" + trigger_yaml("orders"), namespace)
    async with c.running(api_client, namespace, ALL):
        orders = await c.eventually(
            lambda: api.get(TRIGGERS, namespace, "orders"),
            lambda t: c.condition(t, "BrokerReady").get("status") == "False",
        )
        cond = c.condition(orders, "BrokerReady")
        assert (cond["reason"], cond["message"]) == (
            "BrokerDoesNotExist",
            'Broker "shop" does not exist',
        )
        assert c.condition(orders, "Ready")["status"] == "False"
        listed = await api.request("GET", SUBS.path(namespace))
        assert listed["items"] == []

        kube.apply(BROKER, namespace)
        orders = await c.eventually(
            lambda: api.get(TRIGGERS, namespace, "orders"),
            lambda t: c.condition(t, "BrokerReady").get("status") == "True",
        )
        uid = orders["metadata"]["uid"]
        sub = await c.eventually(
            lambda: api.get(SUBS, namespace, f"shop-orders-{uid}"), lambda s: True
        )
        assert sub["spec"]["channel"]["name"] == "shop-kne-trigger"

        # A dependency that does not exist holds the Trigger back.
        ref = {"apiVersion": "sources.knative.dev/v1", "kind": "PingSource", "name": "beat"}
        kube.kubectl("annotate", "trigger", "orders", "-n", namespace,
                     f"knative.dev/dependency={json.dumps(ref)}")  # fmt: skip
        orders = await c.eventually(
            lambda: api.get(TRIGGERS, namespace, "orders"),
            lambda t: c.condition(t, "DependencyReady").get("status") == "False",
        )
        assert c.condition(orders, "DependencyReady")["reason"] == "DependencyDoesNotExist"


async def test_invalid_nested_filter_is_reported_and_has_no_subscription(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    api = kubeapi.KubeApi(api_client)
    dispatcher_side(kube, namespace)
    valid = "  filters: [{any: [{exact: {type: a}}, {cesql: \"source LIKE 'shop/%'\"}]}]\n"
    kube.apply(SERVICES + "---" + BROKER + "---" + trigger_yaml("orders", valid), namespace)
    async with c.running(api_client, namespace, ALL):
        orders = await c.eventually(
            lambda: api.get(TRIGGERS, namespace, "orders"),
            lambda t: c.condition(t, "BrokerReady").get("status") == "True",
        )
        name = f"shop-orders-{orders['metadata']['uid']}"
        await c.eventually(lambda: api.get(SUBS, namespace, name), lambda s: True)

        nested = [{"all": [{"exact": {"type": "a"}, "prefix": {"type": "b"}}]},
                  {"not": {"cesql": "type = "}}]  # fmt: skip
        kube.kubectl("patch", "trigger", "orders", "-n", namespace, "--type=merge",
                     "-p", json.dumps({"spec": {"filters": nested}}))  # fmt: skip
        orders = await c.eventually(
            lambda: api.get(TRIGGERS, namespace, "orders"),
            lambda t: c.condition(t, "SubscriptionReady").get("reason") == "FilterInvalid",
        )
        cond = c.condition(orders, "SubscriptionReady")
        assert cond["status"] == "False"
        first, second = cond["message"].split("; ")
        assert first == (
            "spec.filters[0].all[0]: exactly one of exact, prefix, suffix, all, any, not, cesql "
            "must be set, found exact, prefix"
        )
        assert second.startswith("spec.filters[1].not.cesql: ")
        assert c.condition(orders, "Ready")["reason"] == "FilterInvalid"
        await c.eventually(
            lambda: api.request("GET", SUBS.path(namespace)),
            lambda listed: listed["items"] == [],
        )

        # Fixed while the Broker is not Ready: no stale FilterInvalid, no Subscription yet.
        kube.kubectl("delete", "endpointslice", "broker-ingress-fake", "-n", namespace)
        await c.eventually(
            lambda: api.get(TRIGGERS, namespace, "orders"),
            lambda t: c.condition(t, "BrokerReady").get("status") == "False",
        )
        kube.kubectl("patch", "trigger", "orders", "-n", namespace, "--type=json",
                     "-p", '[{"op": "remove", "path": "/spec/filters"}]')  # fmt: skip
        orders = await c.eventually(
            lambda: api.get(TRIGGERS, namespace, "orders"),
            lambda t: c.condition(t, "SubscriptionReady").get("status") == "Unknown",
        )
        assert c.condition(orders, "SubscriptionReady")["reason"] == "SubscriptionNotConfigured"
        assert (await api.request("GET", SUBS.path(namespace)))["items"] == []
        kube.apply(BROKER_ENDPOINTS, namespace)
        await c.eventually(lambda: api.get(SUBS, namespace, name), lambda s: True)


CEL_CASES = {
    "attribute-key": (
        "  filter: {attributes: {Type: order}}\n",
        "spec.filter.attributes keys must start with a lowercase letter",
    ),
    "two-dialects": (
        "  filters: [{exact: {type: a}, suffix: {source: b}}]\n",
        "each spec.filters entry must set exactly one of exact, prefix, suffix, all, any, not, "
        "cesql",
    ),
    "exact-no-attribute": (
        "  filters: [{exact: {}}]\n",
        "spec.filters[].exact must have at least one attribute",
    ),
    "prefix-empty-value": (
        "  filters: [{prefix: {type: ''}}]\n",
        "spec.filters[].prefix values must not be empty",
    ),
    "exact-key": (
        "  filters: [{exact: {Type: a}}]\n",
        "spec.filters[].exact keys must start with a lowercase letter",
    ),
}


@pytest.mark.parametrize(("extra", "message"), CEL_CASES.values(), ids=CEL_CASES.keys())
def test_crd_rejects_invalid_filters(
    kube: Kube, crds: None, namespace: str, extra: str, message: str
) -> None:
    proc = kube.kubectl(
        "apply", "-n", namespace, "-f", "-", input=trigger_yaml("bad", extra), check=False
    )
    assert proc.returncode != 0
    assert message in proc.stderr


def test_crd_accepts_several_attributes_in_one_dialect(
    kube: Kube, crds: None, namespace: str
) -> None:
    """rekt TestMTChannelBrokerNewTriggerFilters: exact, prefix and suffix with several
    attributes (all must match) are valid Triggers, as in Knative."""
    extra = (
        "  filters: [{exact: {type: a, source: b}}, {prefix: {type: a, subject: b}}, "
        "{suffix: {type: a, id: b}}]\n"
    )
    kube.apply(trigger_yaml("several", extra), namespace)


def test_crd_defaults_the_filter_to_match_everything(
    kube: Kube, crds: None, namespace: str
) -> None:
    """Knative's TriggerSpec.SetDefaults (rekt TestTriggerDefaulting): `spec.filter: {}` when
    absent, written by the apiserver itself (the defaulting webhook writes it too)."""
    out = kube.kubectl(
        "apply", "--dry-run=server", "-o", "json", "-n", namespace, "-f", "-",
        input=trigger_yaml("plain"),
    )  # fmt: skip
    assert json.loads(out.stdout)["spec"]["filter"] == {}


def test_crd_keeps_spec_broker_immutable(kube: Kube, crds: None, namespace: str) -> None:
    kube.apply(trigger_yaml("orders"), namespace)
    proc = kube.kubectl(
        "apply", "-n", namespace, "-f", "-", input=trigger_yaml("orders", broker="other"),
        check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "spec.broker is immutable: create a new Trigger" in proc.stderr


async def test_injection_annotation_on_trigger_creates_its_broker(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    api = kubeapi.KubeApi(api_client)
    dispatcher_side(kube, namespace)
    annotated = trigger_yaml("orders", broker="events").replace(
        "metadata: {name: orders}",
        "metadata:\n  name: orders\n  annotations: {eventing.knative.dev/injection: enabled}",
    )
    kube.apply(SERVICES + "---" + annotated, namespace)
    async with c.running(api_client, namespace, ALL):
        broker = await c.eventually(lambda: api.get(BROKERS, namespace, "events"), ready)
        assert broker["metadata"]["labels"] == {"eventing.knative.dev/injected": "true"}
        orders = await c.eventually(
            lambda: api.get(TRIGGERS, namespace, "orders"),
            lambda t: c.condition(t, "BrokerReady").get("status") == "True",
        )
        uid = orders["metadata"]["uid"]
        sub = await c.eventually(
            lambda: api.get(SUBS, namespace, f"events-orders-{uid}"), lambda s: True
        )
        assert sub["spec"]["reply"] == {"uri": ingress(namespace, "events")}


async def test_broker_and_triggers_of_another_class_are_left_alone(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    """A class no controller of ours serves (not MTChannelBasedBroker, not Kafka, which is ours
    since the Kafka Broker class): its Broker and its Triggers get no status, no defaults, no
    Subscription and no trigger channel, as Knative's class-filtered reconcilers."""
    api = kubeapi.KubeApi(api_client)
    dispatcher_side(kube, namespace)
    other = BROKER.replace(
        "metadata: {name: shop}",
        "metadata:\n  name: shop\n"
        "  annotations: {eventing.knative.dev/broker.class: RabbitMQBroker}",
    )
    kube.apply(SERVICES + "---" + other + "---" + trigger_yaml("orders"), namespace)
    async with c.running(api_client, namespace, ALL) as mgr:
        await c.eventually(
            lambda: api.get(TRIGGERS, namespace, "orders"),
            lambda t: t["metadata"].get("labels") == {"eventing.knative.dev/broker": "shop"},
        )
        # One more full pass of each, whatever the workers did meanwhile.
        await mgr.controller("Trigger").reconciler.reconcile(f"{namespace}/orders")
        await mgr.controller("Broker").reconciler.reconcile(f"{namespace}/shop")
        orders = await api.get(TRIGGERS, namespace, "orders")
        broker = await api.get(BROKERS, namespace, "shop")
    assert orders.get("status") is None
    assert broker.get("status") is None
    assert "config" not in broker["spec"]
    listed = await api.request("GET", SUBS.path(namespace))
    assert listed["items"] == []
    assert await api.get_or_none(IMCS, namespace, "shop-kne-trigger") is None


async def test_broker_config_outside_the_system_namespace_is_followed(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    """spec.config names a ConfigMap of the Broker's namespace (not the watched system one):
    missing -> not Ready naming it; created -> Ready; deleted -> not Ready again."""
    api = kubeapi.KubeApi(api_client)
    system = f"{namespace}-sys"
    kube.kubectl("create", "namespace", system)
    try:
        dispatcher_side(kube, system)
        kube.apply("apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: own}\n"
                   "spec: {config: {apiVersion: v1, kind: ConfigMap, name: mine}}\n",
                   namespace)  # fmt: skip
        own = CHANNEL_CONFIG.replace("config-br-default-channel", "mine")
        missing = (
            'Error on setting up the ChannelTemplate: configmap "mine" not found in '
            f"namespace {namespace}"
        )
        async with c.running(api_client, namespace, ["Broker", "InMemoryChannel"],
                             system_namespace=system, config_recheck=0.5):  # fmt: skip
            broker = await c.eventually(
                lambda: api.get(BROKERS, namespace, "own"),
                lambda b: c.condition(b, "Ready").get("message") == missing,
            )
            assert c.condition(broker, "Ready")["status"] == "False"
            kube.apply(own, namespace)
            await c.eventually(lambda: api.get(BROKERS, namespace, "own"), ready, within=20)
            kube.kubectl("delete", "configmap", "mine", "-n", namespace)
            broker = await c.eventually(
                lambda: api.get(BROKERS, namespace, "own"),
                lambda b: c.condition(b, "TriggerChannelReady").get("status") == "False",
                within=20,
            )
            assert c.condition(broker, "Ready")["message"] == missing
    finally:
        kube.kubectl("delete", "namespace", system, "--wait=false")


def test_kubectl_get_brokers_shows_the_class(kube: Kube, crds: None, namespace: str) -> None:
    kafka = "metadata: {name: shop, annotations: {eventing.knative.dev/broker.class: Kafka}}"
    kube.apply(BROKER.replace("metadata: {name: shop}", kafka), namespace)
    out = kube.kubectl("get", "brokers", "-n", namespace).stdout.splitlines()
    assert out[0].split()[:3] == ["NAME", "URL", "CLASS"]
    assert out[1].split()[:2] == ["shop", "Kafka"]  # no URL yet: that column is empty


async def test_delivery_the_dispatcher_cannot_follow_is_reported_on_ready(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    """Stored without the admission webhook (as before it existed, or while it failed open):
    the reconcilers judge by the same rules (`kevents.validation`) and say so on Ready."""
    api = kubeapi.KubeApi(api_client)
    dispatcher_side(kube, namespace)
    months = BROKER.replace("backoffDelay: PT0.5S", "backoffDelay: P1M")
    years = "  delivery: {timeout: P1Y}\n"
    kube.apply(SERVICES + "---" + months + "---" + trigger_yaml("orders", years), namespace)
    async with c.running(api_client, namespace, ALL):
        broker = await c.eventually(
            lambda: api.get(BROKERS, namespace, "shop"),
            lambda b: c.condition(b, "Ready").get("reason") == "InvalidSpec",
        )
        assert c.condition(broker, "Ready")["message"].startswith(
            "spec.delivery.backoffDelay: invalid ISO-8601 duration 'P1M'"
        )
        kube.kubectl("patch", "broker", "shop", "-n", namespace, "--type=merge",
                     "-p", '{"spec": {"delivery": {"backoffDelay": "PT0.5S"}}}')  # fmt: skip
        await c.eventually(lambda: api.get(BROKERS, namespace, "shop"), ready)
        orders = await c.eventually(
            lambda: api.get(TRIGGERS, namespace, "orders"),
            lambda t: c.condition(t, "SubscriptionReady").get("reason") == "DeliveryInvalid",
        )
        assert "spec.delivery.timeout" in c.condition(orders, "SubscriptionReady")["message"]


async def test_a_broker_gets_knatives_default_delivery_and_its_channel_its_annotations(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    """With the shipped `config-br-defaults`, a Broker naming neither config nor delivery gets
    Knative's default delivery (rekt TestBrokerDefaultDelivery); its trigger channel carries
    the Broker's `messaging.knative.dev/async-handler` annotation (rekt
    TestBrokerPropagatesMetadata), also when the annotation changes later."""
    api = kubeapi.KubeApi(api_client)
    dispatcher_side(kube, namespace)
    docs = yaml.safe_load_all((REPO / "manifests" / "400-config.yaml").read_text())
    shipped = next(d for d in docs if d and d["metadata"]["name"] == "config-br-defaults")
    shipped["metadata"] = {"name": "config-br-defaults"}
    shipped["data"] = {
        k: v.replace("kevents-system", namespace) for k, v in shipped["data"].items()
    }
    kube.apply(yaml.safe_dump(shipped), namespace)
    kube.apply(
        "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: plain\n"
        "  annotations: {eventing.knative.dev/broker.class: MTChannelBasedBroker,\n"
        "                messaging.knative.dev/async-handler: 'false', team: a}\n",
        namespace,
    )
    async with c.running(api_client, namespace, ["Broker", "InMemoryChannel"]):
        broker = await c.eventually(lambda: api.get(BROKERS, namespace, "plain"), ready)
        assert broker["spec"]["delivery"] == {
            "retry": 10, "backoffPolicy": "exponential", "backoffDelay": "PT0.2S"
        }  # fmt: skip
        channel = await api.get(IMCS, namespace, "plain-kne-trigger")
        annotations = channel["metadata"]["annotations"]
        assert annotations["messaging.knative.dev/async-handler"] == "false"
        assert annotations["eventing.knative.dev/scope"] == "cluster"
        assert "team" not in annotations
        kube.kubectl("annotate", "--overwrite", "broker", "plain", "-n", namespace,
                     "messaging.knative.dev/async-handler=true")  # fmt: skip
        await c.eventually(
            lambda: api.get(IMCS, namespace, "plain-kne-trigger"),
            lambda ch: (
                ch["metadata"]["annotations"].get("messaging.knative.dev/async-handler") == "true"
            ),
        )
