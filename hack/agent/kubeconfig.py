"""The agent's identity: the shared Kubernetes client (`kevents.kubeapi.KubeApi`) from a
kubeconfig.

The agent authenticates as `system:node:<name>` with the client certificate its kubeconfig
names (read by `kevents.kubeapi`), and every request, error and watch then goes through the
one client and watch loop of `kevents`, so the agent meets the same error tree (NotFound,
Conflict, Gone, Forbidden, Unreachable) as the product.
"""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import AsyncIterator

from kevents import errors, kubeapi


@contextlib.asynccontextmanager
async def connect(path: pathlib.Path) -> AsyncIterator[kubeapi.KubeApi]:
    """A client for the apiserver and user of the kubeconfig's current context."""
    async with kubeapi.KubeApi(await kubeapi.configuration(path)) as api:
        yield api


def server(path: pathlib.Path) -> str:
    """The apiserver URL of the kubeconfig's current context."""
    config = kubeapi.from_kubeconfig(path)
    if config is None:
        raise errors.ConfigError([f"{path}: credentials need kubernetes-asyncio's loader"])
    return config.host
