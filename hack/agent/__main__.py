"""`python -m hack.agent run ... | cleanup --state-dir D [--network] | network-free | leftovers`.

`hack/localcluster` drives the agent only through this command line (it never imports the
agent): `run` as the node's kubelet, `network-free` before deciding on `--no-network`, and
`cleanup` after `down` stopped the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pathlib
import signal
import sys

from hack.agent import agent, containers, network, pods, settings


async def _main(s: settings.Settings) -> None:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await agent.run(s)
    except asyncio.CancelledError:
        logging.getLogger("hack.agent").info("Agent stopped.")


def _cleanup(state_dir: pathlib.Path, *, network_owned: bool) -> int:
    """No container of ours is left; with `network_owned`, no netns, link or rule either.

    Exit code 2 when the network was to be removed but an agent holds it (left in place)."""
    for what in pods.kill_leftover_processes(state_dir):
        print(f"killed {what}")
    left = 0
    if network_owned:
        if network.lock_free():
            for what in network.cleanup():
                print(f"removed {what}")
        else:
            print("pod network left in place: an agent holds it")
            left = 2
    with contextlib.suppress(OSError):
        pathlib.Path(containers.STAGE).rmdir()
    return left


def main(argv: list[str] | None = None) -> int:
    args = settings.parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command == "run":
        asyncio.run(_main(settings.from_args(args)))
    elif args.command == "cleanup":
        return _cleanup(args.state_dir, network_owned=args.network)
    elif args.command == "network-free":
        return 0 if os.geteuid() == 0 and network.lock_free() else 1
    elif args.command == "leftovers":
        found = network.leftovers()
        for what in found:
            print(what)
        return 1 if found else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
