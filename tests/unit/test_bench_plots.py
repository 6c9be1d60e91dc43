"""bench/results.py and bench/plots.py (issue 25): a bench's rows saved as JSON and drawn as
an SVG with throughput and p99 side by side, one bar per system; `python -m bench.plots`
redraws the same file from the JSON."""

from __future__ import annotations

import argparse
import json
import pathlib
import re

from bench import plots, results


def _recorded() -> results.Recorder:
    recorder = results.Recorder(
        "demo", "demo bench", rate=("events_per_s", "events/s"), latency=("p99_ms", "p99 (ms)")
    )
    rows = (
        ("kevents --workers 1 (sync)", 1234.5, 8.25),
        ("naive forwarder", 800.0, 12.5),
        ("Knative IMC (sync)", 950, 9.75),
    )
    for system, rate, p99 in rows:
        recorder.add(system, "1 subscriber", events_per_s=rate, rss_mib=80)
        recorder.add(system, "1 subscriber", p99_ms=p99)
        recorder.add(system, "10 subscribers", events_per_s=rate / 10)
    return recorder


def test_results_are_saved_as_json_and_an_svg_with_every_series(tmp_path: pathlib.Path) -> None:
    args = argparse.Namespace(results=str(tmp_path), seconds=2.0, workers=[1], serve=None)
    path = _recorded().save(args)
    assert path == tmp_path / "demo.json"
    doc = json.loads(path.read_text())
    assert doc["short_run"] is True  # 2 s per measurement: the chart says so
    assert doc["args"] == {"seconds": 2.0, "workers": [1], "serve": None}
    assert doc["rate"] == ["events_per_s", "events/s"] and doc["latency"] == ["p99_ms", "p99 (ms)"]
    assert {"system": "naive forwarder", "case": "1 subscriber",
            "metrics": {"p99_ms": 12.5}} in doc["rows"]  # fmt: skip
    svg = (tmp_path / "demo.svg").read_text()
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    for label in ("kevents --workers 1 (sync)", "naive forwarder", "Knative IMC (sync)",
                  "events/s", "p99 (ms)", "1 subscriber", "10 subscribers",
                  "1,234", "800", "950", "8.25", "12.5", "9.75", "123"):  # fmt: skip
        assert label in texts, (label, texts)
    assert any("short run: 2.0 s per measurement" in t for t in texts)


def test_plots_redraws_every_chart_identically(tmp_path: pathlib.Path) -> None:
    args = argparse.Namespace(results=str(tmp_path), seconds=30.0)
    _recorded().save(args)
    first = (tmp_path / "demo.svg").read_bytes()
    (tmp_path / "demo.svg").unlink()
    assert plots.main([str(tmp_path)]) == 0
    assert (tmp_path / "demo.svg").read_bytes() == first
    assert "short run" not in first.decode()


def test_without_results_nothing_is_written(tmp_path: pathlib.Path) -> None:
    parser = argparse.ArgumentParser()
    results.add_argument(parser)
    assert parser.parse_args([]).results is None
    assert parser.parse_args(["--results"]).results == str(results.DEFAULT_DIR)
    assert _recorded().save(parser.parse_args([])) is None


REPO = pathlib.Path(__file__).resolve().parents[2]


def test_the_readme_shows_every_stored_result_as_the_chart_its_json_draws(
    tmp_path: pathlib.Path,
) -> None:
    """Each bench/results/<bench>.json is embedded as its chart in README.md, and the stored
    SVG is what `python -m bench.plots` draws from that JSON (no chart left stale)."""
    stored = sorted(results.DEFAULT_DIR.glob("*.json"))
    assert stored
    readme = (REPO / "README.md").read_text()
    embedded = set(re.findall(r"!\[[^\]]*\]\(bench/results/([\w-]+)\.svg\)", readme))
    assert {path.stem for path in stored} <= embedded
    for path in stored:
        copy = tmp_path / path.name
        copy.write_text(path.read_text())
        assert plots.chart(copy).read_bytes() == path.with_suffix(".svg").read_bytes(), path.name
