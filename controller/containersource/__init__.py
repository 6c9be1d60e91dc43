"""ContainerSource: a SinkBinding + a Deployment from the user's pod template."""
