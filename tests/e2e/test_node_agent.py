"""The node agent on the real local cluster: pods run as processes with the pod's env,
volumes, ServiceAccount, network, DNS, probes, restarts, logs and graceful deletion.

Each test makes its own namespace; the cluster (with agent, kube-proxy and CoreDNS) comes
from `hack/cluster up` through the `kube` fixture.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from hack import processes
from tests import waiting
from tests.cluster import Kube
from tests.e2e import scenarios

pytestmark = pytest.mark.cluster


WEB = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: web
        image: python:3.11
        command:
        - python
        - -c
        - |
          import http.server, os
          class H(http.server.BaseHTTPRequestHandler):
              def do_GET(self):
                  body = os.environ["POD_NAME"].encode()
                  self.send_response(200)
                  self.send_header("Content-Length", str(len(body)))
                  self.end_headers()
                  self.wfile.write(body)
          print("serving", flush=True)
          http.server.HTTPServer(("", 8080), H).serve_forever()
        env:
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /, port: http}, periodSeconds: 2}
        livenessProbe: {tcpSocket: {port: 8080}, periodSeconds: 5}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
"""

CLIENT = """
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  restartPolicy: Never
  containers:
  - name: client
    image: python:3.11
    command:
    - python
    - -c
    - |
      import sys, time, urllib.request
      # kube-proxy programs a new Service's rules within a second or two: retry meanwhile.
      for url in sys.argv[1:]:
          for attempt in range(30):
              try:
                  with urllib.request.urlopen(url, timeout=5) as resp:
                      print(url, resp.status, resp.read().decode(), flush=True)
                      break
              except OSError:
                  time.sleep(0.5)
    - http://web.NS.svc.cluster.local
    - http://web
    - http://web.NS
"""


@pytest.fixture
def ns(kube: Kube) -> Iterator[str]:
    with scenarios.namespace(kube, "agent") as name:
        yield name


def pods(kube: Kube, ns: str, selector: str = "") -> list[dict[str, Any]]:
    args = ["pods", "-n", ns] + ([f"-l={selector}"] if selector else [])
    items: list[dict[str, Any]] = kube.get_json(*args)["items"]  # type: ignore[assignment]
    return items


def pod(kube: Kube, ns: str, name: str) -> dict[str, Any] | None:
    proc = kube.kubectl("get", "pod", "-n", ns, name, "-o", "json", check=False)
    if proc.returncode != 0:
        return None
    found: dict[str, Any] = json.loads(proc.stdout)
    return found


def ready(p: dict[str, Any]) -> bool:
    conds = p.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def phase_of(kube: Kube, ns: str, name: str, *phases: str) -> dict[str, Any] | None:
    p = pod(kube, ns, name)
    return p if p and p.get("status", {}).get("phase") in phases else None


def agent_dir(kube: Kube) -> pathlib.Path:
    assert kube.state_dir is not None, "these tests need the local cluster's node agent"
    return kube.state_dir / "agent"


def container_process(kube: Kube, p: dict[str, Any], container: str) -> processes.Recorded | None:
    pidfile = agent_dir(kube) / "pods" / p["metadata"]["uid"] / "pids" / container
    try:
        pid, ticks = pidfile.read_text().split()
    except (OSError, ValueError):
        return None
    return processes.Recorded(container, int(pid), int(ticks), "")


def logs(kube: Kube, ns: str, name: str, *extra: str) -> str:
    return kube.kubectl("logs", "-n", ns, name, *extra).stdout


