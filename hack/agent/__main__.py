"""`python -m hack.agent run ... | cleanup --state-dir D | leftovers`."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from hack.agent import agent, network, pods, settings


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
        for what in pods.kill_leftover_processes(args.state_dir):
            print(f"killed {what}")
        for what in network.cleanup():
            print(f"removed {what}")
    elif args.command == "leftovers":
        found = network.leftovers()
        for what in found:
            print(what)
        return 1 if found else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
