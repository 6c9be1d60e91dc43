"""A free loopback port for a process about to listen on it (the cluster, benchmarks).

The kernel picks an unused port; the socket is closed before the caller's process binds it,
so another process could take it in between: fine for one developer's machine, where the
callers start their listeners at once.
"""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
