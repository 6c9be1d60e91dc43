"""The PingSource controller against the real apiserver, its loop running in-process."""

from __future__ import annotations

import pytest
import yaml
from kubernetes_asyncio import client

from controller import availability
from controller.pingsource import adapter, reconciler
from kevents import kubeapi
from tests.cluster import REPO, Kube
from tests.integration import controllers as c

pytestmark = pytest.mark.cluster

PINGS = reconciler.PINGSOURCES
ADAPTER = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: pingsource-mt-adapter}
spec:
  replicas: 0
  selector: {matchLabels: {app: fake-ping-adapter}}
  template:
    metadata: {labels: {app: fake-ping-adapter}}
    spec:
      containers: [{name: dispatcher, image: kevents/ping-source:installed}]
"""
"""The adapter as an install ships it; no replicas, so kcm reports it Available at once."""


def ping_yaml(name: str = "every-minute", **spec: object) -> str:
    body = {
        "apiVersion": "sources.knative.dev/v1",
        "kind": "PingSource",
        "metadata": {"name": name},
        "spec": {"sink": {"ref": {"apiVersion": "v1", "kind": "Service",
                                  "name": "event-display"}}, **spec},
    }  # fmt: skip
    return yaml.safe_dump(body)


@pytest.fixture(scope="module")
def crds(kube: Kube) -> None:
    files = sorted((REPO / "manifests").glob("300-*.yaml"))
    kube.kubectl("apply", *(f"--filename={f}" for f in files))
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                 "crd/pingsources.sources.knative.dev")  # fmt: skip


async def test_valid_source_is_ready_with_sink_uri_and_ce_attributes(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    api = kubeapi.KubeApi(api_client)
    kube.apply(c.SINK_SERVICE + "---" + ADAPTER, namespace)
    kube.apply(ping_yaml(schedule="*/1 * * * *", timezone="Europe/Madrid",
                         contentType="application/json", data='{"message": "hello"}'),
               namespace)  # fmt: skip
    async with c.running(api_client, namespace, ["PingSource"]):
        source = await c.eventually(
            lambda: api.get(PINGS, namespace, "every-minute"),
            lambda s: c.condition(s, "Ready").get("status") == "True",
        )
    status = source["status"]
    assert status["sinkUri"] == c.service_url("event-display", namespace)
    assert status["ceAttributes"] == [{
        "type": "dev.knative.sources.ping",
        "source": f"/apis/v1/namespaces/{namespace}/pingsources/every-minute",
    }]  # fmt: skip
    assert c.statuses(source) == {
        "Deployed": "True",
        "OIDCIdentityCreated": "True",
        "Ready": "True",
        "SinkProvided": "True",
    }
    assert status["observedGeneration"] == source["metadata"]["generation"]
    dep = await api.get(availability.DEPLOYMENTS, namespace, adapter.NAME)
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "kevents/ping-source:installed"  # an installed adapter is left as it is
    )
    printed = kube.kubectl("get", "pingsource", "every-minute", "-n", namespace).stdout
    assert printed.split("\n")[0].split() == ["NAME", "SINK", "SCHEDULE", "AGE", "READY", "REASON"]


INVALID = {
    "four-fields": (
        {"schedule": "* * * *"}, "InvalidSchedule",
        "invalid value: expected 5 to 6 fields, found 4: [* * * *]: spec.schedule",
    ),
    "minute-out-of-range": (
        {"schedule": "61 * * * *"}, "InvalidSchedule",
        "invalid value: end of range (61) above maximum (59): 61: spec.schedule",
    ),
    "bad-timezone": (
        {"schedule": "0 * * * *", "timezone": "Mars/Olympus"}, "InvalidTimezone",
        "provided bad location Mars/Olympus",
    ),
    "json-array": (
        {"contentType": "application/json", "data": "[1, 2]"}, "InvalidData",
        "application/json data must be a JSON object: spec.data",
    ),
}  # fmt: skip


@pytest.mark.parametrize(("spec", "reason", "message"), INVALID.values(), ids=INVALID.keys())
async def test_invalid_spec_sets_ready_false_with_the_parse_error(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str,
    spec: dict[str, str], reason: str, message: str,
) -> None:  # fmt: skip
    api = kubeapi.KubeApi(api_client)
    kube.apply(c.SINK_SERVICE, namespace)
    kube.apply(ping_yaml("bad", **spec), namespace)
    async with c.running(api_client, namespace, ["PingSource"]):
        source = await c.eventually(
            lambda: api.get(PINGS, namespace, "bad"),
            lambda s: c.condition(s, "Ready").get("status") == "False",
        )
        # A missing shared adapter is created from the controller's configured image.
        dep = await api.get(availability.DEPLOYMENTS, namespace, adapter.NAME)
    ready = c.condition(source, "Ready")
    assert ready["reason"] == reason
    assert message in ready["message"]
    assert "sinkUri" not in source["status"]  # the adapter never fires it
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == c.PING_IMAGE


def test_data_and_data_base64_together_are_rejected_with_a_readable_message(
    kube: Kube, crds: None, namespace: str
) -> None:
    proc = kube.kubectl(
        "apply", "-n", namespace, "-f", "-", check=False,
        input=ping_yaml("both", data="hi", dataBase64="aGk="),
    )  # fmt: skip
    assert proc.returncode != 0
    assert "expected exactly one, got both: data, dataBase64" in proc.stderr
