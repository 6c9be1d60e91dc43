"""Which channel a request is for: by path `/NS/NAME`, else by Host header (pure).

Host-based routing is Knative's default: `POST /` to `<name>-kn-channel.<ns>.svc.cluster.local`
(any suffix after the namespace label, any port). Path-based routing (`/<ns>/<name>`, a
trailing slash ignored) serves callers that reach the dispatcher directly.
"""

from __future__ import annotations

import functools

from dispatcher import channels

CHANNEL_SUFFIX = "-kn-channel"


class RoutingError(Exception):
    """The request names no channel in a valid way; `status` and `reason` make the answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@functools.lru_cache(maxsize=4096)
def from_host(host: str) -> channels.Key:
    """(namespace, name) from `<name>-kn-channel.<ns>[.svc.cluster.local][:port]`."""
    hostname = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    labels = hostname.lower().split(".")
    if len(labels) < 2 or not labels[0] or not labels[1]:
        raise RoutingError(
            400, f"cannot tell the channel from Host {host!r}: expected <name>-kn-channel.<ns>"
        )
    name = labels[0]
    if name.endswith(CHANNEL_SUFFIX):
        name = name[: -len(CHANNEL_SUFFIX)]
    return (labels[1], name)


@functools.lru_cache(maxsize=4096)
def from_path(path: str) -> channels.Key:
    """(namespace, name) from `/<ns>/<name>` (trailing slash ignored)."""
    parts = path.strip("/").split("/")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise RoutingError(
            400, f"path {path!r} names no channel: use / with the channel's Host, or /<ns>/<name>"
        )
    return (parts[0], parts[1])


def resolve(host: str, path: str) -> channels.Key:
    """The channel key of a request; raises `RoutingError` (400) when it names none."""
    if path == "/" or not path:
        return from_host(host)
    return from_path(path)
