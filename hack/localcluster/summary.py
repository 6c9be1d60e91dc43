"""`hack/cluster status` for people: what runs, for how long, on which ports, and where to go.

`status()` in cluster.py answers a dict (printed as JSON for scripts: hack/up, tests); this
module renders the same dict as a few aligned sections:

    cluster: ready (https://127.0.0.1:51345), state in /work/main/.state/cluster
    components
      etcd                     running   pid 28202   up 39m 02s   ports etcd 54413, ...
      ...
    urls
      apiserver    https://127.0.0.1:51345   (KUBECONFIG=.../admin.kubeconfig)
      prometheus   http://127.0.0.1:35269
      zipkin       http://127.0.0.1:9411
    kafka
      bootstrap    127.0.0.1:9092   ...
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hack.localcluster import observability
from hack.progress import render as progress

# Which recorded ports belong to which component (the rest are listed under "other ports").
PORTS_OF = {
    "etcd": ("etcd", "etcd-peer"),
    "kube-apiserver": ("apiserver",),
    "kube-controller-manager": ("kcm",),
    "kube-scheduler": ("scheduler",),
    "kevents-agent": ("kubelet",),
    "kube-proxy": ("proxy-healthz", "proxy-metrics"),
    "coredns": ("coredns-health",),
    "podtargets": ("podtargets",),
    "prometheus": ("prometheus",),
    "kafka": ("kafka", "kafka-sasl", "kafka-pods", "kafka-pods-sasl", "kafka-controller"),
}

KAFKA_LABELS = (
    ("bootstrap", "bootstrap (PLAINTEXT)"),
    ("sasl_bootstrap", "bootstrap (SASL_PLAINTEXT)"),
    ("pods_bootstrap", "from pods"),
    ("pods_sasl_bootstrap", "from pods (SASL)"),
    ("credentials", "test user in"),
)


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))] if rows else []
    return [
        indent + "   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def render(info: Mapping[str, Any]) -> str:
    """The human summary of one `cluster.status()` answer, ending with a newline."""
    ports: dict[str, int] = dict(info.get("ports") or {})
    procs: list[dict[str, Any]] = list(info.get("processes") or [])
    state = "ready" if info.get("ready") else "NOT ready"
    where = f" ({info['apiserver']})" if info.get("apiserver") else ""
    lines = [f"cluster: {state}{where}, state in {info.get('state')}"]
    if not procs:
        lines.append("  nothing recorded: `hack/cluster up` starts it")
        return "\n".join(lines) + "\n"
    rows = []
    for p in procs:
        own = [f"{k} {ports.pop(k)}" for k in PORTS_OF.get(p["name"], ()) if k in ports]
        rows.append([
            p["name"],
            "running" if p.get("alive") else "STOPPED",
            f"pid {p['pid']}",
            f"up {progress.duration(p.get('uptime_seconds'))}" if p.get("alive") else "",
            ("ports " + ", ".join(own)) if own else "",
        ])  # fmt: skip
    lines += ["components", *_table(rows)]
    if ports:
        lines.append("  other ports: " + ", ".join(f"{k} {v}" for k, v in sorted(ports.items())))
    alive = {p["name"] for p in procs if p.get("alive")}
    info_ports: dict[str, int] = dict(info.get("ports") or {})
    urls = []
    if info.get("apiserver"):
        urls.append(["apiserver", str(info["apiserver"]), f"KUBECONFIG={info.get('kubeconfig')}"])
    if "prometheus" in alive and "prometheus" in info_ports:
        urls.append(["prometheus", f"http://127.0.0.1:{info_ports['prometheus']}", ""])
    if "zipkin" in alive:
        urls.append(["zipkin", f"http://127.0.0.1:{observability.ZIPKIN_PORT}", ""])
    lines += ["urls", *_table(urls)]
    kafka = info.get("kafka")
    if kafka:
        lines += [
            "kafka",
            *_table([[label, str(kafka[k])] for k, label in KAFKA_LABELS if k in kafka]),
        ]
    stopped = [p for p in procs if not p.get("alive")]
    if stopped:
        lines.append("logs of stopped components")
        lines += _table([[p["name"], str(p.get("log"))] for p in stopped])
    return "\n".join(lines) + "\n"
