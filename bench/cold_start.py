"""Cold start of the built Lambda package, phase by phase, side by side with another revision's package.

    python -m bench.cold_start [--reference REV] [--candidate REV] [--package DIR] [--candidate-env NAME=VALUE]
                               [--runs N] [--no-docs]

Each package runs as Lambda runs it (`run_package`): Python 3.12, no site-packages (-S), no bytecode writing, the
package the only code on the path and its own model directory; one fresh process per run, which imports the
handler and answers one raw-JPEG POST /v1/classify (bench/serving_child.py `cold`: each library's import, the
handler module, the model load, the first answer). The candidate is the package `make build` produced (--package,
default .aws-sam/build/ClassifierFunction) or, with --candidate REV, that revision's. The reference runs beside it:
--reference REV builds another revision's package; --candidate-env NAME=VALUE without --reference runs the same
package without the variable (a template.yaml setting to try). The two kinds alternate (A B, B A, ...), so background
load weighs on both alike, and the claim is their ratio in this run. A revision is built from a git worktree
(build/bench/worktrees/SHA, removed afterwards) by its own functions/classifier/Makefile into
build/bench/packages/SHA, reused by later runs.

Prints a markdown section with the machine's load average before and after; writes build/bench/cold_start.json,
and, unless --no-docs, bench/results/cold_start.json and the section of docs/benchmarks.md it renders
(`make bench` renders it again from that file).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import DEFAULT_DATA, DEFAULT_OUT, DEFAULT_WORK, RESULTS, ROOT, log, test_images

DEFAULT_PACKAGE = ROOT / ".aws-sam" / "build" / "ClassifierFunction"
COLD_START_RESULT = RESULTS / "cold_start.json"
SHIPPED_MODULES = ("numpy", "onnxruntime", "aws_lambda_powertools", "hematovision")


def python312() -> str | None:
    """A Python 3.12 (Lambda's runtime version), found as infra/python312.py finds it."""
    completed = subprocess.run(
        [sys.executable, str(ROOT / "infra" / "python312.py")], capture_output=True, text=True, timeout=60
    )
    return completed.stdout.strip() or None if completed.returncode == 0 else None


def package_env(package: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        # Lambda's /var/task: the built package is the only code on the path (-S: no site-packages);
        # bench.serving_child itself comes from the working directory (-m, cwd ROOT)
        "PYTHONPATH": str(package),
        "LAMBDA_TASK_ROOT": str(package),
        "AWS_DEFAULT_REGION": "eu-west-1",
        "POWERTOOLS_SERVICE_NAME": "hematovision-bench",
    }


def compile_harness(python: str) -> None:
    """Bytecode of the measuring child for `python`: the child runs without writing bytecode, and compiling
    bench/serving_child.py and bench/common.py from source (~20 ms) is the harness's cost, not the function's."""
    files = [str(ROOT / "bench" / name) for name in ("__init__.py", "common.py", "serving_child.py")]
    subprocess.run([python, "-m", "py_compile", *files], check=True, timeout=120)


def run_package(
    python: str, package: Path, event_file: Path, work: Path, name: str, env: dict[str, str] | None = None
) -> dict:
    """One cold start of `package` in a fresh process (`env`: variables added to Lambda's): the child's result, with
    wall_s (spawn -> answer) and startup_s (spawn -> the child's first line)."""
    logs, results = work / "logs", work / "results"
    logs.mkdir(parents=True, exist_ok=True)
    results.mkdir(parents=True, exist_ok=True)
    result_path = results / f"{name}.json"
    result_path.unlink(missing_ok=True)
    command = [python, "-S", "-m", "bench.serving_child", "cold", "--model-dir", str(package / "model")]
    command += ["--threads", "1", "--event", str(event_file), "--result", str(result_path)]
    spawned = time.time()
    with open(logs / f"{name}.log", "wb") as output:
        completed = subprocess.run(
            command,
            cwd=ROOT,
            env={**package_env(package), **(env or {})},
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=300,
        )
    if completed.returncode != 0 or not result_path.is_file():
        tail = (logs / f"{name}.log").read_text(errors="replace")[-2500:]
        raise RuntimeError(f"cold start {name} failed (exit {completed.returncode}):\n{tail}")
    result = json.loads(result_path.read_text(encoding="utf-8"))
    if not all(path.startswith(str(package)) for path in result["module_paths"].values()):
        raise RuntimeError(f"the package run imported code from elsewhere: {result['module_paths']}")
    if result.get("tensorflow_imported"):
        raise RuntimeError("the package run imported TensorFlow")
    result["wall_s"] = result["answered_at"] - spawned
    result["startup_s"] = result["process_start"] - spawned
    return result


def summarise(items: list[dict]) -> dict:
    """Medians of a kind's runs; phases by name (a revision's child may lack some: median over those that have it)."""
    names: list[str] = ["interpreter start"]
    for item in items:
        names += [name for name in item["phases"] if name not in names]
    phases = {"interpreter start": [r["startup_s"] for r in items]}
    for name in names[1:]:
        phases[name] = [r["phases"][name] for r in items if name in r["phases"]]
    walls = [r["wall_s"] for r in items]
    return {
        "median_s": statistics.median(walls),
        "min_s": min(walls),
        "max_s": max(walls),
        "runs": len(items),
        "walls_s": [round(w, 3) for w in walls],
        "phases_median_s": {name: statistics.median(values) for name, values in phases.items()},
        # CPU seconds to the answer, less sensitive than wall time to load (the Keras child does not report it)
        "cpu_median_s": statistics.median(r["cpu_s"] for r in items) if all("cpu_s" in r for r in items) else None,
        "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in items),
        "second_answer_median_s": statistics.median(r["second_answer_s"] for r in items)
        if all("second_answer_s" in r for r in items)
        else None,
    }


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def build_revision(rev: str, work: Path) -> tuple[Path, str]:
    """The Lambda package of git revision `rev` (built once, then reused) and its full sha."""
    sha = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    package, done = work / "packages" / sha, work / "packages" / f"{sha}.built"
    if done.is_file() and package.is_dir():
        return package, sha
    shutil.rmtree(package, ignore_errors=True)
    tree = work / "worktrees" / sha
    if tree.exists():
        git("worktree", "remove", "--force", str(tree))
    tree.parent.mkdir(parents=True, exist_ok=True)
    git("worktree", "add", "--detach", str(tree), sha)
    try:
        log(f"building the package of {rev} ({sha[:10]}) ...")
        completed = subprocess.run(
            ["make", "-C", str(tree / "functions" / "classifier"), "build-ClassifierFunction"],
            env={**os.environ, "ARTIFACTS_DIR": str(package)},
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"building {rev} failed:\n{(completed.stdout + completed.stderr)[-2500:]}")
    finally:
        git("worktree", "remove", "--force", str(tree))
    done.write_text(sha + "\n", encoding="utf-8")
    return package, sha


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "?"


def measure(args) -> dict:
    python = python312()
    if python is None:
        raise SystemExit("no Python 3.12 here (Lambda's runtime version; see infra/python312.py)")
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    kinds: dict[str, dict] = {}
    if args.candidate:
        package, sha = build_revision(args.candidate, work)
        kinds["candidate"] = {"package": package, "label": f"{args.candidate} ({sha[:10]})"}
    else:
        if not (args.package / "hematovision" / "handlers" / "api.py").is_file():
            raise SystemExit(f"no built package at {args.package} (run `make build`, or pass --candidate REV)")
        kinds["candidate"] = {"package": args.package, "label": f"package {_rel(args.package)}"}
    if args.candidate_env:
        kinds["candidate"]["label"] += " with " + " ".join(args.candidate_env)
    if args.reference:
        package, sha = build_revision(args.reference, work)
        kinds["reference"] = {"package": package, "label": f"{args.reference} ({sha[:10]})"}
    elif args.candidate_env:
        label = kinds["candidate"]["label"].split(" with ")[0]
        kinds["reference"] = {"package": kinds["candidate"]["package"], "label": f"{label}, as built"}
    from bench.serving_child import raw_event

    image = test_images(args.data, 1)[0]
    event_file = work / "cold-event.json"
    event_file.write_text(json.dumps(raw_event(image.read_bytes(), "bench-cold")), encoding="utf-8")
    compile_harness(python)
    load_before, started = load_average(), time.perf_counter()
    runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
    order = list(kinds)
    for index in range(args.runs):
        for kind in order if index % 2 == 0 else order[::-1]:
            env = dict(item.split("=", 1) for item in args.candidate_env) if kind == "candidate" else None
            result = run_package(python, kinds[kind]["package"], event_file, work, f"cold-{kind}-{index}", env)
            runs[kind].append(result)
            log(f"cold {kind} #{index + 1}: {result['wall_s']:.2f} s, CPU {result['cpu_s']:.2f} s")
    out = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "python": subprocess.run(
            [python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True
        ).stdout.strip(),
        "image": image.relative_to(args.data).as_posix(),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "elapsed_s": round(time.perf_counter() - started, 1),
        "command": "python -m bench.cold_start " + " ".join(args.argv),
        "kinds": {kind: {"label": kinds[kind]["label"], **summarise(runs[kind])} for kind in kinds},
    }
    if "reference" in runs:
        pairs = list(zip(runs["candidate"], runs["reference"], strict=True))
        out["ratio"] = {
            "wall_median_of_pairs": statistics.median(c["wall_s"] / r["wall_s"] for c, r in pairs),
            "cpu_median_of_pairs": statistics.median(c["cpu_s"] / r["cpu_s"] for c, r in pairs),
        }
    return out


def _rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cold_start", description=__doc__.splitlines()[0])
    parser.add_argument("--package", type=Path, default=DEFAULT_PACKAGE, help="the candidate package (make build)")
    parser.add_argument("--candidate", help="build this git revision's package instead of using --package")
    parser.add_argument("--reference", help="git revision whose package runs beside the candidate")
    parser.add_argument(
        "--candidate-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for the candidate's runs only (a template.yaml setting to try); repeatable",
    )
    parser.add_argument("--runs", type=int, default=15, help="cold starts of each package")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--no-docs", action="store_true", help="leave bench/results and docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    args.argv = argv if argv is not None else sys.argv[1:]
    args.package, args.work, args.data = args.package.resolve(), args.work.resolve(), args.data.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    from bench.report import cold_start_section, replace_cold_start_section

    args = parse_args(argv)
    result = measure(args)
    (args.work / "cold_start.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    text = "\n".join(cold_start_section(result))
    print(text)
    if not args.no_docs:
        RESULTS.mkdir(parents=True, exist_ok=True)
        COLD_START_RESULT.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        if DEFAULT_OUT.is_file():
            document = DEFAULT_OUT.read_text(encoding="utf-8")
            DEFAULT_OUT.write_text(replace_cold_start_section(document, text), encoding="utf-8")
        log(f"wrote {_rel(COLD_START_RESULT)} and its section of {_rel(DEFAULT_OUT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
