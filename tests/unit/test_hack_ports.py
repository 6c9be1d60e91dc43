"""hack.ports: free ports for processes about to listen, none handed out twice."""

from __future__ import annotations

import socket

from hack import ports


def test_free_ports_are_runs_of_bindable_ports_that_never_overlap() -> None:
    for _ in range(50):
        found = ports.free_ports(1, 3, 1, 2)
        used = [base + i for base, count in zip(found, (1, 3, 1, 2), strict=True)
                for i in range(count)]  # fmt: skip
        assert len(used) == len(set(used)), found
        for port in used:  # released: the caller's processes can bind every one
            with socket.socket() as s:
                s.bind(("127.0.0.1", port))


def test_a_taken_port_is_never_part_of_a_run() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        busy = taken.getsockname()[1]
        for _ in range(50):
            base = ports.free_ports(4)[0]
            assert not base <= busy < base + 4
