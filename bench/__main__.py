"""`make bench`: the serverless path against the paper's Keras path, side by side, in one run.

    python -m bench [--model-dir DIR] [--keras-model FILE] [--data DIR] [--quick] [--skip SECTION,...]

Runs every measurement in child processes with the right interpreter (serving: .venv, never importing
TensorFlow; Keras: .venv-export), prints a markdown table to stdout and writes it to docs/benchmarks.md
(a --quick run writes build/bench/quick/benchmarks-quick.md instead). Progress goes to stderr. Raw results:
build/bench/results.json. Sections: warm, keras, cold, size, serve, fields, int8, levers, profile. Lambda power
tuning is its own command (minutes more): `make bench-power` (python -m bench.power).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

from bench.cold_start import COLD_START_RESULT, compile_harness, run_package, summarise
from bench.common import (
    DEFAULT_DATA,
    DEFAULT_KERAS_MODEL,
    DEFAULT_MODEL_DIR,
    DEFAULT_OUT,
    DEFAULT_WORK,
    INT8_REPORT,
    KERAS_PYTHON,
    RESULTS,
    ROOT,
    SERVING_PYTHON,
    child_env,
    log,
    test_images,
)
from bench.report import render

SECTIONS = ("warm", "keras", "cold", "size", "serve", "fields", "int8", "levers", "profile")
TRAINING_PATTERNS = ("python -m export", "export train")


class ChildError(RuntimeError):
    pass


def run_child(
    python: Path,
    module: str,
    args: list[str],
    work: Path,
    name: str,
    env: dict | None = None,
    timeout: float = 600,
    python_flags: list[str] | None = None,
) -> dict:
    """Run `python -m module args --result FILE`; its stdout/stderr go to work/logs/name.log. Returns the result."""
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    result_path = work / "results" / f"{name}.json"
    result_path.parent.mkdir(parents=True, exist_ok=True)
    result_path.unlink(missing_ok=True)
    command = [str(python), *(python_flags or []), "-m", module, *args, "--result", str(result_path)]
    with open(logs / f"{name}.log", "wb") as output:
        completed = subprocess.run(
            command,
            cwd=ROOT,
            env=env or child_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
        )
    if completed.returncode != 0 or not result_path.is_file():
        tail = (logs / f"{name}.log").read_text(errors="replace")[-2500:]
        raise ChildError(f"{name} failed (exit {completed.returncode}):\n{tail}")
    return json.loads(result_path.read_text(encoding="utf-8"))


def contention() -> str | None:
    """Another CPU-heavy process (the model training) running now? Its pids and command, for the warning."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if any(p in command for p in TRAINING_PATTERNS):
            found.append(f"{proc.name}: {command[:80]}")
    return "; ".join(found) or None


