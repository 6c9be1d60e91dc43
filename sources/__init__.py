"""Event sources: one subpackage per source kind."""

from kevents import lazykube

lazykube.install()  # before anything imports kubernetes_asyncio (see kevents.lazykube)
