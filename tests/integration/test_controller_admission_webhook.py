"""The validating and defaulting webhooks of kevents' kinds, called by the real apiserver
over TLS (the SinkBinding webhook's server and certificates; configurations as in
`manifests/500-webhook.yaml`, but a `url:` on the host and one test namespace):
`kubectl apply` and `--dry-run=server` of each invalid sample exit non-zero naming the
field, Knative's valid YAML applies, an invalid object stored before the webhook existed can
still be relabelled and deleted, and unnamed ContainerSource containers are named."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client

from controller.sinkbinding import webhook
from kevents import kubeapi
from tests.cluster import Kube
from tests.integration import controllers as c
from tests.integration import test_controller_sinkbinding as base

pytestmark = pytest.mark.cluster

crds = base.crds
PINGSOURCES = kubeapi.Resource("sources.knative.dev", "v1", "pingsources")
CONTAINERSOURCES = kubeapi.Resource("sources.knative.dev", "v1", "containersources")
TRIGGERS = kubeapi.Resource("eventing.knative.dev", "v1", "triggers")
RULES = [
    {"apiGroups": ["sources.knative.dev"], "apiVersions": ["*"],
     "operations": ["CREATE", "UPDATE"], "scope": "Namespaced",
     "resources": ["pingsources", "apiserversources", "containersources", "sinkbindings",
                   "githubsources"]},
    {"apiGroups": ["eventing.knative.dev"], "apiVersions": ["*"],
     "operations": ["CREATE", "UPDATE"], "resources": ["brokers", "triggers"],
     "scope": "Namespaced"},
    {"apiGroups": ["messaging.knative.dev"], "apiVersions": ["*"],
     "operations": ["CREATE", "UPDATE"], "scope": "Namespaced",
     "resources": ["channels", "inmemorychannels", "subscriptions"]},
]  # fmt: skip


def hook_entry(name: str, namespace: str, url: str) -> dict[str, Any]:
    return {
        "name": name, "admissionReviewVersions": ["v1"], "clientConfig": {"url": url},
        "failurePolicy": "Fail", "sideEffects": "None", "timeoutSeconds": 5, "rules": RULES,
        "namespaceSelector": {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [namespace]},
        ]},
    }  # fmt: skip


@contextlib.asynccontextmanager
async def admission(kube: Kube, api: kubeapi.KubeApi, namespace: str) -> AsyncIterator[None]:
    """The webhook served on 127.0.0.1, both configurations registered and trusted."""
    suffix = uuid.uuid4().hex[:8]
    validation, defaulting = (
        f"validation-{suffix}.kevents.test",
        f"defaulting-{suffix}.kevents.test",
    )
    options = webhook.Options(
        namespace, host="127.0.0.1", port=0, configuration="", validation=validation,
        defaulting=defaulting, extra_hosts=("127.0.0.1",), check_interval=0.5,
    )  # fmt: skip
    hook = webhook.Webhook(api, options)
    task = asyncio.create_task(hook.run())
    try:
        await asyncio.wait_for(hook.wait_serving(), 30)
        base_url = f"https://127.0.0.1:{hook.port}"
        configs = [
            ("ValidatingWebhookConfiguration", validation, "/validate",
             webhook.VALIDATING_CONFIGURATIONS),
            ("MutatingWebhookConfiguration", defaulting, "/default", webhook.CONFIGURATIONS),
        ]  # fmt: skip
        for kind, name, path, _ in configs:
            body = {
                "apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
                "metadata": {"name": name},
                "webhooks": [hook_entry(name, namespace, base_url + path)],
            }  # fmt: skip
            await apply(kube, yaml.safe_dump(body))
        for _, name, _, resource in configs:
            await c.eventually(
                lambda r=resource, n=name: api.get(r, None, n),  # type: ignore[misc]
                lambda cfg: bool(cfg["webhooks"][0]["clientConfig"].get("caBundle")),
            )
        yield
    finally:
        for kind, name in (("validatingwebhookconfiguration", validation),
                           ("mutatingwebhookconfiguration", defaulting)):  # fmt: skip
            await kubectl(kube, "delete", kind, name, "--wait=false", check=False)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


SINK = "sink: {uri: http://event-display.example.com}"
PING = """
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: %s}
spec:
  %s
  sink: {ref: {apiVersion: v1, kind: Service, name: event-display}}
"""
TRIGGER = """
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: %s}
spec:
  broker: %s
  %s
  subscriber: {ref: {apiVersion: v1, kind: Service, name: event-display}}
"""
BROKER = """
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
  annotations: {eventing.knative.dev/broker.class: %s}
