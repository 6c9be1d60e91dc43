"""Subscription: resolves its destinations and registers them in its channel."""