def cpu_busy_seconds() -> float:
    """Busy CPU time of the whole machine so far (all cores, /proc/stat), in seconds."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = stat.readline().split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    import resource

    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def environment(model_dir: Path) -> dict:
    card = {}
    with contextlib.suppress(OSError, ValueError):  # no card or a broken one: the table says "?"
        card = json.loads((model_dir / "model_card.json").read_text(encoding="utf-8"))
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):  # not Linux: the platform's name
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = subprocess.run(
        [str(SERVING_PYTHON), "-c", "import onnxruntime, numpy, PIL; print(onnxruntime.__version__)"],
        capture_output=True,
        text=True,
        env=child_env(),
    )
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "onnxruntime": versions.stdout.strip() or "?",
        "model": f"{card.get('name', '?')} {card.get('version', '?')}",
        "model_sha256": card.get("sha256", "?"),
        "contended": contention(),
    }


# ---------------------------------------------------------------- sections
def bench_warm(
    args, images_file: Path, model_dir: Path, label: str, profile: bool, batches: list[int] | None = None
) -> tuple[dict, dict | None]:
    results, profile_result = {}, None
    for threads in args.threads:
        extra = []
        if profile and threads == args.threads[0]:
            extra = ["--breakdown", "--profile", str(args.work / "profile.txt")]
        log(f"warm {label}: {threads} thread(s) ...")
        result = run_child(
            SERVING_PYTHON,
            "bench.serving_child",
            [
                "warm",
                "--model-dir",
                str(model_dir),
                "--threads",
                str(threads),
                "--images-file",
                str(images_file),
                "--batches",
                ",".join(map(str, batches or args.batches)),
                "--warmup",
                str(args.warmup),
                *extra,
            ],
            args.work,
            f"warm-{label}-{threads}t",
        )
        if result.get("tensorflow_imported"):
            raise ChildError("the serving process imported TensorFlow")
        if "stages" in result or "profile" in result:
            profile_result = dict(
                result.pop("profile", {}),
                stages=result.pop("stages", {}),
                large_photo=result.pop("large_photo", None),
                split=result.pop("split", None),
            )
        results[str(threads)] = result
        log(f"  handler b1 {result['handler']['1']['median_ms']} ms, bare b1 {result['bare']['1']['median_ms']} ms")
    return results, profile_result


def bench_keras(args, images_file: Path) -> dict:
    results = {}
    for threads in args.threads:
        log(f"keras: {threads} thread(s) ...")
        results[str(threads)] = run_child(
            KERAS_PYTHON,
            "bench.keras_child",
            [
                "warm",
                "--keras-model",
                str(args.keras_model),
                "--threads",
                str(threads),
                "--images-file",
                str(images_file),
                "--batches",
                ",".join(map(str, args.batches)),
                "--warmup",
                str(args.warmup),
            ],
            args.work,
            f"keras-{threads}t",
        )
        log(
            f"  predict b1 {results[str(threads)]['predict']['1']['median_ms']} ms, "
            f"tf.function b1 {results[str(threads)]['tf_function']['1']['median_ms']} ms"
        )
    return results


def infra_script(script: str, *args: str, ok: tuple[int, ...] = (0,)) -> str | None:
    """stdout of infra/SCRIPT (a standalone standard-library script, as the Makefile runs it), or None when its
    exit status is not in `ok`."""
    completed = subprocess.run(
        [sys.executable, str(ROOT / "infra" / script), *args], capture_output=True, text=True, timeout=300
    )
    return completed.stdout if completed.returncode in ok else None


def built_package_python(package: Path) -> tuple[Path, str] | tuple[None, str]:
    """The built Lambda package (`make build`) and a Python 3.12 to run it, or None and the reason."""
    if not (package / "hematovision" / "handlers" / "api.py").is_file():
        return None, f"no built package at {_rel(package)} (run `make build`)"
    python312 = (infra_script("python312.py") or "").strip() or None
    if python312 is None:
        return None, "no Python 3.12 here (Lambda's runtime version; see infra/python312.py)"
    return package, python312


def import_profile(model_dir: Path) -> dict[str, float]:
    """Milliseconds of import (self time, `python -X importtime`) per top-level package when the handler module
    is imported in a fresh process; `hematovision` includes the model load done at import."""
    import re

    completed = subprocess.run(
        [str(SERVING_PYTHON), "-X", "importtime", "-c", "import hematovision.handlers.api"],
        cwd=ROOT,
        env=child_env(HEMATOVISION_MODEL_DIR=str(model_dir), HEMATOVISION_INTRA_OP_THREADS="1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    totals: dict[str, float] = {}
    for line in completed.stderr.splitlines():
        found = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if found:
            top = found.group(2).split(".")[0]
            totals[top] = totals.get(top, 0.0) + int(found.group(1)) / 1000.0
    return {k: round(v, 1) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


def bench_cold(args, image: Path, with_keras: bool) -> dict:
    """`lambda_package`: the package `make build` produced (trimmed, with the bytecode it ships), run by
    Python 3.12 with no site-packages and no bytecode writing, as on Lambda's read-only /var/task; the
    acceptance row when it is available. `serving`: the same code from the venv (Python of .venv)."""
    runs: dict[str, list[dict]] = {"serving": [], "keras": [], "lambda_package": []}
    package, python312 = built_package_python(args.built_package)
    if package is None:
        log(f"cold start of the built Lambda package skipped: {python312}")
    else:
        from bench.serving_child import raw_event  # the built package has no hematovision.local to build it

        event_file = args.work / "cold-event.json"
        event_file.write_text(json.dumps(raw_event(image.read_bytes(), "bench-cold")), encoding="utf-8")
        compile_harness(python312)
    serving_cold_args = ["cold", "--model-dir", str(args.model_dir), "--threads", "1", "--image", str(image)]
    for index in range(args.cold_runs):
        kinds = ["serving", "keras"] if with_keras else ["serving"]
        kinds = (kinds if index % 2 == 0 else list(reversed(kinds))) + (["lambda_package"] if package else [])
        for kind in kinds:
            spawned = time.time()
            if kind == "serving":
                result = run_child(
                    SERVING_PYTHON, "bench.serving_child", serving_cold_args, args.work, f"cold-{kind}-{index}"
                )
            elif kind == "lambda_package":
                # as Lambda runs it, with the package's own model directory (bench/cold_start.py)
                result = run_package(python312, package, event_file, args.work, f"cold-{kind}-{index}")
            else:
                result = run_child(
                    KERAS_PYTHON,
                    "bench.keras_child",
                    ["cold", "--keras-model", str(args.keras_model), "--threads", "1", "--image", str(image)],
                    args.work,
                    f"cold-keras-{index}",
                )
            if kind != "keras" and result.get("tensorflow_imported"):
                raise ChildError(f"the {kind} process imported TensorFlow")
            if kind != "lambda_package":  # run_package measures its own
                result["wall_s"] = result["answered_at"] - spawned
                result["startup_s"] = result["process_start"] - spawned
            runs[kind].append(result)
            log(f"cold {kind} #{index + 1}: {result['wall_s']:.2f} s, peak RSS {result['peak_rss_mib']} MiB")
    summary = {}
    for kind, items in runs.items():
        if not items:
            continue
        summary[kind] = summarise(items)
    summary["imports_ms"] = import_profile(args.model_dir)
    if COLD_START_RESULT.is_file():  # python -m bench.cold_start's last run, with its own date and load
        summary["comparison"] = json.loads(COLD_START_RESULT.read_text(encoding="utf-8"))
    return summary


def bench_sizes(args) -> dict:
    from bench.sizes import requirement_names

    sizes = {}
    built = Path(args.built_package)
    # infra/package_size.py: the built package's measure, as `make package-size` prints it (exit 1 and 2 are
    # over the budget and over Lambda's limit: measurements still)
    measured = infra_script("package_size.py", str(built), "--json", ok=(0, 1, 2)) if built.is_dir() else None
    if measured:
        report = json.loads(measured)
        built_versions = sorted(
            d.name.removesuffix(".dist-info")
            for d in built.glob("*.dist-info")
            if d.name.lower().startswith(("onnxruntime-", "numpy-", "pillow-"))
        )
        sizes["built"] = {
            "total_bytes": report["total_bytes"],
            "groups": report["groups"],
            "dir": str(built),
            "versions": built_versions,
            "built_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(built.stat().st_mtime)),
        }
        pins = {}
        for line in (ROOT / "functions" / "classifier" / "requirements.txt").read_text(encoding="utf-8").splitlines():
            name, _, version = line.split("#", 1)[0].strip().partition("==")
            if version:
                pins[name.split("[")[0].strip().lower()] = version.strip()
        stale = [
            v for v in built_versions if pins.get(v.split("-")[0].lower(), v.split("-", 1)[1]) != v.split("-", 1)[1]
        ]
        if stale:
            sizes["built"]["stale"] = stale
            log(f"WARNING: the built package is stale ({', '.join(stale)} vs requirements.txt): run `make build`")
    serving_requirements = requirement_names(ROOT / "functions" / "classifier" / "requirements.txt")
    for key, python, requirements in (
        ("serving", SERVING_PYTHON, serving_requirements),
        ("tensorflow", KERAS_PYTHON, ["tensorflow-cpu", "pillow"]),
    ):
        completed = subprocess.run(
            [str(python), "-m", "bench.sizes", *requirements],
            cwd=ROOT,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if completed.returncode == 0:
            sizes[key] = json.loads(completed.stdout)
        else:
            log(f"size of the {key} set failed: {completed.stderr[-500:]}")
    for key, item in sizes.items():
        log(f"size {key}: {item['total_bytes'] / 2**20:.1f} MiB")
    return sizes


def bench_serve(args, images: list[Path]) -> list[dict]:
    from bench.throughput import run

    return [
        run(SERVING_PYTHON, args.model_dir, workers, images, args.work, args.serve_requests, args.serve_seconds)
        for workers in args.serve_workers
    ]


def bench_fields(args) -> dict:
    repeats = 3 if args.quick else 15
    arguments = ["--model-dir", str(args.model_dir), "--field", str(ROOT / "events" / "field.jpg")]
    return run_child(SERVING_PYTHON, "bench.fields_child", [*arguments, "--repeats", str(repeats)], args.work, "fields")


def bench_int8(args, images_file: Path) -> dict:
    out = args.work / "int8"
    log("int8: quantizing ...")
    recipe = run_child(
        SERVING_PYTHON,
        "bench.quantize",
        [
            "--model-dir",
            str(args.model_dir),
            "--out",
            str(out),
            "--data",
            str(args.data),
            "--calibration",
            str(args.calibration),
        ],
        args.work,
        "int8-quantize",
    )
    warm, _ = bench_warm(args, images_file, out, "int8", profile=False, batches=[1])
    log("int8: evaluating on bccd TEST, TEST_SIMPLE, pbc test ...")
    evaluation = run_child(
        SERVING_PYTHON,
        "bench.evaluate_child",
        ["--fp32", str(args.model_dir), "--int8", str(out), "--data", str(args.data), "--limit", str(args.eval_limit)]
        + ([] if args.reevaluate_fp32 else ["--fp32-from-card"]),
        args.work,
        "int8-evaluate",
        timeout=900,
    )
    return {
        "dir": str(out.relative_to(ROOT)) if out.is_relative_to(ROOT) else str(out),
        "recipe": recipe,
        "warm": warm,
        "evaluation": evaluation,
    }


def bench_levers(args, images_file: Path) -> dict:
    """onnxruntime levers, the graph facts, the physical bound and batch throughput (bench/levers.py); the int8 row
    uses the int8 section's model of this run when there is one."""
    int8 = args.work / "int8"
    arguments = [
        "--model-dir",
        str(args.model_dir),
        "--images-file",
        str(images_file),
        "--work",
        str(args.work / "levers"),
    ]
    if (int8 / "hematovision.onnx").is_file() and "int8" not in args.skip:
        arguments += ["--int8-dir", str(int8)]
    if args.quick:
        arguments += ["--batch-repeats", "2", "--create-repeats", "1", "--warmup", "1"]
    result = run_child(SERVING_PYTHON, "bench.levers", arguments, args.work, "levers")
    if result.get("tensorflow_imported"):
        raise ChildError("the serving process imported TensorFlow")
    limit = result["bound"]
    log(f"levers: shipped {limit['shipped_ms']} ms, bound {limit['bound_ms']} ms ({limit['macs'] / 1e6:.0f} M MACs)")
    return result


