"""The multi-tenant PingSource adapter: one process fires the cron ticks of every PingSource.

Modules: `spec` (a PingSource -> `Job`, checked by the shared `kevents.pingspec` rules and
scheduled by `kevents.schedules`),
`events` (the CloudEvent of a tick), `timetable` (the heap of next fire times), `clock`
(injectable time), `adapter` (informer handler, fenced firing loop, send workers),
`metrics`, `settings`; `python -m sources.ping` runs it.
"""
