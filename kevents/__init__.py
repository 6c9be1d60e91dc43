"""kevents: the shared lower layer (settings, sender, retries, metrics, tracing, runner).

Modules (import the module, not its names):

- `errors`: the exception tree (KeventsError, ConfigError, InvalidEventError, DeliveryError...).
- `settings`: `EnvReader` field parsers and the frozen `AdapterSettings` (Knative env contract).
- `retries`: frozen `RetryPolicy` (Knative DeliverySpec, backoff, Retry-After), ISO-8601 durations.
- `cloudevent`: build / encode (binary, structured) / decode CloudEvents, K_CE_OVERRIDES.
- `rawevent`: `RawEvent`, a received CloudEvent validated and kept as its bytes (forwarders).
- `delivery`: frozen `DeliveryResult` and dead-letter extensions.
- `sender`: `Sender` (retries, tracing, metrics over `transport`), `Clock`, `EventSender`.
- `transport`: one HTTP attempt (default timeouts): the `connections` pool for http, aiohttp
  for https.
- `connections`: `Pool` of keep-alive HTTP/1.1 connections (plain or TLS), answers parsed by
  llhttp (httptools) within limits, idle connections reaped, `Stream`ed bodies for watches.
- `kubeapi`: the one Kubernetes client (`KubeApi`, `Config`) on `connections`.
- `sendqueue`: `SendQueue`, a bounded queue with workers, backpressure and drain.
- `metrics`: `SenderMetrics` on a registry passed in, the `/metrics` answer.
- `probes`: `Readiness` and the `/health` + `/readiness` answers.
- `opserver`: the small bounded HTTP server of the metrics and probes ports (`endpoints`).
- `webserver`: `WebServer`, an aiohttp app as a runner component.
- `tracing`: `TracingConfig`, `make_provider`, W3C + B3 `inject`/`extract`.
- `logs`: JSON/text logging setup with context fields and trace ids.
- `runner`: `Runner` (ordered start, reverse stop, drain on SIGTERM) and `main` (uvloop).
- `lazykube`: kubernetes_asyncio without its generated classes until used (installed here).
"""

from kevents import lazykube

lazykube.install()
