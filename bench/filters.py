"""Micro-benchmark: Trigger filter evaluations per second (each filter compiled once).

    .venv/bin/python -m bench.filters [--seconds 1.0] [--results [DIR]]

Prints one line per typical filter: evaluations/s and ns per evaluation, for a matching and a
non-matching event.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping, Sequence

from bench import results
from kevents.eventfilter import dialects, trigger

MATCHING: Mapping[str, object] = {
    "specversion": "1.0",
    "id": "5b3c4f1e",
    "source": "x",
    "type": "dev.knative.apiserver.resource.add",
    "subject": "/apis/v1/namespaces/default/pods/p",
    "buildstatus": "failed",
    "sequence": "42",
}
OTHER: Mapping[str, object] = {**MATCHING, "type": "com.example.other", "buildstatus": "ok"}

Spec = tuple[str, Mapping[str, str] | None, Sequence[Mapping[str, object]] | None]

FILTERS: list[Spec] = [
    ("attributes type", {"type": "dev.knative.apiserver.resource.add"}, None),
    (
        "attributes type+ext",
        {"type": "dev.knative.apiserver.resource.add", "buildstatus": "failed"},
        None,
    ),
    ("exact", None, [{"exact": {"buildstatus": "failed"}}]),
    ("prefix+suffix", None, [{"prefix": {"type": "dev.knative."}}, {"suffix": {"type": ".add"}}]),
    ("any/not", None, [{"any": [{"exact": {"id": "1"}}, {"not": {"exact": {"source": "y"}}}]}]),
    ("cesql LIKE AND =", None, [{"cesql": "type LIKE 'dev.knative.%' AND source = 'x'"}]),
    ("cesql IN", None, [{"cesql": "buildstatus IN ('failed', 'error', 'timeout')"}]),
    ("cesql cast+math", None, [{"cesql": "sequence + 1 > 10 AND LOWER(buildstatus) = 'failed'"}]),
]


def rate(matcher: dialects.Filter, event: Mapping[str, object], seconds: float) -> float:
    matches = matcher.matches
    count, batch = 0, 1000
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            matches(event)
        count += batch
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


RESULTS = results.Recorder(
    "filters",
    "Trigger filter evaluations per second (one core, each filter compiled once)",
    rate=("evals_per_s", "evaluations/s"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    results.add_argument(parser)
    args = parser.parse_args()
    print(f"{'filter':<22}{'match evals/s':>16}{'ns':>8}{'miss evals/s':>16}{'ns':>8}")
    for name, attributes, filters in FILTERS:
        matcher = trigger.compile_trigger_filter(attributes, filters)
        assert matcher.matches(MATCHING), name
        hit = rate(matcher, MATCHING, args.seconds)
        miss = rate(matcher, OTHER, args.seconds)
        print(f"{name:<22}{hit:>16,.0f}{1e9 / hit:>8.0f}{miss:>16,.0f}{1e9 / miss:>8.0f}")
        RESULTS.add("matching event", name, evals_per_s=hit, ns=1e9 / hit)
        RESULTS.add("other event", name, evals_per_s=miss, ns=1e9 / miss)
    RESULTS.save(args)


if __name__ == "__main__":
    main()
