"""GitHubSource receive adapter: verified GitHub webhooks as `dev.knative.source.github.*` events.

Modules (import the module, not its names):

- `config`: the frozen `Settings` read from env (GITHUB_* plus Knative's adapter contract).
- `payloads`: `TypedDict`s of the raw webhook JSON fields the adapter reads.
- `events`: pure webhook -> CloudEvent mapping (type, source, subject, extensions as upstream).
- `signature`: `X-Hub-Signature-256` verification (HMAC-SHA256, constant time, streamed).
- `intake`: reading unauthenticated bodies in bounded memory (byte budget, one copy, timeout).
- `deliveries`: `DeliveryCache`, the bounded LRU+TTL memory of delivered `X-GitHub-Delivery` ids.
- `forwarder`: `Forwarder`, bounded queue to the sink that tells each webhook its outcome.
- `receiver`: `Receiver`, the webhook endpoint on `kevents.httpserver` (checks, answers).
- `metrics`: webhook counters and latency on a registry passed in.
"""
