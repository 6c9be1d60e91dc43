"""PingSource: spec validation, sink resolution and the shared multi-tenant adapter."""
