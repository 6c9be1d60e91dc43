"""The local control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler.

Everything lives under one state folder (default `<repo>/.state/cluster`, or `$KEVENTS_STATE`):

    state.json          ports and the processes we started (pid + kernel start time)
    pki/                CA, serving and client certificates, ServiceAccount signing key
    *.kubeconfig        one kubeconfig per identity; `admin.kubeconfig` is the one users want
    etcd/               etcd data (kept by `down`, removed by `down --wipe`)
    logs/<name>.log     each component's output
    bin/kubectl         a symlink to the multi-call binary, so `kubectl` matches the server

`up` is idempotent: when every recorded process is alive and /readyz answers, it does nothing.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from hack import ports, processes
from hack.localcluster import kafka, node, observability, pki

REPO = pathlib.Path(__file__).resolve().parents[2]
SERVICE_CIDR = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"
CLUSTER_CIDR = "10.244.0.0/16"
ISSUER = "https://kubernetes.default.svc.cluster.local"
K8S_VERSION = "v1.37.2"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")

IDENTITIES = (
    pki.Identity("admin", "kubernetes-admin", "system:masters"),
    pki.Identity("kcm", "system:kube-controller-manager"),
    pki.Identity("scheduler", "system:kube-scheduler"),
    pki.Identity("proxy", "system:kube-proxy", "system:node-proxier"),
    pki.Identity("apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters"),
)


class ClusterError(Exception):
    """A component failed to start or the state folder is unusable."""


def state_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("KEVENTS_STATE", REPO / ".state")) / "cluster"


@dataclass
class State:
    """What `up` recorded: the ports it chose and the processes it started."""

    ports: dict[str, int] = field(default_factory=dict)
    started: list[processes.Recorded] = field(default_factory=list)

    @classmethod
    def load(cls, directory: pathlib.Path) -> State:
        path = directory / "state.json"
        if not path.exists():
            return cls()
        raw = json.loads(path.read_text())
        return cls(
            ports={str(k): int(v) for k, v in raw.get("ports", {}).items()},
            started=[processes.Recorded(**p) for p in raw.get("processes", [])],
        )

    def save(self, directory: pathlib.Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        payload = {"ports": self.ports, "processes": [asdict(p) for p in self.started]}
        tmp = directory / "state.json.tmp"
        tmp.write_text(json.dumps(payload, indent=2))
        tmp.replace(directory / "state.json")

    def alive(self) -> list[processes.Recorded]:
        return [p for p in self.started if processes.alive(p)]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def api_url(st: State) -> str:
    return f"https://127.0.0.1:{st.ports['apiserver']}"


def write_kubeconfig(directory: pathlib.Path, stem: str, server: str) -> pathlib.Path:
    """A kubeconfig for the client certificate `pki/<stem>.crt`."""
    pkidir = directory / "pki"
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "kevents-local",
                "cluster": {"server": server, "certificate-authority": str(pkidir / "ca.crt")},
            }
        ],
        "users": [
            {
                "name": stem,
                "user": {
                    "client-certificate": str(pkidir / f"{stem}.crt"),
                    "client-key": str(pkidir / f"{stem}.key"),
                },
            }
        ],
        "contexts": [
            {"name": "kevents-local", "context": {"cluster": "kevents-local", "user": stem}}
        ],
        "current-context": "kevents-local",
    }
    path = directory / f"{stem}.kubeconfig"
    path.write_text(json.dumps(doc, indent=2))
    path.chmod(0o600)
    return path


def _admin_ssl(directory: pathlib.Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(directory / "pki" / "ca.crt"))
    ctx.load_cert_chain(str(directory / "pki" / "admin.crt"), str(directory / "pki" / "admin.key"))
    return ctx


def _get(url: str, ctx: ssl.SSLContext | None, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=ctx) as resp:
            return int(resp.status), resp.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return int(err.code), err.read().decode(errors="replace")


def apiserver_ready(directory: pathlib.Path, st: State) -> bool:
    if "apiserver" not in st.ports or not (directory / "pki" / "admin.crt").exists():
        return False
    try:
        code, body = _get(f"{api_url(st)}/readyz", _admin_ssl(directory))
    except (OSError, ssl.SSLError):
        return False
    return code == 200 and body.strip() == "ok"


def _wait(
    what: str,
    check: Callable[[], bool],
    rec: processes.Recorded,
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if not processes.alive(rec):
            raise ClusterError(
                f"{what} exited during start-up; last lines of {rec.log}:\n"
                + processes.tail(rec.log)
            )
        time.sleep(0.25)
    raise ClusterError(
        f"{what} did not become ready within {timeout:.0f}s; last lines of {rec.log}:\n"
        + processes.tail(rec.log)
    )


def _insecure_ctx() -> ssl.SSLContext:
    # kcm and the scheduler serve /healthz with a self-signed certificate they make themselves.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _healthz(url: str, ctx: ssl.SSLContext | None) -> Callable[[], bool]:
    def check() -> bool:
        try:
            code, _ = _get(url, ctx)
        except (OSError, ssl.SSLError):
            return False
        return code == 200

    return check


def _choose_ports(st: State) -> None:
    for name in ("etcd", "etcd-peer", "apiserver", "kcm", "scheduler"):
        port = st.ports.get(name)
        if port is None or not _port_free(port):
            st.ports[name] = ports.free_port()


def _argv(binary: str, directory: pathlib.Path, st: State) -> dict[str, list[str]]:
    p = st.ports
    pk = directory / "pki"
    etcd = f"http://127.0.0.1:{p['etcd']}"
    peer = f"http://127.0.0.1:{p['etcd-peer']}"
    common_auth = [
        "--bind-address=127.0.0.1",
        "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
        "--leader-elect=false",
    ]
    return {
        "etcd": [
            binary, "etcd", "--name=node0", f"--data-dir={directory / 'etcd'}",
            f"--listen-client-urls={etcd}", f"--advertise-client-urls={etcd}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=node0={peer}", "--unsafe-no-fsync=true",
            "--auto-compaction-retention=1", "--quota-backend-bytes=4294967296",
            "--log-level=warn",
        ],
        "kube-apiserver": [
            binary, "kube-apiserver", f"--etcd-servers={etcd}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={p['apiserver']}",
            f"--tls-cert-file={pk / 'apiserver.crt'}",
            f"--tls-private-key-file={pk / 'apiserver.key'}",
            f"--client-ca-file={pk / 'ca.crt'}",
            f"--kubelet-client-certificate={pk / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pk / 'apiserver-kubelet-client.key'}",
            f"--kubelet-certificate-authority={pk / 'ca.crt'}",
            f"--service-account-issuer={ISSUER}",
            f"--service-account-key-file={pk / 'sa.pub'}",
            f"--service-account-signing-key-file={pk / 'sa.key'}",
            "--authorization-mode=Node,RBAC",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true",
            "--endpoint-reconciler-type=none",
            "--enable-admission-plugins=NodeRestriction",
            "--profiling=false",
        ],
        "kube-controller-manager": [
            binary, "kube-controller-manager", *common_auth,
            f"--kubeconfig={directory / 'kcm.kubeconfig'}",
            f"--authentication-kubeconfig={directory / 'kcm.kubeconfig'}",
            f"--authorization-kubeconfig={directory / 'kcm.kubeconfig'}",
            f"--secure-port={p['kcm']}",
            f"--service-account-private-key-file={pk / 'sa.key'}",
            f"--root-ca-file={pk / 'ca.crt'}",
            f"--cluster-signing-cert-file={pk / 'ca.crt'}",
            f"--cluster-signing-key-file={pk / 'ca.key'}",
            "--use-service-account-credentials=true",
            "--allocate-node-cidrs=true", f"--cluster-cidr={CLUSTER_CIDR}",
            "--node-cidr-mask-size=24", f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--controllers=*",
            "--node-monitor-grace-period=40s",
        ],
        "kube-scheduler": [
            binary, "kube-scheduler", *common_auth,
            f"--kubeconfig={directory / 'scheduler.kubeconfig'}",
            f"--authentication-kubeconfig={directory / 'scheduler.kubeconfig'}",
            f"--authorization-kubeconfig={directory / 'scheduler.kubeconfig'}",
            f"--secure-port={p['scheduler']}",
        ],
    }  # fmt: skip


def build_binary() -> str:
    """Path of the multi-call binary, building it (or taking it from the cache) first."""
    override = os.environ.get("KEVENTS_LOCALK8S")
    if override:
        return override
    out = subprocess.run(
        [str(REPO / "hack" / "build-localk8s")], check=True, stdout=subprocess.PIPE, text=True
    )
    return out.stdout.strip().splitlines()[-1]


def log_cleanup(what: str) -> None:
    print(f"cluster: {what}", file=sys.stderr)


def down(*, wipe: bool = False) -> list[processes.Recorded]:
    """Stop exactly the processes `up` started, newest first; optionally delete all state."""
    directory = state_dir()
    st = State.load(directory)
    stopped = []
    for rec in reversed(st.started):
        if processes.alive(rec):
            processes.stop(rec)
            stopped.append(rec)
    st.started = []
    for what in node.cleanup(directory):  # pods, netns, veths, bridge, nft rules
        log_cleanup(what)
    if wipe:
        shutil.rmtree(directory, ignore_errors=True)
    elif directory.exists():
        st.save(directory)
    return stopped


def up(
    log: Callable[[str], None] = lambda _: None,
    *,
    with_observability: bool = False,
    with_kafka: bool = False,
) -> State:
    """Start the control plane, or reuse it when it already runs and answers /readyz.

    `with_observability` also starts Prometheus and Zipkin, `with_kafka` a Kafka broker
    (hack/localcluster/kafka.py); each once, reused when running, added to a running cluster."""
    directory = state_dir()
    st = State.load(directory)
    names = {p.name for p in st.alive()}
    if set(COMPONENTS) | set(node.expected(directory)) <= names and apiserver_ready(directory, st):
        log(f"cluster already running at {api_url(st)}")
        if with_observability and not {"zipkin", "podtargets", "prometheus"} <= names:
            _start_observability(directory, st, log)
        if with_kafka and "kafka" not in names:
            _start_kafka(directory, st, log)
        return st
    if st.started:
        log("a previous cluster is partly running; restarting it")
        down()
        st = State.load(directory)
    binary = build_binary()
    _choose_ports(st)
    pki.ensure(
        directory / "pki", identities=IDENTITIES, apiserver_ips=("127.0.0.1", KUBERNETES_SERVICE_IP)
    )
    server = f"https://127.0.0.1:{st.ports['apiserver']}"
    for ident in IDENTITIES:
        write_kubeconfig(directory, ident.stem, server)
    bindir = directory / "bin"
    bindir.mkdir(exist_ok=True)
    link = bindir / "kubectl"
    link.unlink(missing_ok=True)
    link.symlink_to(binary)
    argv = _argv(binary, directory, st)
    logs = directory / "logs"
    st.started = []
    try:
        for name in COMPONENTS:
            rec = processes.spawn(name, argv[name], logs / f"{name}.log")
            st.started.append(rec)
            st.save(directory)
            log(f"started {name} (pid {rec.pid})")
            if name == "etcd":
                url = f"http://127.0.0.1:{st.ports['etcd']}/health"
                _wait("etcd", _healthz(url, None), rec, 60)
            elif name == "kube-apiserver":
                _wait("kube-apiserver", lambda: apiserver_ready(directory, st), rec, 120)
            else:
                port = st.ports["kcm" if name == "kube-controller-manager" else "scheduler"]
                _wait(name, _healthz(f"https://127.0.0.1:{port}/healthz", _insecure_ctx()), rec, 60)
        try:  # the node: kevents agent, kube-proxy, CoreDNS (hack/localcluster/node.py)
            write_kubeconfig(directory, "node", server)
            node.start(directory, st, binary, server, log)
        except node.HookError as err:
            raise ClusterError(str(err)) from err
        if with_observability:
            _start_observability(directory, st, log)
        if with_kafka:
            _start_kafka(directory, st, log)
    except BaseException:
        down()
        raise
    log(f"cluster ready at {server}")
    return st


def kubectl(directory: pathlib.Path) -> Callable[..., None]:
    """A kubectl runner on the admin kubeconfig (raises ClusterError on failure)."""

    def run(*args: str, input: str | None = None, check: bool = True) -> None:
        proc = subprocess.run(
            [str(directory / "bin" / "kubectl"), f"--kubeconfig={directory / 'admin.kubeconfig'}",
             *args],
            input=input, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if check and proc.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")

    return run


def _start_observability(directory: pathlib.Path, st: State, log: Callable[[str], None]) -> None:
    started = observability.start(
        directory, st.ports, api_url(st), kubectl(directory), ports.free_port, log
    )
    st.started.extend(started)
    st.save(directory)
    zipkin, prometheus = started[0], started[-1]
    try:
        _wait("zipkin", _healthz(f"http://127.0.0.1:{observability.ZIPKIN_PORT}/health", None),
              zipkin, 120)  # fmt: skip
        port = st.ports["prometheus"]
        _wait("prometheus", _healthz(f"http://127.0.0.1:{port}/-/ready", None), prometheus, 60)
    except ClusterError:
        for rec in reversed(started):
            processes.stop(rec)
        raise


def _start_kafka(directory: pathlib.Path, st: State, log: Callable[[str], None]) -> None:
    st.started = [p for p in st.started if p.name != "kafka" or processes.alive(p)]
    try:
        # pods reach Kafka on the bridge only when this cluster's agent set up the pod network
        owner = (directory / "agent" / "network-owner").exists()
        bridge = observability.bridge_address() if owner else None
        rec = kafka.start(
            directory, st.ports, bridge, kubectl(directory), _port_free, ports.free_port, log
        )
    except (OSError, RuntimeError, subprocess.CalledProcessError) as err:
        raise ClusterError(f"kafka did not start: {err}") from err
    st.started.append(rec)
    st.save(directory)
    try:
        # the first start formats the log and creates internal topics: allow for a loaded CI
        _wait("kafka", lambda: kafka.ready(st.ports), rec, 180)
    except ClusterError:
        processes.stop(rec)
        raise
    log(f"kafka ready: {kafka.status(directory)}")


def status() -> dict[str, object]:
    """What runs: each recorded component with its pid and liveness, and /readyz."""
    directory = state_dir()
    st = State.load(directory)
    return {
        "state": str(directory),
        "apiserver": api_url(st) if "apiserver" in st.ports else None,
        "ready": apiserver_ready(directory, st),
        "kubeconfig": str(directory / "admin.kubeconfig"),
        "ports": st.ports,
        "kafka": kafka.status(directory) if any(p.name == "kafka" for p in st.alive()) else None,
        "processes": [
            {
                "name": p.name,
                "pid": p.pid,
                "alive": processes.alive(p),
                "log": p.log,
                "uptime_seconds": processes.uptime(p),
            }
            for p in st.started
        ],
    }
