"""The README's benchmark charts, drawn from the saved JSON (bench/results.py):

    .venv/bin/python -m bench.plots [DIR]       # every DIR/*.json -> DIR/*.svg (bench/results/)

One SVG per bench: the throughput metric and the p99 latency side by side, one group of bars
per case and one bar per system (kevents' variants in blues, the naive baseline in grey,
Knative in orange once measured), each bar labelled with its value. Matplotlib's Agg backend
(no display); the SVG carries no date and fixed ids, so an unchanged JSON redraws to the same
file.
"""

from __future__ import annotations

import json
import pathlib
import statistics
import sys
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # (after choosing the backend)

from bench import results

BLUES = ("#0b5cad", "#4a90d9", "#8bbcef", "#1d3f73", "#6aa7e0", "#b9d6f5")
BASELINES = ("naive", "baseline", "raw ", "kafka producerperf", "kafka consumerperf")
"""Systems drawn grey: what kevents is compared with (naive forwarder, raw client, Kafka's
own perf tools)."""


def _color(system: str, kevents_index: int) -> str:
    name = system.lower()
    if any(word in name for word in BASELINES):
        return "#8c8c8c"
    if "knative" in name:
        return "#e67700"
    return BLUES[kevents_index % len(BLUES)]


def _value_text(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _tick(value: float, _position: object = None) -> str:
    """Axis numbers without matplotlib's `1e6` offset: 500, 20k, 1.5M."""
    if abs(value) >= 1e6:
        return f"{value / 1e6:g}M"
    if abs(value) >= 1e3:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def _bars(ax: Any, rows: list[dict[str, Any]], metric: str, label: str) -> None:
    cases = list(dict.fromkeys(r["case"] for r in rows if metric in r["metrics"]))
    systems = list(dict.fromkeys(r["system"] for r in rows if metric in r["metrics"]))
    kevents = [s for s in systems if _color(s, 0) in BLUES]
    height = 0.8 / max(1, len(systems))
    for i, system in enumerate(systems):
        color = _color(system, kevents.index(system) if system in kevents else 0)
        ys, values = [], []
        for c, case in enumerate(cases):
            found = [
                r["metrics"][metric]
                for r in rows
                if r["case"] == case and r["system"] == system and metric in r["metrics"]
            ]
            if found:
                ys.append(c + (i - (len(systems) - 1) / 2) * height)
                values.append(statistics.median(found))  # repeated runs: the median
        drawn = ax.barh(ys, values, height=height * 0.92, color=color, label=system)
        ax.bar_label(drawn, labels=[_value_text(v) for v in values], padding=3, fontsize=7)
    ax.set_yticks(range(len(cases)), cases, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(label, fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_tick))
    ax.margins(x=0.22)
    ax.grid(axis="x", color="#e5e7eb", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def chart(path: pathlib.Path) -> pathlib.Path:
    """Draw `path` (a bench's JSON) as the SVG beside it; answers the SVG's path."""
    doc = json.loads(path.read_text())
    rows: list[dict[str, Any]] = doc["rows"]
    panels = [tuple(doc["rate"])] + ([tuple(doc["latency"])] if doc.get("latency") else [])
    panels = [p for p in panels if any(p[0] in r["metrics"] for r in rows)]
    cases = len({r["case"] for r in rows})
    systems = len({r["system"] for r in rows})
    height = 1.2 + 0.22 * cases * max(1, systems) + 0.3
    plt.rcParams["svg.hashsalt"] = doc["bench"]
    plt.rcParams["svg.fonttype"] = "none"  # text stays text: small, searchable SVG
    width = 9.2 if len(panels) > 1 else 7.0
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(width, height))
    axes_list = list(axes) if len(panels) > 1 else [axes]
    for ax, (metric, label) in zip(axes_list, panels, strict=False):
        _bars(ax, rows, metric, label)
    title = doc["title"]
    if doc.get("short_run"):
        seconds = doc["args"].get("seconds")
        title += f"  (short run: {seconds} s per measurement)" if seconds else "  (short run)"
    fig.suptitle(title, fontsize=9, x=0.01, ha="left")
    handles, labels = axes_list[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=7,
               frameon=False)  # fmt: skip
    fig.tight_layout(rect=(0, 0.06 + 0.04 * (len(labels) > 4), 1, 0.95))
    out = path.with_suffix(".svg")
    fig.savefig(out, format="svg", metadata={"Date": None})
    plt.close(fig)
    return out


def main(argv: list[str]) -> int:
    folder = pathlib.Path(argv[0]) if argv else results.DEFAULT_DIR
    found = sorted(folder.glob("*.json"))
    if not found:
        print(f"no results in {folder}: run a bench/ script with --results first")
        return 1
    for path in found:
        print(f"{path.name} -> {chart(path).name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