def record_int8_in_model_card(results: dict, model_dir: Path) -> Path | None:
    """The committed model's card reports its int8 variant: bench/results/int8_report.json (bench's own
    output), then docs/model-card.md re-rendered from the unchanged model_card.json (export/card.py reads the
    report and adds the section, and leaves it out when the report's fp32 sha256 is not the card's)."""
    from bench.report import int8_verdict
    from export import card as model_card

    int8, verdict = results.get("int8") or {}, int8_verdict(results)
    if not int8.get("evaluation") or verdict is None:
        return None
    card = json.loads((model_dir / "model_card.json").read_text(encoding="utf-8"))
    recipe = int8["recipe"]
    report = {
        "date": results["environment"]["date"],
        "command": "make bench",
        "fp32_sha256": recipe["source_sha256"],
        "int8_bytes": recipe["bytes"],
        "recipe": f"{recipe['format']}, {', '.join(recipe['op_types'])}, per-channel {recipe['per_channel']}, "
        f"activations {recipe['activations']}, weights {recipe['weights']}",
        "calibration_images": recipe["calibration"]["images"],
        "sets": {
            name: {
                "n": sets["int8"]["n"],
                "fp32_accuracy": sets["fp32"]["accuracy"],
                "int8_accuracy": sets["int8"]["accuracy"],
                "fp32_uncertain": sets["fp32"]["uncertain_fraction"],
                "int8_uncertain": sets["int8"]["uncertain_fraction"],
            }
            for name, sets in int8["evaluation"].items()
        },
        "handler_speedup": {str(k): v for k, v in verdict["speedup"].items()},
        "verdict": "Shipped as the default."
        if verdict["ship"]
        else "Not shipped: the default stays fp32 (int8 must be faster and within 0.5 point on every set).",
    }
    INT8_REPORT.parent.mkdir(parents=True, exist_ok=True)
    INT8_REPORT.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    (ROOT / "docs" / "model-card.md").write_text(model_card.markdown(card), encoding="utf-8")
    return INT8_REPORT