def test_deployment_service_dns_restart_and_scale_down(kube: Kube, ns: str) -> None:
    kube.apply(WEB, ns)

    def two_ready() -> list[dict[str, Any]] | None:
        found = pods(kube, ns, "app=web")
        return found if len(found) == 2 and all(map(ready, found)) else None

    both = waiting.eventually(two_ready, 90, "2 ready web pods", 0.5)
    for p in both:
        assert p["status"]["phase"] == "Running"
        assert p["status"]["podIP"].startswith("10.244.")
        assert p["status"]["hostIP"] == "127.0.0.1"
    names = {p["metadata"]["name"] for p in both}

    kube.apply(CLIENT.replace("NS", ns), ns)
    waiting.eventually(
        lambda: phase_of(kube, ns, "client", "Succeeded", "Failed"),
        60,
        "the client pod to finish",
        0.5,
    )
    out = logs(kube, ns, "client")
    lines = out.splitlines()
    assert [line.split()[:2] for line in lines] == [
        [f"http://web.{ns}.svc.cluster.local", "200"],
        ["http://web", "200"],
        [f"http://web.{ns}", "200"],
    ], out
    assert all(line.split()[2] in names for line in lines)

    victim = both[0]
    rec = container_process(kube, victim, "web")
    assert rec is not None and processes.alive(rec)
    os.kill(rec.pid, signal.SIGKILL)
    name = victim["metadata"]["name"]

    def restarted() -> dict[str, Any] | None:
        p = pod(kube, ns, name)
        if not p or not ready(p):
            return None
        status = p["status"]["containerStatuses"][0]
        return status if status["restartCount"] == 1 else None

    status = waiting.eventually(restarted, 60, "the killed container to restart", 0.5)
    assert status["lastState"]["terminated"]["exitCode"] == 137
    assert "serving" in logs(kube, ns, name, "--previous")

    recs = [container_process(kube, p, "web") for p in pods(kube, ns, "app=web")]
    assert all(r is not None and processes.alive(r) for r in recs)
    kube.kubectl("scale", "-n", ns, "deployment/web", "--replicas=0")
    waiting.eventually(lambda: not pods(kube, ns, "app=web"), 60, "web pods to be gone", 0.5)
    assert not any(r is not None and processes.alive(r) for r in recs)


RBAC_POD = """
apiVersion: v1
kind: Pod
metadata: {name: NAME}
spec:
  serviceAccountName: SA
  restartPolicy: Never
  containers:
  - name: lister
    image: python:3.11
    command:
    - python
    - -c
    - |
      # What a client's in-cluster config reads: the Service's env, the token, the CA.
      import json, os, ssl, urllib.error, urllib.request
      sa = "/var/run/secrets/kubernetes.io/serviceaccount/"
      host = os.environ["KUBERNETES_SERVICE_HOST"]
      port = os.environ["KUBERNETES_SERVICE_PORT"]
      token = open(sa + "token").read().strip()
      tls = ssl.create_default_context(cafile=sa + "ca.crt")
      url = f"https://{host}:{port}/api/v1/namespaces/NS/configmaps"
      request = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
      try:
          with urllib.request.urlopen(request, context=tls, timeout=30) as answer:
              found = json.load(answer)
      except urllib.error.HTTPError as err:
          print("status", err.code)
      else:
          print("configmaps", " ".join(sorted(c["metadata"]["name"] for c in found["items"])))
"""

RBAC = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: reader}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: nobody}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: configmap-reader}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: configmap-reader}
subjects: [{kind: ServiceAccount, name: reader}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: visible}
data: {a: "1"}
"""


def test_in_cluster_config_with_and_without_rbac(kube: Kube, ns: str) -> None:
    kube.apply(RBAC, ns)
    for name, sa in (("allowed", "reader"), ("denied", "nobody")):
        kube.apply(RBAC_POD.replace("NAME", name).replace("SA", sa).replace("NS", ns), ns)
    for name in ("allowed", "denied"):

        def finished(n: str = name) -> dict[str, Any] | None:
            return phase_of(kube, ns, n, "Succeeded", "Failed")

        waiting.eventually(finished, 90, f"pod {name} to finish", 0.5)
    allowed = logs(kube, ns, "allowed").split()
    assert allowed[0] == "configmaps" and {"visible", "kube-root-ca.crt"} <= set(allowed[1:])
    assert logs(kube, ns, "denied").strip() == "status 403"


CONFIG = """
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: hunter2}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {level: debug, app.conf: "x = 1\\n"}
---
apiVersion: v1
kind: Pod
metadata: {name: reader}
spec:
  restartPolicy: Never
  containers:
  - name: app
    image: busybox
    command: [sh, -c]
    args:
    - |
      echo "env PASSWORD=$PASSWORD LEVEL=$LEVEL POD=$POD_NAME EXPANDED=$(EXPANDED)"
      echo "file password=$(cat /etc/creds/password) conf=$(cat /etc/settings/app.conf)"
      echo "cfg_level=$CFG_level ns=$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace)"
    env:
    - {name: PASSWORD, valueFrom: {secretKeyRef: {name: creds, key: password}}}
    - {name: LEVEL, valueFrom: {configMapKeyRef: {name: settings, key: level}}}
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: EXPANDED, value: "$(POD_NAME)-$(LEVEL)"}
    envFrom: [{configMapRef: {name: settings}, prefix: CFG_}]
    volumeMounts:
    - {name: creds, mountPath: /etc/creds, readOnly: true}
    - {name: settings, mountPath: /etc/settings}
  volumes:
  - {name: creds, secret: {secretName: creds}}
  - {name: settings, configMap: {name: settings}}
