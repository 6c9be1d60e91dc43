"""Channel dispatcher: ingress, fan-out and subscription delivery; broker ingress and filter."""
