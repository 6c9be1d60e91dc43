"""KafkaSource: the receive adapter Deployment (`adapter`) and the reconciler tying the sink,
the `net` Secrets, the brokers and the Deployment to the status (`reconciler`)."""
