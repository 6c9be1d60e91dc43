"""The broker's data plane (Knative's MT channel-based broker), served by the dispatcher.

| module           | concept                                                              |
|------------------|----------------------------------------------------------------------|
| `ingress`        | `POST /<ns>/<broker>` into the broker's trigger channel; the shared port |
| `filterendpoint` | Knative's filter contract `POST /triggers/<ns>/<name>/<uid>`          |
| `triggers`       | Trigger objects -> compiled filters and subscribers (pure)            |
| `ttl`            | the `knativebrokerttl` hop limit (pure)                               |

The channel machinery underneath (ingress, routing, fan-out, lanes, courier) is the
dispatcher's own and is shared with InMemoryChannels; the courier filters Triggers
in-process through `triggers` and lowers reply TTLs through `ttl`.
"""
