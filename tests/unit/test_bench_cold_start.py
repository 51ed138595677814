"""bench/cold_start.py's summary and its section of docs/benchmarks.md (bench/report.py)."""

from bench import report
from bench.cold_start import summarise


def _run(wall: float, phases: dict, cpu: float = 0.5) -> dict:
    return {
        "wall_s": wall,
        "startup_s": 0.05,
        "phases": phases,
        "cpu_s": cpu,
        "peak_rss_mib": 110.0,
        "second_answer_s": 0.03,
    }


def test_summary_keeps_a_phase_only_some_runs_have():
    items = [
        _run(1.0, {"import numpy": 0.2, "model load: session creation": 0.04}),
        _run(3.0, {"import numpy": 0.4}),
        _run(2.0, {"import numpy": 0.3, "model load: session creation": 0.06}),
    ]
    summary = summarise(items)
    assert summary["median_s"] == 2.0 and summary["min_s"] == 1.0 and summary["max_s"] == 3.0
    assert list(summary["phases_median_s"]) == ["interpreter start", "import numpy", "model load: session creation"]
    assert summary["phases_median_s"]["import numpy"] == 0.3
    assert summary["phases_median_s"]["model load: session creation"] == 0.05


def _data() -> dict:
    candidate = summarise([_run(0.8, {"import numpy": 0.2, "model load: file check": 0.004})])
    reference = summarise([_run(1.0, {"import numpy": 0.2})])
    return {
        "command": "python -m bench.cold_start --reference abc",
        "load_average_before": [2.0, 2.1, 2.2],
        "load_average_after": [2.3, 2.1, 2.2],
        "kinds": {"candidate": {"label": "new", **candidate}, "reference": {"label": "old", **reference}},
        "ratio": {"wall_median_of_pairs": 0.8, "cpu_median_of_pairs": 0.9},
    }


def test_section_states_the_load_the_ratio_and_every_phase():
    text = "\n".join(report.cold_start_section(_data()))
    assert "before 2.0, 2.1, 2.2, after 2.3, 2.1, 2.2" in text
    assert "wall 0.800, CPU 0.900" in text
    assert "| model load: file check | 0.004 | n/a |" in text
    assert report.cold_start_section(None) == []


def test_section_replaces_its_previous_version_or_goes_before_the_snapstart_note():
    section = "\n".join(report.cold_start_section(_data()))
    document = "## Cold start\n\ntable\n\nWhat SnapStart would restore: ...\n\n## Package size\n"
    once = report.replace_cold_start_section(document, section)
    assert once.index(report.COLD_START) < once.index("What SnapStart") and "table" in once
    again = report.replace_cold_start_section(once, section.replace("0.800", "0.700"))
    assert again.count(report.COLD_START) == 1 and "0.700" in again and "0.800" not in again
