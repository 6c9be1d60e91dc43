"""kevents: the shared lower layer (settings, sender, retries, metrics, tracing, runner)."""
