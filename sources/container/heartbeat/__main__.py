"""`python -m sources.container.heartbeat`: Knative's heartbeats sample (a ContainerSource)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from kevents import logs, retries, runner, sender, settings
from sources.container.heartbeat import beat

logger = logging.getLogger("sources.container.heartbeat")


async def main() -> int:
    options = settings.load_or_exit(lambda: beat.parse_args(sys.argv[1:], os.environ))
    logs.setup("INFO", "text")
    logger.info("Heartbeats source %s, every %.3g s, to %s.",
                options.event_source, options.period, options.sink)  # fmt: skip
    policy = retries.RetryPolicy(retry=3, backoff_delay=0.2)
    async with sender.Sender(policy=policy, ca_certs=os.environ.get("K_CA_CERTS")) as send:
        sequence = 0
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            sequence += 1
            result = await send.send(beat.event(options, sequence), options.sink)
            if not result.ok:
                logger.warning("Heartbeat %d was not delivered: %s.", sequence,
                               result.error or result.status)  # fmt: skip
            if options.one_shot:
                return 0 if result.ok else 1
            next_at += options.period
            await asyncio.sleep(max(0.0, next_at - loop.time()))


if __name__ == "__main__":
    runner.main(main)
