"""Knative's own CLI, `kn`, drives the installed system (`hack/up`) as it drives Knative.

`kn` is built from its Go module by `hack/build-kn` (cached outside the work tree). Each test
runs the create / describe / list / update / delete commands a user types for one kind and
checks what the user sees: the exit codes, `++ Ready` in `describe`, `True` in the READY
column of `list`, the objects in the API after `update` and `delete`, and, where the kind
sends events, the events at an event-display sink (read back with GET /events on its pod).
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests import cluster, waiting
from tests.e2e import installed, scenarios

pytestmark = pytest.mark.cluster

HEARTBEATS = "gcr.io/knative-releases/knative.dev/eventing/cmd/heartbeats"
DISPLAY = "gcr.io/knative-releases/knative.dev/eventing/cmd/event_display"


@dataclass(frozen=True)
class Kn:
    path: str
    kube: cluster.Kube
    namespace: str

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [self.path, f"--kubeconfig={self.kube.kubeconfig}", *args, "-n", self.namespace],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check:
            assert proc.returncode == 0, (
                f"kn {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            )
        return proc


def row(listing: str, name: str) -> dict[str, str]:
    """The row of `name` in a `kn ... list` table, by column (kn aligns them with tabwriter)."""
    lines = listing.splitlines()
    header = lines[0]
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    titles = header.split()
    for line in lines[1:]:
        if line.split()[:1] == [name]:
            bounds = [*starts[1:], None]
            return {t: line[s:e].strip() for t, s, e in zip(titles, starts, bounds, strict=True)}
    raise AssertionError(f"{name} is not listed:\n{listing}")


def describes_ready(description: str) -> bool:
    return re.search(r"^\s*\+\+\s+Ready\b", description, re.MULTILINE) is not None


def ready_in_kn(kn: Kn, noun: list[str], name: str, within: float = 120) -> None:
    """Wait until `kn <noun> describe` says `++ Ready`, then the list's READY is True."""

    def ready() -> bool:
        proc = kn(*noun, "describe", name, check=False)
        return proc.returncode == 0 and describes_ready(proc.stdout)

    try:
        waiting.eventually(ready, within, f"kn {' '.join(noun)} describe {name}: ++ Ready", 1.0)
    except AssertionError as exc:
        last = kn(*noun, "describe", name, check=False)
        raise AssertionError(f"{exc}\n{last.stdout}{last.stderr}") from None
    assert row(kn(*noun, "list").stdout, name)["READY"] == "True"


def deleted(kn: Kn, noun: list[str], resource: str, name: str) -> None:
    proc = kn(*noun, "delete", name)
    assert "deleted" in proc.stdout
    gone = kn.kube.kubectl("-n", kn.namespace, "get", resource, name, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr
    listing = kn(*noun, "list", check=False).stdout
    assert not any(line.split()[:1] == [name] for line in listing.splitlines())


def spec(kn: Kn, resource: str, name: str) -> dict[str, Any]:
    obj = kn.kube.get_json("-n", kn.namespace, resource, name)
    found = obj["spec"]
    assert isinstance(found, dict)
    return found


def events_at_display(kube: cluster.Kube, ns: str) -> list[dict[str, Any]]:
    return scenarios.received(kube, ns, "app=display")


SETUP = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: display}}
spec:
  selector: {{matchLabels: {{app: display}}}}
  template:
    metadata: {{labels: {{app: display}}}}
    spec:
      containers:
      - name: display
        image: {DISPLAY}
        readinessProbe: {{httpGet: {{path: /healthz, port: 8080}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: display}}
spec:
  selector: {{app: display}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: cm-watcher}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: cm-watcher}}
