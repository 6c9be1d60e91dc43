"""KafkaChannel (`messaging.knative.dev/v1beta1`): a channel stored in a Kafka topic."""
