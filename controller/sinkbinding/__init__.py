"""SinkBinding: subjects, injection, reconciler, admission webhook with its certificates."""
