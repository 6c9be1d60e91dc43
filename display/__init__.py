"""event-display: the example sink. Logs every CloudEvent like Knative's event_display sample
and shows incoming events live on a small web page (server-sent events)."""
