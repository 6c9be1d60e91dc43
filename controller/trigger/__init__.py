"""Trigger: subscribes the broker filter to the Broker's trigger channel for one subscriber."""
