"""A free loopback port for a process about to listen on it (the cluster, benchmarks).

The kernel picks an unused port; the socket is closed before the caller's process binds it,
so another process could take it in between: fine for one developer's machine, where the
callers start their listeners at once.
"""

from __future__ import annotations

import contextlib
import socket


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_ports(*counts: int, host: str = "127.0.0.1") -> list[int]:
    """For each of `counts`, the first of that many consecutive free ports (a process with N
    workers listening on `port + i`), none overlapping another: every socket stays bound
    until all are found, so the kernel cannot hand one out twice."""
    found: list[int] = []
    with contextlib.ExitStack() as held:

        def hold(port: int) -> bool:
            s = held.enter_context(socket.socket())
            try:
                s.bind((host, port))
            except OSError:
                return False
            return True

        for count in counts:
            while True:
                first = held.enter_context(socket.socket())
                first.bind((host, 0))
                base = int(first.getsockname()[1])
                if base + count <= 65536 and all(hold(base + i) for i in range(1, count)):
                    found.append(base)
                    break
    return found