"""


def test_secret_configmap_and_downward_api(kube: Kube, ns: str) -> None:
    kube.apply(CONFIG, ns)
    waiting.eventually(
        lambda: phase_of(kube, ns, "reader", "Succeeded", "Failed"),
        60,
        "the reader pod to finish",
        0.5,
    )
    out = logs(kube, ns, "reader").splitlines()
    assert out == [
        "env PASSWORD=hunter2 LEVEL=debug POD=reader EXPANDED=reader-debug",
        "file password=hunter2 conf=x = 1",
        f"cfg_level=debug ns={ns}",
    ]
    assert phase_of(kube, ns, "reader", "Succeeded")


TICKER = """
apiVersion: v1
kind: Pod
metadata: {name: ticker}
spec:
  terminationGracePeriodSeconds: 10
  containers:
  - name: tick
    image: python:3.11
    command:
    - python
    - -c
    - |
      import signal, sys, time
      def bye(*_):
          print("got SIGTERM", flush=True)
          time.sleep(1)
          sys.exit(0)
      signal.signal(signal.SIGTERM, bye)
      n = 0
      while True:
          print("tick", n, flush=True)
          n += 1
          time.sleep(0.3)
"""


def test_logs_follow_and_graceful_delete(kube: Kube, ns: str) -> None:
    kube.apply(TICKER, ns)
    p = waiting.eventually(
        lambda: phase_of(kube, ns, "ticker", "Running"), 60, "ticker running", 0.5
    )
    waiting.eventually(lambda: "tick 2" in logs(kube, ns, "ticker"), 60, "a few ticks", 0.5)
    assert logs(kube, ns, "ticker", "--tail=1").count("\n") == 1

    with subprocess.Popen(
        [kube.kubectl_path, f"--kubeconfig={kube.kubeconfig}", "logs", "-f", "-n", ns, "ticker"],
        stdout=subprocess.PIPE,
        text=True,
    ) as follow:
        try:
            assert follow.stdout is not None
            seen = [follow.stdout.readline() for _ in range(12)]
        finally:
            follow.kill()
    assert seen[0] == "tick 0\n"
    assert seen[-1] == "tick 11\n"

    rec = container_process(kube, p, "tick")
    assert rec is not None
    started = time.monotonic()
    kube.kubectl("delete", "pod", "-n", ns, "ticker", "--wait=true", timeout=60)
    assert time.monotonic() - started < 10
    assert pod(kube, ns, "ticker") is None
    assert not processes.alive(rec)
    log_dir = agent_dir(kube) / "logs" / f"{ns}_ticker_{p['metadata']['uid']}" / "tick"
    assert (log_dir / "current.log").read_text().rstrip().endswith("got SIGTERM")


def test_unknown_image_gives_a_readable_waiting_reason(kube: Kube, ns: str) -> None:
    kube.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: nope}\n"
        "spec: {containers: [{name: app, image: 'registry.example/no/such:1'}]}\n",
        ns,
    )

    def image_problem() -> dict[str, Any] | None:
        p = pod(kube, ns, "nope")
        statuses = (p or {}).get("status", {}).get("containerStatuses") or []
        reason = statuses[0]["state"].get("waiting", {}).get("reason") if statuses else None
        return p if reason in ("ErrImagePull", "ImagePullBackOff") else None

    p = waiting.eventually(image_problem, 60, "the pod to report its image problem", 0.5)
    state = p["status"]["containerStatuses"][0]["state"]["waiting"]
    assert 'image "registry.example/no/such:1" is not known' in state["message"]
    ready_cond = next(c for c in p["status"]["conditions"] if c["type"] == "Ready")
    assert "registry.example/no/such:1" in ready_cond["message"]
    assert p["status"]["phase"] == "Pending"


INIT = """
apiVersion: v1
kind: Pod
metadata: {name: staged}
spec:
  initContainers:
  - name: prep
    image: busybox
    command: [sh, -c, "echo prepared > /work/ready"]
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: main
    image: busybox
    command: [sh, -c, "cat /work/ready; hostname; sleep 3600"]
    volumeMounts: [{name: work, mountPath: /work}]
    readinessProbe: {exec: {command: [cat, /work/ready]}, periodSeconds: 2}
  volumes: [{name: work, emptyDir: {}}]
