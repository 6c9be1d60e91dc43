"""Broker (MTChannelBasedBroker): defaults, the trigger channel, the shared ingress/filter."""
