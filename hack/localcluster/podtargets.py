"""Pod scrape targets for Prometheus over HTTP service discovery.

Debian builds its `prometheus` package without the Kubernetes service discovery
(`kubernetes_sd_configs` is "not found in type config.ScrapeConfig" in 2.42.0+ds), so this
small server does that one job with the same rules Prometheus' pod role + the usual relabelling
would apply: every Running pod annotated `prometheus.io/scrape: "true"` becomes a target at
`<podIP>:<prometheus.io/port>` with path `prometheus.io/path` (default /metrics), labelled
`namespace`, `pod` and `app`. It reads pods with Prometheus' own client certificate (a
read-only ClusterRole), so it sees exactly what a real Prometheus in the cluster would.

    python -m hack.localcluster.podtargets --server URL --pki DIR --port N   (serves /targets)
"""

from __future__ import annotations

import argparse
import http.server
import json
import pathlib
import ssl
import urllib.request
from typing import Any


def targets(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """http_sd_config groups for the annotated, running pods in a pod list."""
    groups = []
    for pod in pods:
        meta = pod.get("metadata", {})
        notes = meta.get("annotations") or {}
        status = pod.get("status", {})
        ip = status.get("podIP")
        if notes.get("prometheus.io/scrape") != "true" or status.get("phase") != "Running":
            continue
        port = notes.get("prometheus.io/port")
        if not ip or not port or not str(port).isdigit():
            continue
        labels = {
            "namespace": meta.get("namespace", ""),
            "pod": meta.get("name", ""),
            "__metrics_path__": notes.get("prometheus.io/path") or "/metrics",
        }
        app = (meta.get("labels") or {}).get("app.kubernetes.io/name") or (
            meta.get("labels") or {}
        ).get("app")
        if app:
            labels["app"] = app
        groups.append({"targets": [f"{ip}:{port}"], "labels": labels})
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", required=True)
    parser.add_argument("--pki", required=True, type=pathlib.Path)
    parser.add_argument("--port", required=True, type=int)
    args = parser.parse_args()
    context = ssl.create_default_context(cafile=str(args.pki / "ca.crt"))
    context.load_cert_chain(str(args.pki / "prometheus.crt"), str(args.pki / "prometheus.key"))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/targets":
                self.send_error(404)
                return
            try:
                with urllib.request.urlopen(
                    f"{args.server}/api/v1/pods", context=context, timeout=10
                ) as resp:
                    body = json.dumps(targets(json.load(resp).get("items", []))).encode()
            except OSError as err:
                self.send_error(502, f"listing pods failed: {err}")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *values: Any) -> None:
            return  # Prometheus polls every few seconds; keep the log for errors only

    http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
