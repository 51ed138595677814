"""Shared by the orchestrator and the child processes: paths, statistics, results, a fake Lambda context.

Standard library only (plus numpy where noted): both the serving venv (.venv) and the TensorFlow venv
(.venv-export) import this module.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVING_SRC = ROOT / "functions" / "classifier"
DEFAULT_MODEL_DIR = SERVING_SRC / "model"
DEFAULT_KERAS_MODEL = ROOT / "export" / "artifacts" / "classifier.keras"
DEFAULT_DATA = ROOT.parent / "shared" / "data"
DEFAULT_WORK = ROOT / "build" / "bench"
DEFAULT_OUT = ROOT / "docs" / "benchmarks.md"
# bench's committed outputs; export/card.py reads the int8 report from here for the model card
RESULTS = ROOT / "bench" / "results"
INT8_REPORT = RESULTS / "int8_report.json"
SERVING_PYTHON = ROOT / ".venv" / "bin" / "python"
KERAS_PYTHON = ROOT / ".venv-export" / "bin" / "python"
CLASSES = ("EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def log(message: str) -> None:
    """Progress goes to stderr; stdout is reserved for the table."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a child (both venvs install the project, so hematovision, bench and export import as
    they are): quiet TensorFlow, no uncertainty-threshold override."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("POWERTOOLS_SERVICE_NAME", "hematovision-bench")
    env.pop("HEMATOVISION_UNCERTAINTY_THRESHOLD", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


# ---------------------------------------------------------------- images
def test_images(data_root: Path, count: int) -> list[Path]:
    """`count` bccd TEST JPEGs spread evenly over the sorted list (so every class is represented)."""
    root = Path(data_root) / "bccd" / "TEST"
    files = sorted(p for c in CLASSES for p in (root / c).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images under {root}")
    if count >= len(files):
        return files
    return [files[(i * len(files)) // count] for i in range(count)]


# ---------------------------------------------------------------- statistics
def percentile(values: list[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default), q in [0, 100]."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    position = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary_ms(seconds: list[float], per: int = 1) -> dict:
    """Median / p90 / mean in milliseconds per item of a list of durations (each covering `per` items)."""
    per_item = [s * 1000.0 / per for s in seconds]
    return {
        "median_ms": round(statistics.median(per_item), 3) if per_item else math.nan,
        "p90_ms": round(percentile(per_item, 90), 3),
        "mean_ms": round(statistics.fmean(per_item), 3) if per_item else math.nan,
        "samples": len(per_item),
        "images": len(per_item) * per,
    }


def peak_rss_mib() -> float:
    """Peak resident set size of this process (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


def write_result(path: str | os.PathLike[str] | None, result: dict) -> None:
    text = json.dumps(result, indent=1, default=str)
    if path:
        Path(path).write_text(text, encoding="utf-8")
    else:
        print(text, flush=True)


def run_mode(args, warm, cold) -> int:
    """A child's main: run its warm or cold measurement (args.mode) and write the result where args.result says."""
    write_result(args.result, warm(args) if args.mode == "warm" else cold(args))
    return 0


class LambdaContext:
    """The attributes Powertools reads from a Lambda context object."""

    function_name = "hematovision-bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 1769
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:hematovision-bench"
    aws_request_id = "bench-invocation"
    log_group_name = "/aws/lambda/hematovision-bench"
    log_stream_name = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def child_parser(description: str, model_option: str) -> argparse.ArgumentParser:
    """The options both measuring children take (one runs in .venv, the other in .venv-export)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("mode", choices=["warm", "cold"])
    parser.add_argument(model_option, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--images-file")
    parser.add_argument("--image")
    parser.add_argument("--batches", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8])
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--result")
    return parser
