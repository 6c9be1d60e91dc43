"""Knative event filters as compiled matchers over a CloudEvent's attributes.

    attributes  attribute lookup (string forms) and the legacy `filter.attributes` filter
    dialects    SubscriptionsAPI matchers: exact, prefix, suffix, all, any, not, cesql
    trigger     validation with field paths, and `compile_trigger_filter()` choosing the dialect

Events are mappings of attribute name -> value (context attributes and extensions), so the
filters do not depend on the CloudEvents SDK.
"""
