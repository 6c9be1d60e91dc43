"""The Kafka Broker class's data plane (`python -m dispatcher.kafkabroker`).

| module      | concept                                                                  |
|-------------|--------------------------------------------------------------------------|
| `brokers`   | Broker and Trigger objects -> what is served (pure)                      |
| `groups`    | one consumer group member per Trigger, delivering through the Courier    |
| `settings`  | the deployable's Settings                                                |
| `service`   | informers -> ingress + groups, assembled for `kevents.runner`            |

Nothing here is new machinery: the ingress is the KafkaSink ingress's (`POST /<ns>/<name>`,
202 once Kafka acknowledged), the consumer lanes are `kevents.consumergroup`, and delivery
(filter, retries, reply, dead letter) is the channel broker's `dispatcher.dispatch.Courier`
with its Trigger table (`dispatcher.broker.triggers`).
"""