def profile_findings(profile: dict) -> list[str]:
    """Plain-language reading of the stage table: where the time that is not inference goes."""
    stages = profile.get("stages") or {}

    def median(name):
        return (stages.get(name) or {}).get("median_ms")

    whole, run = median("lambda_handler + JSON encode (whole path)"), median("onnxruntime session.run")
    classify = median("Classifier.classify (decode .. verdict)")
    decode = median("decode_for_model (open, load, EXIF, RGB, checks)")
    resize = next((v["median_ms"] for k, v in stages.items() if k.startswith("resize to ")), None)
    locate = median("white-cell localisation (logic/localiser.locate)")
    if not whole or not run:
        return []
    lines = [
        f"Inference (`session.run`) is {100 * run / whole:.0f}% of the whole path ({run:.2f} of {whole:.2f} ms); "
        f"everything else costs {whole - run:.2f} ms per request."
    ]
    if decode is not None and resize is not None:
        lines.append(
            f"Decode + resize of a 320x240 JPEG: {decode + resize:.2f} ms ({100 * (decode + resize) / whole:.0f}%)."
        )
    if locate is not None:
        lines.append(
            f"White-cell localisation (`logic/localiser.locate`, run on every classify to flag multiple_cells / "
            f"no_cell, and to crop the cell for a cell model): {locate:.2f} ms ({100 * locate / whole:.0f}%)."
        )
    if classify is not None:
        lines.append(
            f"Powertools routing/validation, request parsing, pydantic response models, JSON logging and EMF "
            f"metrics (whole path minus `Classifier.classify`): {whole - classify:.2f} ms "
            f"({100 * (whole - classify) / whole:.0f}%)."
        )
    large = profile.get("large_photo")
    if large:
        served, full = large["served"]["median_ms"], large["full_decode"]["median_ms"]
        lines.append(
            f"A phone-size photo (4032x3024 JPEG, {large['bytes'] / 1e6:.1f} MB) costs {served:.0f} ms to decode and "
            f"resize as served, where libjpeg downscales while decoding (`Image.draft` to >= 448 px, then the "
            f"bilinear resize), against {full:.0f} ms with a full decode; the model input differs by "
            f"{large['mean_abs_diff']:.2f} grey levels on average. Images under 896 px (all training and test "
            "data) are decoded in full."
        )
    return lines


