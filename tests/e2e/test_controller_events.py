"""Events the installed controller records on its objects (issue 19 point 3): a PingSource
whose sink does not exist tells why in `kubectl describe`, as with Knative's controller."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from tests import cluster, waiting
from tests.e2e import installed

pytestmark = pytest.mark.cluster

PING = """
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: nowhere}
spec:
  schedule: "*/1 * * * *"
  sink: {ref: {apiVersion: v1, kind: Service, name: no-such-display}}
"""


@pytest.fixture
def ns(kube: cluster.Kube, main_job: installed.MainJob) -> Iterator[str]:
    name = f"events-e2e-{uuid.uuid4().hex[:6]}"
    kube.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_a_pingsource_without_its_sink_shows_sink_not_found_in_describe(
    kube: cluster.Kube, ns: str
) -> None:
    kube.kubectl("apply", "-n", ns, "-f", "-", input=PING)

    def warned() -> list[dict[str, object]]:
        out = kube.kubectl(
            "get", "events", "-n", ns, "--field-selector=involvedObject.name=nowhere", "-o", "json"
        ).stdout
        items: list[dict[str, object]] = json.loads(out)["items"]
        return [e for e in items if e["reason"] == "SinkNotFound"]

    (event,) = waiting.eventually(warned, 60, "a SinkNotFound event", step=1.0)
    assert event["type"] == "Warning"
    assert event["source"] == {"component": "pingsource-controller"}
    assert str(event["message"]).startswith('Sink not found: {"ref":{"kind":"Service"')
    described = kube.kubectl("describe", "pingsource", "nowhere", "-n", ns).stdout
    events_section = described.split("Events:", 1)[1]
    assert "Warning" in events_section and "SinkNotFound" in events_section
    assert "pingsource-controller" in events_section
