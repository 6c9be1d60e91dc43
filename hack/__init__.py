"""Development tooling: the local cluster, its node agent and helper scripts."""
