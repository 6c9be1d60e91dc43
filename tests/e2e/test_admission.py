"""The admission webhooks of kevents' kinds on the installed system (`hack/up`: the controller
pod serves them through the `kevents-webhook` Service with the certificate it publishes):
`kubectl apply` and `--dry-run=server` of each invalid sample exit non-zero naming the field,
the immutable Broker class and Trigger broker are kept, Knative's YAML applies, and an
unnamed ContainerSource container is named as Knative names it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests import cluster
from tests.e2e import installed
from tests.integration import test_controller_admission_webhook as samples

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def ns(kube: cluster.Kube, main_job: installed.MainJob) -> Iterator[str]:
    name = f"admission-e2e-{uuid.uuid4().hex[:6]}"
    kube.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


def refused(kube: cluster.Kube, ns: str, manifest: str, *extra: str) -> str:
    proc = kube.kubectl("apply", "-n", ns, *extra, "-f", "-", input=manifest, check=False)
    assert proc.returncode != 0, f"accepted:\n{manifest}\n{proc.stdout}"
    return proc.stderr


@pytest.mark.parametrize("case", list(samples.INVALID), ids=list(samples.INVALID))
def test_each_invalid_sample_is_refused_naming_the_field(
    kube: cluster.Kube, ns: str, case: str
) -> None:
    manifest, field = samples.INVALID[case]
    for extra in ((), ("--dry-run=server",)):
        message = refused(kube, ns, manifest, *extra)
        assert field in message, (extra, message)


def test_immutable_fields_are_kept_and_knative_yaml_applies(kube: cluster.Kube, ns: str) -> None:
    kube.apply(samples.BROKER % "MTChannelBasedBroker", ns)
    kube.apply(samples.TRIGGER % ("ok", "default", "filters: [{cesql: \"type = 'x'\"}]"), ns)
    message = refused(kube, ns, samples.BROKER % "Kafka")
    assert 'admission webhook "validation.webhook.eventing.knative.dev" denied' in message
    assert "validation failed: Immutable fields changed (-old +new): annotations" in message
    assert "spec.broker" in refused(kube, ns, samples.TRIGGER % ("ok", "other", ""))
    meta = kube.get_json("-n", ns, "trigger", "ok")["metadata"]
    assert meta["labels"] == {"eventing.knative.dev/broker": "default"}  # type: ignore[index]


def test_unnamed_containersource_container_is_named(kube: cluster.Kube, ns: str) -> None:
    kube.apply("""
apiVersion: sources.knative.dev/v1
kind: ContainerSource
metadata: {name: heartbeats}
spec:
  template:
    spec:
      containers: [{image: gcr.io/knative-releases/knative.dev/eventing/cmd/heartbeats}]
  sink: {uri: http://event-display.example.com}
""", ns)  # fmt: skip
    out = kube.kubectl(
        "get", "-n", ns, "containersource", "heartbeats",
        "-o", "jsonpath={.spec.template.spec.containers[*].name}",
    ).stdout  # fmt: skip
    assert out == "heartbeats-0"
