"""ContainerSource samples: images any container source can be built from."""