# ---------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path(env("BENCH_MODEL_DIR") or DEFAULT_MODEL_DIR))
    parser.add_argument("--keras-model", type=Path, default=Path(env("BENCH_KERAS_MODEL") or DEFAULT_KERAS_MODEL))
    parser.add_argument("--data", type=Path, default=Path(env("BENCH_DATA") or DEFAULT_DATA))
    parser.add_argument(
        "--work", type=Path, default=DEFAULT_WORK, help="scratch and results (--quick: build/bench/quick)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(env("BENCH_OUT")) if env("BENCH_OUT") else None,
        help=f"markdown file (default {DEFAULT_OUT.relative_to(ROOT)}; "
        "with --quick build/bench/quick/benchmarks-quick.md)",
    )
    parser.add_argument("--built-package", type=Path, default=ROOT / ".aws-sam" / "build" / "ClassifierFunction")
    parser.add_argument(
        "--images", type=int, default=200, help="bccd TEST images per warm measurement (>= 200 for the claim)"
    )
    parser.add_argument("--threads", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    parser.add_argument("--batches", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8])
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--serve-workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    parser.add_argument("--serve-requests", type=int, default=300)
    parser.add_argument("--serve-seconds", type=float, default=20.0)
    parser.add_argument("--calibration", type=int, default=200, help="training images for the int8 calibration")
    parser.add_argument(
        "--eval-limit", type=int, default=0, help="at most this many images per evaluation set (0: all)"
    )
    parser.add_argument(
        "--reevaluate-fp32",
        action="store_true",
        help="re-measure the fp32 accuracy too (default: the model card's, same code and files)",
    )
    parser.add_argument("--skip", default="", help=f"comma-separated sections to skip: {', '.join(SECTIONS)}")
    parser.add_argument("--label", default=env("BENCH_LABEL", ""), help="a line printed at the top of the report")
    parser.add_argument("--quick", action="store_true", help="tiny iteration counts: checks the code, measures nothing")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.cold_runs, args.warmup = min(args.images, 16), min(args.cold_runs, 1), 2
        args.serve_requests, args.serve_seconds = min(args.serve_requests, 12), min(args.serve_seconds, 5.0)
        args.calibration, args.eval_limit = min(args.calibration, 8), args.eval_limit or 16
        if args.work == DEFAULT_WORK:
            args.work = DEFAULT_WORK / "quick"  # never overwrite a real run's int8 model or results
    if args.out is None:
        args.out = args.work / "benchmarks-quick.md" if args.quick else DEFAULT_OUT
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = args.skip - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    for name in ("model_dir", "keras_model", "data", "work", "out", "built_package"):
        setattr(args, name, getattr(args, name).resolve())
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    busy_at_start, own_at_start = cpu_busy_seconds(), own_cpu_seconds()
    if not (args.model_dir / "hematovision.onnx").is_file():
        print(
            f"bench: no model at {args.model_dir} (the trained model lands in functions/classifier/model; "
            f"for the smoke model: --model-dir build/smoke/model --keras-model build/smoke/classifier.keras)",
            file=sys.stderr,
        )
        return 2
    if not (args.data / "bccd" / "TEST").is_dir():
        print(f"bench: no bccd TEST images under {args.data}", file=sys.stderr)
        return 2
    for python in (SERVING_PYTHON,):
        if not python.exists():
            print(f"bench: {python} missing - run `make venv`", file=sys.stderr)
            return 2
    with_keras = args.keras_model.is_file() and KERAS_PYTHON.exists()
    notes: list[str] = []
    if not with_keras:
        notes.append(
            f"Keras side skipped: {args.keras_model if not args.keras_model.is_file() else KERAS_PYTHON} not found."
        )
        args.skip |= {"keras"}
    args.work.mkdir(parents=True, exist_ok=True)
    env = environment(args.model_dir)
    if env["contended"]:
        log(f"WARNING: CPU-heavy process running ({env['contended']}): figures will be unreliable")

    images = test_images(args.data, args.images)
    images_file = args.work / "images.txt"
    images_file.write_text("\n".join(str(p) for p in images) + "\n", encoding="utf-8")
    results: dict = {
        "config": {
            "model_dir": _rel(args.model_dir),
            "keras_model": _rel(args.keras_model),
            "images": len(images),
            "threads": args.threads,
            "batches": args.batches,
            "cold_runs": args.cold_runs,
            "serve_requests": args.serve_requests,
            "serve_seconds": args.serve_seconds,
            "label": args.label,
        },
        "environment": env,
        "quick": args.quick,
        "notes": notes,
        "command": "python -m bench " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
    }
    failures = []

    def section(name: str, function, *a):
        if name in args.skip:
            return None
        section_started = time.perf_counter()
        try:
            return function(*a)
        except (ChildError, subprocess.TimeoutExpired, OSError, RuntimeError) as error:
            failures.append(name)
            notes.append(f"Section `{name}` failed: {str(error).splitlines()[0]}")
            log(f"section {name} FAILED: {error}")
            return None
        finally:
            now = time.perf_counter()
            log(f"section {name}: {now - section_started:.0f} s (total {now - started:.0f} s)")

    warm = section("warm", bench_warm, args, images_file, args.model_dir, "fp32", "profile" not in args.skip)
    if warm:
        results["warm"], profile = warm
        if profile:
            profile["findings"] = profile_findings(profile)
            results["profile"] = profile
    results["keras"] = section("keras", bench_keras, args, images_file) or {}
    results["cold"] = section("cold", bench_cold, args, images[0], with_keras) or {}
    results["sizes"] = section("size", bench_sizes, args) or {}
    results["serve"] = section("serve", bench_serve, args, images) or []
    results["fields"] = section("fields", bench_fields, args) or {}
    results["int8"] = section("int8", bench_int8, args, images_file) or {}
    results["levers"] = section("levers", bench_levers, args, images_file) or {}
    power = RESULTS / "power.json"  # make bench-power's last run on the shipped model (its own date in the section)
    if power.is_file() and args.model_dir.resolve() == DEFAULT_MODEL_DIR.resolve():
        results["power"] = json.loads(power.read_text(encoding="utf-8"))
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    # CPU used by other processes during the run (the machine's busy time minus this run's own processes;
    # the throughput section's server is a child too). Worth a warning above a tenth of a core on average.
    others = (cpu_busy_seconds() - busy_at_start) - (own_cpu_seconds() - own_at_start)
    env["background_cores"] = round(max(0.0, others) / max(1e-9, results["elapsed_s"]), 2)
    if env["background_cores"] > 0.1:
        log(f"WARNING: other processes used {env['background_cores']:.2f} cores on average during the run")
    late = contention()
    if late and not env["contended"]:
        env["contended"] = late
    (args.work / "results.json").write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    text = render(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    if not args.quick and args.model_dir.resolve() == DEFAULT_MODEL_DIR.resolve():
        recorded = record_int8_in_model_card(results, args.model_dir)
        if recorded:
            log(f"wrote {_rel(recorded)} and the int8 section of docs/model-card.md")
    log(
        f"wrote {args.out} in {results['elapsed_s']:.0f} s"
        + (f"; failed sections: {', '.join(failures)}" if failures else "")
    )
    return 1 if failures else 0


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


if __name__ == "__main__":
    sys.exit(main())
