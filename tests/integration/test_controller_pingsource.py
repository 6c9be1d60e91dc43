"""The PingSource controller against the real apiserver, its loop running in-process."""

from __future__ import annotations

import datetime
import functools

import pytest
import yaml
from kubernetes_asyncio import client

from controller import availability
from controller.pingsource import adapter, reconciler
from kevents import kubeapi
from tests import manualclock, waiting
from tests.cluster import Kube
from tests.integration import controllers as c
from tests.integration import pingsupport

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
    kube.install_crds("pingsources.sources.knative.dev")


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
    "never-fires": (
        {"schedule": "0 0 31 2 *"}, "InvalidSchedule",
        "spec.schedule: '0 0 31 2 *' never fires: no date matches it within 5 years",
    ),
    "seconds-below-the-floor": (
        {"schedule": "*/5 * * * * *"}, "InvalidSchedule",
        "spec.schedule: '*/5 * * * * *' fires every 5 s; the minimum interval is 10 s",
    ),
    "four-fields": (
        {"schedule": "* * * *"}, "InvalidSchedule",
        "spec.schedule: expected 5 to 6 fields, found 4: [* * * *]",
    ),
    "minute-out-of-range": (
        {"schedule": "61 * * * *"}, "InvalidSchedule",
        "spec.schedule: minute field '61': end of range (61) above maximum (59): 61",
    ),
    "bad-timezone": (
        {"schedule": "0 * * * *", "timezone": "Mars/Olympus"}, "InvalidTimezone",
        "spec.timezone: provided bad location Mars/Olympus",
    ),
    "json-array": (
        {"contentType": "application/json", "data": "[1, 2]"}, "InvalidData",
        "spec.data: data is not a JSON object (contentType is application/json)",
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
    assert ready["message"].startswith(message)
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


SINK = "http://127.0.0.1:9/"
"""Never contacted: the adapter's clock does not move."""
PARITY = {
    "defaults": ({}, None),
    "madrid-every-minute": ({"schedule": "*/1 * * * *", "timezone": "Europe/Madrid"}, None),
    "seconds-at-the-floor": ({"schedule": "*/10 * * * * *"}, None),
    "leap-day": ({"schedule": "0 0 29 2 *"}, None),
    "feb-31-or-monday": ({"schedule": "0 0 31 2 1"}, None),
    "json-with-charset": ({"contentType": "application/json; charset=utf-8",
                           "data": '{"a": 1}'}, None),
    "feb-31": ({"schedule": "0 0 31 2 *"}, "InvalidSchedule"),
    "every-five-seconds": ({"schedule": "*/5 * * * * *"}, "InvalidSchedule"),
    "every-second": ({"schedule": "* * * * * *"}, "InvalidSchedule"),
    "dow-7": ({"schedule": "0 0 * * 7"}, "InvalidSchedule"),
    "fixed-offset-zone": ({"timezone": "UTC+8"}, "InvalidTimezone"),
    "zone-twice": ({"schedule": "TZ=UTC * * * * *", "timezone": "UTC"}, "InvalidTimezone"),
    "json-array": ({"contentType": "application/json", "data": "[1]"}, "InvalidData"),
    "bad-media-type": ({"contentType": "json", "data": "{}"}, "InvalidData"),
}  # fmt: skip
"""Specs the CRD admits; the controller's verdict (Ready, reason) and the adapter's (fires)."""


async def test_the_adapter_fires_exactly_the_sources_the_controller_marks_ready(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    api = kubeapi.KubeApi(api_client)
    # The adapter alone first: its own rules decide (the status has a sink, no conditions).
    clock = manualclock.ManualClock(datetime.datetime.now(datetime.UTC))
    async with pingsupport.replica(api_client, clock, namespace) as running:
        for name, (spec, _) in PARITY.items():
            await pingsupport.create(api_client, namespace, name, SINK, **spec)
        await pingsupport.create(api_client, namespace, "sentinel", SINK)  # its events come last
        await waiting.until(lambda: f"{namespace}/sentinel" in running.adapter.jobs)
        fires = {name: f"{namespace}/{name}" in running.adapter.jobs for name in PARITY}
    # Then the controller, on the same stored objects.
    kube.apply(ADAPTER, namespace)
    verdicts: dict[str, str | None] = {}
    async with c.running(api_client, namespace, ["PingSource"]):
        for name in PARITY:
            source = await c.eventually(
                functools.partial(api.get, PINGS, namespace, name),
                lambda s: c.condition(s, "Ready").get("status") in ("True", "False"),
            )
            ready = c.condition(source, "Ready")
            verdicts[name] = None if ready["status"] == "True" else ready["reason"]
    assert verdicts == {name: reason for name, (_, reason) in PARITY.items()}
    assert fires == {name: reason is None for name, (_, reason) in PARITY.items()}
