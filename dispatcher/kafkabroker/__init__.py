"""The Kafka data plane: Broker class `Kafka` and KafkaChannel (`python -m dispatcher.kafkabroker`).

| module      | concept                                                                  |
|-------------|--------------------------------------------------------------------------|
| `brokers`   | Broker, Trigger and KafkaChannel objects -> what is served (pure)        |
| `wanted`    | which consumer group members should run (Triggers, channel subscribers)  |
| `groups`    | runs those members, delivering each record through the Courier           |
| `metrics`   | the consumer groups' metrics (bounded labels)                            |
| `settings`  | the deployable's Settings                                                |
| `service`   | informers -> ingresses + groups, assembled for `kevents.runner`          |

Nothing here is new machinery: the ingress is the KafkaSink ingress's (`POST /<ns>/<name>`,
or a channel's Host; 202 once Kafka acknowledged), the consumer lanes are
`kevents.consumergroup` (shared with the KafkaSource adapter), and delivery (filter,
retries, reply, dead letter) is the in-memory channels' `dispatcher.dispatch.Courier` with
the broker's Trigger table (`dispatcher.broker.triggers`).
"""
