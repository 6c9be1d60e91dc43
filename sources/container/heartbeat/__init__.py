"""The heartbeats sample: a ContainerSource image sending a numbered CloudEvent periodically."""
