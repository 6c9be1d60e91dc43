"""Channel dispatcher: ingress, fan-out and subscription delivery."""
