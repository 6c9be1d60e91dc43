"""The CRD conversion webhook (`/convert`): legacy `v1alpha1` Broker, Trigger, InMemoryChannel,
Channel and Subscription served next to `v1`, which is what etcd stores.

- `fields.py`: how a spec is mapped field by field, and the round-trip annotations that keep
  what one version cannot say;
- `shapes.py`: the v1alpha1 <-> v1 shapes of the shared pieces (destinations, filters,
  channel subscribers, delivery, status);
- `kinds.py`: the per-kind tables and `convert(object, desired_api_version)`;
- `review.py`: the `ConversionReview` HTTP handler, served by the admission webhook's TLS
  server (`controller/sinkbinding/webhook.py`), which also publishes its CA into the CRDs'
  `spec.conversion.webhook.clientConfig.caBundle`.
"""
