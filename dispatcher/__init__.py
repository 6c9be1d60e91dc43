"""Channel dispatcher: ingress, fan-out and subscription delivery; broker ingress and filter."""

from kevents import lazykube

lazykube.install()  # before anything imports kubernetes_asyncio (see kevents.lazykube)
