"""KafkaSink: its topic, its credentials, its address on the shared KafkaSink ingress."""
