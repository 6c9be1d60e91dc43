"""Broker class `Kafka`: a topic per Broker (eventing-kafka-broker's control plane)."""
