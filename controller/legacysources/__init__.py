"""The old `sources.eventing.knative.dev/v1alpha1` kinds, mirrored into today's objects."""