"""
INVALID = {
    "bad-schedule": (PING % ("p1", "schedule: every minute"), "spec.schedule"),
    "bad-timezone": (PING % ("p2", "schedule: '0 * * * *'\n  timezone: Mars/Olympus"),
                     "spec.timezone"),
    "both-data-fields": (PING % ("p3", "data: '{}'\n  dataBase64: e30="), "dataBase64"),
    "bad-cesql": (TRIGGER % ("t1", "default", "filters: [{cesql: \"type = \"}]"),
                  "spec.filters[0].cesql"),
    "bad-duration": (TRIGGER % ("t2", "default", "delivery: {backoffDelay: PTx}"),
                     "backoffDelay"),
    "duration-with-years": (TRIGGER % ("t3", "default", "delivery: {timeout: P1Y}"),
                            "spec.delivery.timeout"),
    "subscription-reply-uri": ("""
apiVersion: messaging.knative.dev/v1
kind: Subscription
metadata: {name: s1}
spec:
  channel: {apiVersion: messaging.knative.dev/v1, kind: InMemoryChannel, name: ch}
  reply: {uri: not-a-url}
""", "spec.reply"),
}  # fmt: skip


async def kubectl(kube: Kube, *args: str, stdin: str | None = None, check: bool = True) -> Any:
    """kubectl in a thread: the webhook it reaches is served by this test's event loop."""
    return await asyncio.to_thread(kube.kubectl, *args, input=stdin, check=check)


async def apply(kube: Kube, manifest: str, namespace: str | None = None) -> None:
    where = [f"--namespace={namespace}"] if namespace else []
    await kubectl(kube, "apply", *where, "-f", "-", stdin=manifest)


async def refused(kube: Kube, namespace: str, manifest: str, *extra: str) -> str:
    """kubectl apply's stderr; fails the test if the apply succeeded."""
    proc = await kubectl(
        kube,
        "apply",
        f"--namespace={namespace}",
        *extra,
        "-f",
        "-",
        stdin=manifest,
        check=False,
    )
    assert proc.returncode != 0, f"accepted:\n{manifest}\n{proc.stdout}"
    return str(proc.stderr)


