"""A minimal Knative Serving (`serving.knative.dev` Service, Configuration, Revision): what a
sink needs, not autoscaling. Enabled by `SERVING` (see `ownership.py`)."""
