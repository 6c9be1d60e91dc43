"""EventType (`eventtypes.eventing.knative.dev`): the status of the event registry's entries."""
