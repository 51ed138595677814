"""Smoke tests of the benchmark code (bench/): a few iterations on the random-weights test model, no timing claims.

The real benchmark is `make bench` (minutes, on an idle machine); nothing here measures anything.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import common, handler_split, report, sizes
from tests import fakes

ROOT = Path(__file__).resolve().parents[2]

SHARED_DATA = ROOT.parent / "shared" / "data"


def run_bench_child(module: str, arguments: list[str], out: Path) -> dict:
    """Run a bench child as `python -m bench` does (its environment, the repository root) and return its result."""
    command = [sys.executable, "-m", module, *arguments, "--result", str(out)]
    completed = subprocess.run(
        command, cwd=ROOT, env=common.child_env(), capture_output=True, text=True, timeout=180, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(out.read_text())


def test_statistics():
    assert common.percentile([1, 2, 3, 4, 5], 50) == 3
    assert common.percentile([0, 10], 90) == pytest.approx(9.0)
    stats = common.summary_ms([0.010, 0.020, 0.030], per=2)
    assert stats["median_ms"] == pytest.approx(10.0)
    assert stats["images"] == 6 and stats["samples"] == 3


def test_requirement_closure_of_this_interpreter():
    measured = sizes.measure(["pytest"])
    assert "pytest" in measured["distributions"] and "pluggy" in measured["distributions"]
    assert measured["total_bytes"] > 100_000
    assert sizes.requirement_names(ROOT / "functions" / "classifier" / "requirements.txt")[0] == "onnxruntime"


def _results(handler_ms, bare_ms, keras_ms, cold=(0.4, 12.0)):
    stats = lambda ms: {"median_ms": ms, "p90_ms": ms * 1.1, "mean_ms": ms, "samples": 200, "images": 200}  # noqa: E731
    return {
        "config": {
            "model_dir": "m",
            "keras_model": "k",
            "images": 200,
            "threads": [1],
            "batches": [1],
            "serve_requests": 10,
            "serve_seconds": 5,
        },
        "environment": {"date": "today"},
        "warm": {"1": {"handler": {"1": stats(handler_ms)}, "bare": {"1": stats(bare_ms)}, "peak_rss_mib": 200}},
        "keras": {
            "1": {"predict": {"1": stats(keras_ms)}, "tf_function": {"1": stats(keras_ms / 2)}, "peak_rss_mib": 800}
        },
        "cold": {
            "serving": {"median_s": cold[0], "min_s": cold[0], "max_s": cold[0], "runs": 5, "peak_rss_mib": 150},
            "keras": {"median_s": cold[1], "min_s": cold[1], "max_s": cold[1], "runs": 5, "peak_rss_mib": 600},
        },
    }


def test_report_acceptance():
    passing = report.render(_results(handler_ms=10.0, bare_ms=8.0, keras_ms=300.0))
    assert "| Keras predict | 1 | 1 |" in passing
    # Keras speed-up, cold speed-up, overhead; issue 19: handler <= run + 3 ms, cold <= 0.5 s, peak RSS <= 150 MiB
    assert passing.count("PASS") == 6 and "FAIL" not in passing
    failing = report.render(_results(handler_ms=40.0, bare_ms=8.0, keras_ms=300.0, cold=(2.0, 12.0)))
    assert failing.count("FAIL") == 5 and failing.count("PASS") == 1  # only the peak RSS holds


def test_cold_start_claim_uses_the_built_package_when_measured():
    results = _results(handler_ms=10.0, bare_ms=8.0, keras_ms=300.0, cold=(1.0, 12.0))
    results["cold"]["lambda_package"] = {"median_s": 2.0, "min_s": 2.0, "max_s": 2.0, "runs": 5, "peak_rss_mib": 140}
    claim = [c for c in report.acceptance(results) if c["claim"].startswith("cold start")][0]
    assert claim["ours"] == 2.0 and claim["ok"] is False and "built Lambda package" in claim["claim"]
    assert "the built Lambda package (Python 3.12)" in report.render(results)


class Frame:
    """The two attributes of a pyinstrument frame that the attribution reads, plus its tree links."""

    def __init__(self, file_path: str, time: float = 0.0, children: tuple = ()):
        self.file_path, self.time, self.children, self.parent = file_path, time, list(children), None
        for child in self.children:
            child.parent = self


def test_profile_components_attribution():
    from bench.serving_child import components

    root = Frame(
        "/venv/hematovision/handlers/api.py",
        children=(
            Frame("/venv/onnxruntime/capi/session.py", 0.004),
            Frame(
                "/venv/hematovision/logic/localiser.py", children=(Frame("/venv/numpy/_core/fromnumeric.py", 0.002),)
            ),
            Frame("/venv/hematovision/logic/predict.py", children=(Frame("/venv/numpy/_core/fromnumeric.py", 0.001),)),
            Frame("/venv/PIL/Image.py", 0.003),
            Frame("<built-in>", 0.0005),
        ),
    )
    totals = components(root)
    assert totals == {
        "onnxruntime (inference)": 0.004,
        "Pillow (decode, EXIF, resize)": 0.003,
        "white-cell localisation (localiser, numpy included)": 0.002,
        "numpy": 0.001,
        "hematovision code": 0.0005,  # a leaf without a file of its own goes to its caller's component
    }


def test_serving_child_warm_on_the_test_model(tmp_path):
    model_dir = fakes.build_fake_model(tmp_path / "model")
    fakes.synthetic_image_list(tmp_path, 3)
    out = tmp_path / "warm.json"
    result = run_bench_child(
        "bench.serving_child",
        [
            "warm",
            "--model-dir",
            str(model_dir),
            "--threads",
            "1",
            "--images-file",
            str(tmp_path / "images.txt"),
            "--batches",
            "1,2",
            "--warmup",
            "1",
            "--breakdown",
            "--profile",
            str(tmp_path / "profile.txt"),
        ],
        out,
    )
    assert result["tensorflow_imported"] is False
    assert result["handler"]["1"]["images"] == 3 and result["handler"]["2"]["images"] == 2
    assert result["bare"]["1"]["median_ms"] > 0
    assert "onnxruntime session.run" in result["stages"]
    # a 0.5 ms sampler may never land inside the random model's sub-millisecond run, so only the shares' sum is
    # checked here; test_profile_components_attribution checks which component each frame goes to
    shares = result["profile"]["components_share"]
    assert result["profile"]["sample_count"] > 0 and sum(shares.values()) == pytest.approx(1.0, abs=0.01)
    # the handler's own calls split by stage: every stage ran inside it, and they add up to at most the whole call
    split = result["split"]
    assert split["requests"] == 3
    stages = split["stages"]
    assert all(stages[name]["wall"] > 0 for name in handler_split.STAGES)
    whole = stages[handler_split.WHOLE]["wall"]
    assert sum(stages[name]["wall"] for name in handler_split.STAGES) <= whole
    assert 0 < split["outside_run_ms"]["wall"] < whole  # the call does more than its run, and runs
    rendered = "\n".join(report.split_lines(split))
    assert "| localise |" in rendered and "the acceptance allows 3 ms" in rendered


def test_int8_quantization_of_the_test_model(tmp_path):
    if not (SHARED_DATA / "bccd" / "TRAIN").is_dir() or not (SHARED_DATA / "pbc").is_dir():
        pytest.skip(f"calibration images not found under {SHARED_DATA}")
    from bench.quantize import calibration_samples, quantize
    from hematovision.logic.inference import Model

    samples = calibration_samples(SHARED_DATA, 4)
    assert {split for _, split in samples} == {"bccd_train", "pbc_train"}
    model_dir = fakes.build_fake_model(tmp_path / "fp32")
    recipe = quantize(model_dir, tmp_path / "int8", SHARED_DATA, calibration=4, op_types=("MatMul",))
    assert recipe["calibration"]["images"] == 4
    model = Model(tmp_path / "int8", intra_op_threads=1)  # the card copy carries the int8 file's sha256
    assert model.version.endswith("+int8")
    assert model.predict(fakes_batch()).probabilities.shape == (1, 4)


def fakes_batch():
    from hematovision.logic.preprocessing import preprocess

    return preprocess(fakes.synthetic_cell(seed=5))[None]


def test_model_card_int8_section_only_for_the_measured_model(tmp_path):
    from export.card import int8_section

    report = {
        "date": "today",
        "fp32_sha256": "abc",
        "int8_bytes": 2_700_000,
        "recipe": "QDQ",
        "calibration_images": 200,
        "sets": {
            "bccd_test": {
                "n": 10,
                "fp32_accuracy": 0.9,
                "int8_accuracy": 0.8,
                "fp32_uncertain": 0.1,
                "int8_uncertain": 0.2,
            }
        },
        "handler_speedup": {"1": 0.91},
        "verdict": "Not shipped.",
    }
    path = tmp_path / "int8_report.json"
    assert int8_section({"sha256": "abc"}, path) == []  # no report yet
    path.write_text(json.dumps(report))
    text = "\n".join(int8_section({"sha256": "abc"}, path))
    assert "| bccd_test | 10 | 0.9000 | 0.8000 | 0.100 | 0.200 |" in text and "0.91x" in text and "Not shipped." in text
    assert int8_section({"sha256": "another model"}, path) == []  # a stale report is not shown


def test_fields_child_and_its_section_on_the_test_model(tmp_path):
    """bench.fields_child on the stand-in model: the field and its 12 MP enlargement, the phases and the table."""
    model_dir = fakes.build_fake_model(tmp_path / "model")
    out = tmp_path / "fields.json"
    arguments = ["--model-dir", str(model_dir), "--field", str(ROOT / "events" / "field.jpg"), "--repeats", "2"]
    result = run_bench_child("bench.fields_child", arguments, out)
    assert result["threads"] == 1
    assert result["field"]["size"] == "640x480" and result["twelve_mp"]["size"] == "4000x3000"
    for key in ("field", "twelve_mp"):
        phases = result[key]
        # medians of separate timed runs: no order between them holds on a loaded machine, only that each was timed
        assert phases["locate_ms"] > 0 and phases["handler_ms"] > 0 and phases["decode_ms"] > 0
    section = "\n".join(report.fields_section(result))
    assert "## Whole-field photos" in section and "| 4000x3000 JPEG" in section


def test_handler_split_before_after_a_localiser_revision(tmp_path):
    """bench.handler_split --localiser-reference: the handler with another revision's localiser and with this one's,
    interleaved; both splits are reported (a bccd-like TEST folder of synthetic cells, the random-weights model)."""
    model_dir = fakes.build_fake_model(tmp_path / "model")
    for index, cls in enumerate(common.CLASSES):
        folder = tmp_path / "data" / "bccd" / "TEST" / cls
        folder.mkdir(parents=True)
        (folder / f"cell{index}.jpeg").write_bytes(fakes.synthetic_cell(seed=index))
    out = tmp_path / "split.json"
    command = [
        sys.executable,
        "-m",
        "bench.handler_split",
        "--model-dir",
        str(model_dir),
        "--data",
        str(tmp_path / "data"),
        "--images",
        "4",
        "--warmup",
        "1",
        "--localiser-reference",
        "HEAD",
        "--result",
        str(out),
    ]
    completed = subprocess.run(
        command, cwd=ROOT, env=common.child_env(), capture_output=True, text=True, timeout=180, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    variants = json.loads(out.read_text())["variants"]
    assert list(variants) == ["localiser of HEAD", "localiser now"]
    for split in variants.values():
        assert split["requests"] == 4 and split["stages"]["localise"]["cpu"] > 0
    assert "Outside session.run, CPU ms per request:" in completed.stdout
