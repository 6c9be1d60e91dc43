"""Benchmarks: scripts that print events/s, latency percentiles and RSS."""
