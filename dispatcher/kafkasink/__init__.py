"""The KafkaSink ingress (`python -m dispatcher.kafkasink`): CloudEvents POSTed to
`/<namespace>/<kafkasink>` become records of the sink's Kafka topic, answered 202 only after
Kafka acknowledged them (`acks=all`).

Why here and why its own Deployment: it is the dispatcher layer's ingress with Kafka as the
storage (ARCHITECTURE.md: "KafkaSink ingress, as other storage behind the same ingress"), so
it lives in `dispatcher/` and shares its routing rules; it runs as its own Deployment
(`kafka-sink-ingress`, Knative's `kafka-sink-receiver`) because it must read the Secrets the
sinks name for their Kafka credentials, a grant the channel dispatcher should never hold,
and because a Kafka outage must not touch in-memory channels and brokers.
"""
