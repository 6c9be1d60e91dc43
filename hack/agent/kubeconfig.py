"""The agent's identity: the shared Kubernetes client (`kevents.kubeapi.KubeApi`) from a
kubeconfig.

The agent authenticates as `system:node:<name>` with the client certificate its kubeconfig
names; kubernetes-asyncio's loader reads it (TLS, CA, client certificate), and every request, error
and watch then goes through the one client and watch loop of `kevents`, so the agent meets
the same error tree (NotFound, Conflict, Gone, Forbidden, Unreachable) as the product.
"""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import yaml
from kubernetes_asyncio import client, config

from kevents import kubeapi


@contextlib.asynccontextmanager
async def connect(path: pathlib.Path) -> AsyncIterator[kubeapi.KubeApi]:
    """A client for the apiserver and user of the kubeconfig's current context."""
    cfg = client.Configuration()
    await config.load_kube_config(config_file=str(path), client_configuration=cfg)
    async with kubeapi.KubeApi(kubeapi.Config.of(cfg)) as api:
        yield api


def server(path: pathlib.Path) -> str:
    """The apiserver URL of the kubeconfig's current context."""
    doc: Any = yaml.safe_load(path.read_text())
    ctx = next(c["context"] for c in doc["contexts"] if c["name"] == doc["current-context"])
    cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == ctx["cluster"])
    return str(cluster["server"]).rstrip("/")
