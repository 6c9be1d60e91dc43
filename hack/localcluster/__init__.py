"""The local Kubernetes control plane built from upstream Go modules."""
