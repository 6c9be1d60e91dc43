"""Benchmark results as data: every bench/ script records the rows it prints here and, with
`--results [DIR]` (DIR defaults to bench/results/), writes DIR/<bench>.json and the chart
DIR/<bench>.svg (bench/plots.py draws it; `python -m bench.plots` redraws every chart from
the saved JSON, which is what the README embeds).

A row is one measured configuration:

    system   the bar: "kevents --workers 1 (sync)", "naive forwarder", "Knative", ...
    case     the group of bars: "1 subscriber", "10 triggers", ...
    metrics  numbers by name; the chart shows the bench's `rate` metric (events/s or the
             like: higher is better) and its `latency` metric (p99 ms: lower is better)
             side by side, and the JSON keeps every metric

    {"bench": "dispatcher", "title": "...", "rate": ["events_per_s", "accepted events/s"],
     "latency": ["p99_ms", "p99 latency at 1000 events/s (ms)"], "when": "2026-12-02T08:30Z",
     "args": {"seconds": 2.0, ...}, "short_run": true, "rows": [{"system": ..., "case": ...,
     "metrics": {...}}]}

`short_run` marks results of runs shorter than 10 s per measurement, or shorter than the
bench's default count (first charts, smoke runs): the chart says so in its title.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import pathlib
from collections.abc import Sequence
from typing import Any

DEFAULT_DIR = pathlib.Path(__file__).resolve().parent / "results"
SHORT_RUN_SECONDS = 10.0


@dataclasses.dataclass(frozen=True, slots=True)
class Row:
    system: str
    case: str
    metrics: dict[str, float]


@dataclasses.dataclass
class Recorder:
    """The rows of one bench run, and what the chart shows of them."""

    bench: str
    title: str
    rate: tuple[str, str]
    """(metric name, axis label) of the throughput chart."""
    latency: tuple[str, str] | None = None
    """(metric name, axis label) of the latency chart; None when the bench has none."""
    rows: list[Row] = dataclasses.field(default_factory=list)

    def add(self, system: str, case: str, **metrics: float) -> None:
        self.rows.append(Row(system, case, {k: float(v) for k, v in metrics.items()}))

    def document(self, args: argparse.Namespace, short_run: bool = False) -> dict[str, Any]:
        settings = {k: v for k, v in vars(args).items() if k != "results" and _plain(v)}
        seconds = settings.get("seconds")
        short_run = short_run or isinstance(seconds, int | float) and seconds < SHORT_RUN_SECONDS
        return {
            "bench": self.bench,
            "title": self.title,
            "rate": list(self.rate),
            "latency": list(self.latency) if self.latency else None,
            "when": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%MZ"),
            "cpus": os.cpu_count(),
            "args": settings,
            "short_run": short_run,
            "rows": [dataclasses.asdict(r) for r in self.rows],
        }

    def save(self, args: argparse.Namespace, short_run: bool = False) -> pathlib.Path | None:
        """With `--results`, write the JSON and the SVG; answers the JSON's path. A bench
        measured by counts rather than `--seconds` says itself whether the run was short."""
        directory = getattr(args, "results", None)
        if directory is None:
            return None
        from bench import plots  # matplotlib only when charts are asked for

        folder = pathlib.Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.bench}.json"
        path.write_text(json.dumps(self.document(args, short_run), indent=2) + "\n")
        plots.chart(path)
        print(f"results: {path} and {path.with_suffix('.svg')}")
        return path


def percentile(values: Sequence[float], q: float) -> float:
    """The `q` quantile (0..1) of `values`, nearest rank below (no interpolation); NaN when
    there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def add_argument(parser: argparse.ArgumentParser) -> None:
    """`--results [DIR]`: also write the results as JSON and an SVG chart."""
    parser.add_argument(
        "--results",
        nargs="?",
        const=str(DEFAULT_DIR),
        default=None,
        metavar="DIR",
        help="also write <bench>.json and <bench>.svg into DIR (default bench/results/)",
    )


def _plain(value: object) -> bool:
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, str | int | float | bool)
