"""InMemoryChannel: a per-channel Service pointing at the shared dispatcher, and status."""
