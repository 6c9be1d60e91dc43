"""ApiServerSource receive adapter: Kubernetes object changes as CloudEvents."""
