"""flows.knative.dev Sequence and Parallel: channels and Subscriptions, no data plane of their
own (the dispatcher delivers through the channels they make)."""
