"""Events of the controller's webhook component against the real apiserver: a certificate
written (on its Secret, in `kubectl get events`) and the CA published into a
webhook configuration; a refresh that changes nothing records nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes_asyncio import client
from prometheus_client import CollectorRegistry

from controller.sinkbinding import webhook
from kevents import kubeapi, kubeevents, metrics
from tests.cluster import Kube
from tests.integration import sinkbindinghooks as hooks

pytestmark = pytest.mark.cluster


async def events_about(api: kubeapi.KubeApi, namespace: str, name: str) -> list[dict[str, Any]]:
    listed = await api.request(
        "GET", kubeevents.EVENTS.path(namespace),
        query=[("fieldSelector", f"involvedObject.name={name}")],
    )  # fmt: skip
    items: list[dict[str, Any]] = listed["items"]
    return items


async def test_a_new_certificate_and_its_published_ca_are_events(
    kube: Kube, api_client: client.ApiClient, namespace: str
) -> None:
    api = kubeapi.KubeApi(api_client)
    name = hooks.unique_name()
    recorder = kubeevents.Recorder(api, event_metrics=metrics.KubeEventMetrics(CollectorRegistry()))
    options = webhook.Options(
        namespace, configuration=name, validation="", defaulting="", conversion=(),
    )  # fmt: skip
    hook = webhook.Webhook(
        api, options, events=kubeevents.Emitter(recorder, kubeevents.Source("webhook"))
    )
    async with (
        hooks.registered(kube, namespace, name, hooks.free_port(), "Ignore"),
        asyncio.TaskGroup() as tg,
    ):
        writing = tg.create_task(recorder.run())
        await hook.refresh()
        await recorder.flush()
        await hook.refresh()  # nothing to change: nothing recorded
        await recorder.flush()
        writing.cancel()

    assert recorder.metrics is not None
    assert recorder.metrics.events.labels("created")._value.get() == 2
    secret = await api.get(webhook.SECRETS, namespace, options.secret)
    (issued,) = await events_about(api, namespace, options.secret)
    assert (issued["type"], issued["reason"]) == ("Normal", "CertificateCreated")
    assert issued["involvedObject"]["uid"] == secret["metadata"]["uid"]
    assert issued["message"].startswith("Wrote a new webhook certificate valid until ")
    assert issued["source"] == {"component": "webhook"}
    shown = kube.kubectl("get", "events", "-n", namespace).stdout
    assert "CertificateCreated" in shown and f"secret/{options.secret}" in shown

    (registered,) = await events_about(api, "default", name)  # cluster-scoped: in default
    assert registered["reason"] == "WebhookRegistered"
    assert registered["involvedObject"]["kind"] == "MutatingWebhookConfiguration"
    assert registered["message"] == (
        f"Published the webhook CA (caBundle) into MutatingWebhookConfiguration {name}."
    )