async def test_invalid_samples_are_refused_at_apply_and_valid_knative_yaml_applies(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns, api = namespace, kubeapi.KubeApi(api_client)
    async with admission(kube, api, ns):
        for case, (manifest, field) in INVALID.items():
            for extra in ((), ("--dry-run=server",)):
                message = await refused(kube, ns, manifest, *extra)
                assert field in message, (case, extra, message)

        # Knative's own samples apply unchanged.
        await apply(kube, BROKER % "MTChannelBasedBroker", ns)
        await apply(
            kube,
            PING
            % (
                "ok",
                "schedule: '*/2 * * * *'\n  contentType: application/json"
                '\n  data: \'{"message": "Hello world!"}\'',
            ),
            ns,
        )
        await apply(kube, TRIGGER % ("ok", "default", "filters: [{cesql: \"type = 'x'\"}]\n  "
                              "delivery: {retry: 3, backoffPolicy: exponential, "
                              "backoffDelay: PT0.2S}"), ns)  # fmt: skip
        ok = await api.get(TRIGGERS, ns, "ok")
        assert ok["metadata"]["labels"] == {"eventing.knative.dev/broker": "default"}
        # Knative's defaults (rekt TestTriggerDefaulting): an empty filter, and the
        # subscriber's namespace the Trigger's.
        assert ok["spec"]["filter"] == {}
        assert ok["spec"]["subscriber"]["ref"]["namespace"] == ns

        # Immutable: the Broker's class and the Trigger's broker.
        message = await refused(kube, ns, BROKER % "Kafka")
        # Knative's words (Broker.CheckImmutableFields, a kmp.ShortDiff), as kubectl shows.
        assert message.endswith(
            " denied the request: validation failed: Immutable fields changed (-old +new): "
            'annotations\n{string}:\n\t-: "MTChannelBasedBroker"\n\t+: "Kafka"\n'
        ), message
        message = await refused(kube, ns, TRIGGER % ("ok", "other", ""))
        assert "spec.broker" in message

        # A metadata-only update of the valid objects passes, and so does a spec fix.
        await kubectl(kube, "label", "--namespace", ns, "pingsource/ok", "team=a")
        await apply(kube, PING % ("ok", "schedule: '0 * * * *'"), ns)


async def test_objects_stored_before_the_webhook_can_be_relabelled_and_deleted(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns, api = namespace, kubeapi.KubeApi(api_client)
    stale = dict(yaml.safe_load(INVALID["bad-schedule"][0]))
    stale["metadata"]["finalizers"] = ["kevents.test/hold"]
    await api.create(PINGSOURCES, ns, stale)
    async with admission(kube, api, ns):
        await kubectl(kube, "label", "--namespace", ns, "pingsource/p1", "team=a")
        await refused(
            kube,
            ns,
            INVALID["bad-schedule"][0].replace("{name: p1}", "{name: p1}\n  labels: {team: b}"),
        )
        await kubectl(kube, "delete", "--namespace", ns, "pingsource/p1", "--wait=false")
        await kubectl(kube, "patch", "--namespace", ns, "pingsource/p1", "--type=merge",
                     "--patch", '{"metadata":{"finalizers":null}}')  # fmt: skip
        await c.eventually(
            lambda: api.get_or_none(PINGSOURCES, ns, "p1"), lambda found: found is None
        )


async def test_unnamed_containersource_containers_are_named_at_admission(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns, api = namespace, kubeapi.KubeApi(api_client)
    async with admission(kube, api, ns):
        await apply(
            kube,
            f"""
apiVersion: sources.knative.dev/v1
kind: ContainerSource
metadata: {{name: heartbeats}}
spec:
  template:
    spec:
      containers:
        - image: kevents/heartbeats:test
        - name: named
          image: kevents/heartbeats:test
  {SINK}
""",
            ns,
        )
        stored = await api.get(CONTAINERSOURCES, ns, "heartbeats")
        names = [x["name"] for x in stored["spec"]["template"]["spec"]["containers"]]
        assert names == ["heartbeats-0", "named"]


CHANNELS = kubeapi.Resource("messaging.knative.dev", "v1", "channels")
INMEMORYCHANNELS = kubeapi.Resource("messaging.knative.dev", "v1", "inmemorychannels")


async def test_channels_get_the_subscribable_duck_annotation_at_admission(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    """Knative's Channel and InMemoryChannel defaulting: `messaging.knative.dev/subscribable:
    v1` on every instance (rekt TestChannelConformance's annotation requirement); a value
    the user wrote is kept."""
    ns, api = namespace, kubeapi.KubeApi(api_client)
    async with admission(kube, api, ns):
        await apply(kube, "apiVersion: messaging.knative.dev/v1\nkind: InMemoryChannel\n"
                          "metadata: {name: plain}\n", ns)  # fmt: skip
        await apply(kube, "apiVersion: messaging.knative.dev/v1\nkind: Channel\n"
                          "metadata: {name: generic, annotations: {team: a}}\n", ns)  # fmt: skip
        await apply(kube, "apiVersion: messaging.knative.dev/v1\nkind: InMemoryChannel\n"
                          "metadata: {name: own, annotations: "
                          "{messaging.knative.dev/subscribable: v1beta1}}\n", ns)  # fmt: skip
        plain = await api.get(INMEMORYCHANNELS, ns, "plain")
        generic = await api.get(CHANNELS, ns, "generic")
        own = await api.get(INMEMORYCHANNELS, ns, "own")
    assert plain["metadata"]["annotations"]["messaging.knative.dev/subscribable"] == "v1"
    assert generic["metadata"]["annotations"]["messaging.knative.dev/subscribable"] == "v1"
    assert generic["metadata"]["annotations"]["team"] == "a"
    assert own["metadata"]["annotations"]["messaging.knative.dev/subscribable"] == "v1beta1"


APISERVERSOURCE = """
apiVersion: sources.knative.dev/v1
kind: ApiServerSource
metadata: {name: %s}
spec:
  mode: %s
  serviceAccountName: foo-sa
  resources: [{apiVersion: v1, kind: Event}]
  sink: {ref: {apiVersion: v1, kind: Service, name: foo-svc}}
"""
KNATIVE_MODE_REFUSAL = " denied the request: validation failed: invalid value: Unknown: spec.mode"
"""rekt's ApiServerSource webhook test (assert.EqualError) after the webhook's name."""


async def test_an_invalid_apiserversource_mode_is_refused_with_knatives_words(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    """The CRD leaves `spec.mode` to the webhook, whose refusal on create and on update is
    Knative's `validation failed: invalid value: Unknown: spec.mode`, and nothing else."""
    ns, api = namespace, kubeapi.KubeApi(api_client)
    async with admission(kube, api, ns):
        message = await refused(kube, ns, APISERVERSOURCE % ("created", "Unknown"))
        assert message.strip().endswith(KNATIVE_MODE_REFUSAL), message
        await apply(kube, APISERVERSOURCE % ("updated", "Resource"), ns)
        message = await refused(kube, ns, APISERVERSOURCE % ("updated", "Unknown"))
        assert message.strip().endswith(KNATIVE_MODE_REFUSAL), message
