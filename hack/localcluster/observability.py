"""Prometheus (Debian's package) and a Zipkin server (Maven Central's exec jar) for the local
cluster, started by `hack/cluster up --observability` and stopped by `down` like the rest.

    Prometheus  127.0.0.1:<port>   scrapes pods annotated prometheus.io/scrape="true" at
                                   prometheus.io/port (and prometheus.io/path), discovered from
                                   our apiserver by `podtargets` (Debian's build lacks the
                                   Kubernetes SD) with Prometheus' own client certificate bound
                                   to a read-only ClusterRole
    Zipkin      127.0.0.1:9411     UI and API for people and tests, plus the node's bridge
                <bridge>:9411      address so pods reach it as the selector-less Service
                                   `zipkin.kevents-system` (EndpointSlice -> bridge address);
                                   config-tracing's zipkin-endpoint names that Service
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Callable

from hack import cache, processes
from hack.localcluster import pki
from hack.progress import maven

REPO = pathlib.Path(__file__).resolve().parents[2]
ZIPKIN_VERSION = "3.5.1"
ZIPKIN_PORT = 9411
SYSTEM_NAMESPACE = "kevents-system"
IDENTITY = pki.Identity("prometheus", "kevents:prometheus")

RBAC = {
    "apiVersion": "v1",
    "kind": "List",
    "items": [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "kevents:prometheus"},
            "rules": [
                {
                    "apiGroups": [""],
                    # discovery of scrape targets only: read pods, services, endpoints, nodes
                    "resources": ["pods", "services", "endpoints", "nodes"],
                    "verbs": ["get", "list", "watch"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "kevents:prometheus"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "kevents:prometheus",
            },
            "subjects": [
                {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "User",
                    "name": IDENTITY.common_name,
                }
            ],
        },
    ],
}


def bridge_address() -> str | None:
    """The node's bridge address (reachable from every pod), or None without pod networking."""
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "kev0"], capture_output=True, text=True, check=False
    )
    for word in out.stdout.split():
        if "/" in word and word[0].isdigit():
            return word.split("/")[0]
    return None


def zipkin_jar() -> pathlib.Path:
    """The exec jar, copied by Maven from Maven Central into the cache when missing (an
    explicit output folder: Maven's own repository is where Java's `user.home` says, which
    need not be `$HOME`)."""
    folder = cache.root() / "zipkin" / ZIPKIN_VERSION
    jar = folder / f"zipkin-server-{ZIPKIN_VERSION}-exec.jar"
    if not jar.exists():
        staging = folder / "partial"
        shutil.rmtree(staging, ignore_errors=True)
        # Batch mode (no colour codes), a moving line on stderr (Maven's log if it fails):
        # stdout of `hack/cluster up` is the kubeconfig path that scripts read.
        maven.fetch(
            ["mvn", "-B", "dependency:copy", f"-DoutputDirectory={staging}",
             f"-Dartifact=io.zipkin:zipkin-server:{ZIPKIN_VERSION}:jar:exec"],
            f"fetching Zipkin {ZIPKIN_VERSION} from Maven Central (once)",
        )  # fmt: skip
        (staging / jar.name).rename(jar)
        shutil.rmtree(staging, ignore_errors=True)
    return jar


def zipkin_service(bridge: str) -> dict[str, object]:
    """A selector-less Service `zipkin` with an EndpointSlice at the node's bridge address."""
    return {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "zipkin", "namespace": SYSTEM_NAMESPACE},
                "spec": {"ports": [{"name": "http", "port": ZIPKIN_PORT, "protocol": "TCP"}]},
            },
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": "zipkin-node",
                    "namespace": SYSTEM_NAMESPACE,
                    "labels": {
                        "kubernetes.io/service-name": "zipkin",
                        "endpointslice.kubernetes.io/managed-by": "kevents-hack",
                    },
                },
                "addressType": "IPv4",
                "endpoints": [{"addresses": [bridge], "conditions": {"ready": True}}],
                "ports": [{"name": "http", "port": ZIPKIN_PORT, "protocol": "TCP"}],
            },
        ],
    }


def prometheus_config(targets_port: int) -> str:
    """Scrape every annotated pod found through podtargets (HTTP service discovery)."""
    config = {
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
        "scrape_configs": [
            {
                "job_name": "kubernetes-pods",
                "http_sd_configs": [
                    {"url": f"http://127.0.0.1:{targets_port}/targets", "refresh_interval": "5s"}
                ],
            }
        ],
    }
    # JSON is valid YAML: no YAML writer needed.
    return json.dumps(config, indent=2)


def start(
    directory: pathlib.Path,
    ports: dict[str, int],
    server: str,
    kubectl: Callable[..., None],
    free_port: Callable[[], int],
    log: Callable[[str], None],
) -> list[processes.Recorded]:
    """Start Zipkin and Prometheus; returns the processes to record."""
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        raise RuntimeError("prometheus is not installed (hack/bootstrap installs it)")
    pki.issue(directory / "pki", IDENTITY.stem, IDENTITY.common_name)
    kubectl("apply", "-f", "-", input=json.dumps(RBAC))
    bridge = bridge_address()
    argv = ["java", "-Xmx512m", "-jar", str(zipkin_jar()),
            f"--armeria.ports[0].port={ZIPKIN_PORT}", "--armeria.ports[0].ip=127.0.0.1",
            "--armeria.ports[0].protocols[0]=http"]  # fmt: skip
    if bridge:
        argv += [f"--armeria.ports[1].port={ZIPKIN_PORT}", f"--armeria.ports[1].ip={bridge}",
                 "--armeria.ports[1].protocols[0]=http"]  # fmt: skip
        kubectl("create", "namespace", SYSTEM_NAMESPACE, check=False)
        kubectl("apply", "-f", "-", input=json.dumps(zipkin_service(bridge)))
    logs = directory / "logs"
    started = [processes.spawn("zipkin", argv, logs / "zipkin.log")]
    log(f"started zipkin (pid {started[0].pid}) on http://127.0.0.1:{ZIPKIN_PORT}")
    targets_port = ports.get("podtargets") or free_port()
    ports["podtargets"] = targets_port
    started.append(
        processes.spawn(
            "podtargets",
            [sys.executable, "-m", "hack.localcluster.podtargets", f"--server={server}",
             f"--pki={directory / 'pki'}", f"--port={targets_port}"],
            logs / "podtargets.log",
            cwd=REPO,
        )
    )  # fmt: skip
    port = ports.get("prometheus") or free_port()
    ports["prometheus"] = port
    config = directory / "prometheus.yml"
    config.write_text(prometheus_config(targets_port))
    data = directory / "prometheus"
    data.mkdir(exist_ok=True)
    started.append(
        processes.spawn(
            "prometheus",
            [prometheus, f"--config.file={config}", f"--storage.tsdb.path={data}",
             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1d"],
            logs / "prometheus.log",
        )
    )  # fmt: skip
    log(f"started prometheus (pid {started[-1].pid}) on http://127.0.0.1:{port}")
    return started
