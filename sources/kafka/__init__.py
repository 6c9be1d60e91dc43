"""The KafkaSource receive adapter (`python -m sources.kafka`)."""
