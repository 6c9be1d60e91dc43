"""Cluster fixtures: filled in by the foundation work (real kube-apiserver via hack/cluster)."""