rules:
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch"]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app}}
spec:
  selector: {{matchLabels: {{app: bound}}}}
  template:
    metadata: {{labels: {{app: bound}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - {{name: app, image: busybox, args: [sh, -c, "sleep 3600"]}}
"""


@pytest.fixture(scope="module")
def kn_path() -> str:
    proc = subprocess.run(
        [str(cluster.REPO / "hack" / "build-kn")],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert proc.returncode == 0, f"hack/build-kn failed:\n{proc.stderr[-3000:]}"
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def kn(kube: cluster.Kube, main_job: installed.MainJob, kn_path: str) -> Iterator[Kn]:
    ns = f"kn-e2e-{uuid.uuid4().hex[:6]}"
    kube.kubectl("create", "namespace", ns)
    try:
        kube.apply(SETUP, ns)
        kube.kubectl("-n", ns, "create", "rolebinding", "cm-watcher", "--role=cm-watcher",
                     f"--serviceaccount={ns}:cm-watcher")  # fmt: skip
        kube.kubectl("-n", ns, "rollout", "status", "deployment/display", "--timeout=120s")
        yield Kn(kn_path, kube, ns)
    finally:
        kube.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_kn_container_source_with_the_heartbeats_image_is_ready_and_beats_reach_the_sink(
    kn: Kn,
) -> None:
    # Knative's heartbeats image requires POD_NAME and POD_NAMESPACE (envconfig
    # `required:"true"`), so a Knative user passes them too; kn sends the container unnamed.
    noun = ["source", "container"]
    created = kn(*noun, "create", "beats", f"--image={HEARTBEATS}", "--env=POD_NAME=beats",
                 f"--env=POD_NAMESPACE={kn.namespace}", "--arg=--period=1",
                 "--sink=svc:display")  # fmt: skip
    assert "ContainerSource 'beats' created" in created.stdout
    ready_in_kn(kn, noun, "beats")
    source = f"https://knative.dev/eventing-contrib/cmd/heartbeats/#{kn.namespace}/beats"
    waiting.eventually(
        lambda: [e for e in events_at_display(kn.kube, kn.namespace)
                 if e["attributes"].get("source") == source],
        120, "a heartbeat from the kn-made ContainerSource at event-display", 1.0,
    )  # fmt: skip
    kn(*noun, "update", "beats", "--arg=--period=2")
    container = spec(kn, "containersource", "beats")["template"]["spec"]["containers"][0]
    assert container["args"] == ["--period=2"]
    ready_in_kn(kn, noun, "beats")
    deleted(kn, noun, "containersource", "beats")


def test_kn_ping_source_create_describe_list_update_delete(kn: Kn) -> None:
    noun = ["source", "ping"]
    kn(*noun, "create", "tick", "--schedule=*/2 * * * *", "--data=hello", "--sink=svc:display")
    ready_in_kn(kn, noun, "tick")
    assert row(kn(*noun, "list").stdout, "tick")["SCHEDULE"] == "*/2 * * * *"
    kn(*noun, "update", "tick", "--schedule=*/3 * * * *")
    assert spec(kn, "pingsource", "tick")["schedule"] == "*/3 * * * *"
    assert "*/3 * * * *" in kn(*noun, "describe", "tick").stdout
    ready_in_kn(kn, noun, "tick")
    deleted(kn, noun, "pingsource", "tick")


APISERVERSOURCES = "apiserversources.sources.knative.dev"


def ready_in_kn_source_list(kn: Kn, name: str, within: float = 120) -> None:
    """Wait until `kn source list` (every source kind) shows READY True for `name`."""

    def ready() -> bool:
        proc = kn("source", "list", check=False)
        return proc.returncode == 0 and row(proc.stdout, name)["READY"] == "True"

    waiting.eventually(ready, within, f"kn source list: {name} READY True", 1.0)


def test_kn_apiserver_source_sends_configmap_events_and_updates(kn: Kn) -> None:
    noun = ["source", "apiserver"]
    # fully qualified: with the legacy group's CRDs installed (manifests/legacy/, opt-in),
    # a plain `apiserversource` names sources.eventing.knative.dev
    kn(*noun, "create", "cms", "--resource=ConfigMap:v1:e2e=kn", "--mode=Resource",
       "--service-account=cm-watcher", "--sink=svc:display")  # fmt: skip
    # stored as kn sent it, as Knative stores it: no selector parts kn did not write
    assert spec(kn, APISERVERSOURCES, "cms")["resources"] == [
        {"apiVersion": "v1", "kind": "ConfigMap", "selector": {"matchLabels": {"e2e": "kn"}}}
    ]
    # kn v0.48.0's own `source apiserver describe` and `list` panic on any resource with
    # matchLabels (labelSelectorToString, pkg/commands/source/apiserver/flags.go:241, writes
    # into an empty slice), whatever the server; the generic `kn source list` shows READY
    ready_in_kn_source_list(kn, "cms")
    name = f"cm-{uuid.uuid4().hex[:6]}"
    kn.kube.kubectl("-n", kn.namespace, "create", "configmap", name, "--from-literal=k=v")
    kn.kube.kubectl("-n", kn.namespace, "label", "configmap", name, "e2e=kn")
    waiting.eventually(
        lambda: [e for e in events_at_display(kn.kube, kn.namespace)
                 if e["attributes"].get("subject", "").endswith(f"/configmaps/{name}")],
        120, f"an event about ConfigMap {name} at event-display", 1.0,
    )  # fmt: skip
    # kn removes a resource by comparing it with the stored one (DeepEqual): only an exact
    # round trip of the selector lets the user remove it
    kn(*noun, "update", "cms", "--resource=ConfigMap:v1:e2e=kn-", "--resource=ConfigMap:v1",
       "--mode=Reference")  # fmt: skip
    updated = spec(kn, APISERVERSOURCES, "cms")
    assert updated["resources"] == [{"apiVersion": "v1", "kind": "ConfigMap"}]
    assert updated["mode"] == "Reference"
    ready_in_kn(kn, noun, "cms")
    deleted(kn, noun, APISERVERSOURCES, "cms")


def test_kn_sink_binding_injects_k_sink_into_its_subject(kn: Kn) -> None:
    noun = ["source", "binding"]
    kn(*noun, "create", "bind", "--subject=Deployment:apps/v1:app", "--sink=svc:display")
    ready_in_kn(kn, noun, "bind")

    def k_sink() -> str | None:
        deployment = kn.kube.get_json("-n", kn.namespace, "deployment", "app")
        containers = deployment["spec"]["template"]["spec"]["containers"]  # type: ignore[index]
        env = {e["name"]: e.get("value") for e in containers[0].get("env", [])}
        return env.get("K_SINK")

    url = waiting.eventually(k_sink, 60, "K_SINK in the bound Deployment", 1.0)
    assert url == f"http://display.{kn.namespace}.svc.cluster.local"
    kn(*noun, "update", "bind", "--ce-override=team=kn")
    assert spec(kn, "sinkbinding", "bind")["ceOverrides"]["extensions"] == {"team": "kn"}
    ready_in_kn(kn, noun, "bind")
    deleted(kn, noun, "sinkbinding", "bind")


def test_kn_channel_and_subscription_create_describe_list_update_delete(kn: Kn) -> None:
    kn("channel", "create", "pipe")
    kn("channel", "create", "imc-pipe", "--type=imc")

    def backing() -> str:
        """The Channel's InMemoryChannel, made by the channel controller after kn's create."""
        out = kn.kube.kubectl("get", "-n", kn.namespace, "inmemorychannel", "imc-pipe",
                              "-o", "jsonpath={.kind}", check=False)  # fmt: skip
        return out.stdout if out.returncode == 0 else ""

    assert waiting.eventually(backing, 60, "the InMemoryChannel behind imc-pipe", 0.5) == (
        "InMemoryChannel"
    )
    for name in ("pipe", "imc-pipe"):
        ready_in_kn(kn, ["channel"], name)
        url = f"http://{name}-kn-channel.{kn.namespace}.svc.cluster.local"
        assert url in kn("channel", "describe", name).stdout
    kn("subscription", "create", "sub", "--channel=pipe", "--sink=svc:display")
    ready_in_kn(kn, ["subscription"], "sub")
    kn("subscription", "update", "sub", "--sink-dead-letter=svc:display")
    delivery = spec(kn, "subscription", "sub")["delivery"]
    assert delivery["deadLetterSink"]["ref"]["name"] == "display"
    ready_in_kn(kn, ["subscription"], "sub")
    deleted(kn, ["subscription"], "subscription", "sub")
    deleted(kn, ["channel"], "channels.messaging.knative.dev", "pipe")
    deleted(kn, ["channel"], "inmemorychannel", "imc-pipe")


def test_kn_broker_and_trigger_create_describe_list_update_delete(kn: Kn) -> None:
    kn("broker", "create", "br")
    ready_in_kn(kn, ["broker"], "br")
    url = f"http://broker-ingress.kevents-system.svc.cluster.local/{kn.namespace}/br"
    assert url in kn("broker", "describe", "br").stdout
    kn("trigger", "create", "tr", "--broker=br", "--filter=type=dev.example.a",
       "--sink=svc:display")  # fmt: skip
    ready_in_kn(kn, ["trigger"], "tr")
    assert row(kn("trigger", "list").stdout, "tr")["BROKER"] == "br"
    kn("trigger", "update", "tr", "--filter=type=dev.example.b", "--filter=source=/kn")
    assert spec(kn, "trigger", "tr")["filter"]["attributes"] == {
        "type": "dev.example.b",
        "source": "/kn",
    }
    ready_in_kn(kn, ["trigger"], "tr")
    deleted(kn, ["trigger"], "trigger", "tr")
    deleted(kn, ["broker"], "broker", "br")