"""


def test_init_containers_emptydir_and_exec_probe(kube: Kube, ns: str) -> None:
    kube.apply(INIT, ns)

    def ready_pod() -> dict[str, Any] | None:
        p = pod(kube, ns, "staged")
        return p if p and ready(p) else None

    p = waiting.eventually(ready_pod, 60, "the staged pod to be ready", 0.5)
    (init,) = p["status"]["initContainerStatuses"]
    assert init["state"]["terminated"]["exitCode"] == 0
    assert logs(kube, ns, "staged", "-c", "main").splitlines() == ["prepared", "staged"]


SELF = """
apiVersion: v1
kind: Service
metadata: {name: mirror}
spec:
  selector: {app: itself}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: itself, labels: {app: itself}}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: python:3.11
    command:
    - python
    - -c
    - |
      import http.server, os, socket, threading, time, urllib.request
      class H(http.server.BaseHTTPRequestHandler):
          def do_GET(self):
              body = f"{os.environ['POD_NAME']} saw {self.client_address[0]}".encode()
              self.send_response(200)
              self.send_header("Content-Length", str(len(body)))
              self.end_headers()
              self.wfile.write(body)
          def log_message(self, *args):
              pass
      server = http.server.HTTPServer(("", 8080), H)
      threading.Thread(target=server.serve_forever, daemon=True).start()
      # The Service has this pod as its only endpoint once the pod is Ready, and
      # kube-proxy programs it a moment later: retry until then.
      address = socket.gethostbyname("mirror")
      for attempt in range(120):
          try:
              with urllib.request.urlopen(f"http://{address}/", timeout=3) as resp:
                  print(address, resp.status, resp.read().decode(), flush=True)
                  break
          except OSError as err:
              last = err
              time.sleep(0.5)
      else:
          print(address, "failed", last, flush=True)
    env:
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
"""


def test_a_pod_reaches_itself_through_its_service(kube: Kube, ns: str) -> None:
    """Hairpin: a pod that is its own Service's only endpoint gets its own answer at the
    Service's ClusterIP (kube-proxy masquerades the hairpinned connection, so the answer
    goes back through the Service's address) -- as the dispatcher delivering to its own
    channels and brokers does (a Trigger's reply to its broker, channel-to-channel chains)."""
    kube.apply(SELF, ns)
    waiting.eventually(
        lambda: phase_of(kube, ns, "itself", "Succeeded", "Failed"),
        90,
        "the pod to finish asking itself",
        0.5,
    )
    service: dict[str, Any] = kube.get_json("service", "-n", ns, "mirror")
    cluster_ip = service["spec"]["clusterIP"]
    out = logs(kube, ns, "itself").split()
    assert out[:2] == [cluster_ip, "200"], out
    assert out[2:4] == ["itself", "saw"], out
