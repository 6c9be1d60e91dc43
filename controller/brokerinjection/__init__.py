"""Broker injection ("sugar"): a `default` Broker for labelled namespaces."""
