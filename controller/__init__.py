"""Controller: reconcilers for the Knative-compatible resources."""
