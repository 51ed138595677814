"""Lambda power tuning, simulated here: the handler under the CPU share and memory limit of each Lambda size.

    python -m bench.power [--model-dir DIR] [--sizes 512,1024,...] [--quick]      # `make bench-power`

Lambda gives a function CPU in proportion to its memory: 1,769 MB is one vCPU-second per second (AWS Lambda
Developer Guide, "Configure Lambda function memory"), and below 3,009 MB the function sees 2 vCPUs whatever its
share. So each size runs in a cgroup of its own with a CFS quota of MB/1769 of one CPU per period (at most 2 CPUs),
and a memory limit of MB MiB: warm POST /v1/classify requests back to back on bccd TEST images (as a busy function
sees them), then fresh processes for the cold start (spawn -> first answer, init under the same quota). The price
of 1,000 classifications comes from each request's duration rounded up to 1 ms, as Lambda bills it, at the public
x86 price, plus the Lambda request charge and API Gateway's REST API request charge. The anchor is the AWS Lambda
Power Tuning tool (Step Functions running the deployed function at each size): the same idea, offline.

The groups: cgroup v1 (/sys/fs/cgroup/{cpu,memory}/) where the machine has it, else cgroup v2 (cpu.max, memory.max),
each nested inside the cgroup this process already belongs to (so a limit set on the session's own group still
applies), named hv-bench-<MB>, and removed afterwards. Needs root (or a delegated cgroup).

Results: build/bench/power/results.json; for the shipped model at every default size (not --quick) also
bench/results/power.json, which
`make bench` renders into docs/benchmarks.md, and the section is replaced in docs/benchmarks.md right away.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import (
    DEFAULT_DATA,
    DEFAULT_MODEL_DIR,
    DEFAULT_OUT,
    DEFAULT_WORK,
    RESULTS,
    ROOT,
    SERVING_PYTHON,
    child_env,
    log,
    summary_ms,
    test_images,
)

# ---------------------------------------------------------------- prices (USD)
# AWS public prices, x86, first tier, the same in us-east-1 and eu-west-1 (the stack's region in samconfig.toml).
# Sources: https://aws.amazon.com/lambda/pricing/ (duration per GB-second, first 6 billion GB-s a month; requests)
# and https://aws.amazon.com/api-gateway/pricing/ (REST APIs, first 333 million requests a month); as published
# on 2026-12-01. Free tiers are left out: the table compares sizes, not a monthly bill.
PRICES_AS_OF = "2026-12-01"
LAMBDA_X86_PER_GB_SECOND = 0.0000166667
LAMBDA_PER_REQUEST = 0.20 / 1_000_000
API_GATEWAY_REST_PER_REQUEST = 3.50 / 1_000_000

# ---------------------------------------------------------------- Lambda's CPU model
MB_PER_VCPU = 1769  # one vCPU-second per second at 1,769 MB (AWS Lambda Developer Guide)
MAX_VISIBLE_CPUS = 2  # a function up to 3,008 MB sees 2 vCPUs
DEFAULT_SIZES = (512, 1024, 1536, 1769, 2048, 3008)
DEFAULT_PERIOD_US = 100_000  # Linux's default CFS period; Lambda does not document its own
GROUP_PREFIX = "hv-bench-"


def cpu_share(memory_mb: int) -> float:
    """CPUs' worth of time per second a function of `memory_mb` gets (at most the 2 it sees)."""
    return min(memory_mb / MB_PER_VCPU, float(MAX_VISIBLE_CPUS))


def cfs_quota_us(memory_mb: int, period_us: int = DEFAULT_PERIOD_US) -> int:
    """The CFS quota (microseconds of CPU per period, over all CPUs) of that share."""
    return max(1000, round(period_us * cpu_share(memory_mb)))


def billed_ms(duration_ms: float) -> int:
    """Lambda rounds each invocation's duration up to the next millisecond."""
    return max(1, math.ceil(duration_ms - 1e-9))


def gb_seconds(duration_ms: float, memory_mb: int) -> float:
    """GB-seconds of one invocation: billed seconds x memory in GB (Lambda's GB is 1,024 MB)."""
    return billed_ms(duration_ms) / 1000.0 * memory_mb / 1024.0


def cost_per_1000(durations_ms: list[float], memory_mb: int) -> dict:
    """USD for 1,000 classifications at these per-request durations: Lambda compute, Lambda requests, API Gateway."""
    if not durations_ms:
        raise ValueError("no durations")
    mean_gbs = statistics.fmean(gb_seconds(d, memory_mb) for d in durations_ms)
    compute = 1000 * mean_gbs * LAMBDA_X86_PER_GB_SECOND
    requests = 1000 * LAMBDA_PER_REQUEST
    gateway = 1000 * API_GATEWAY_REST_PER_REQUEST
    return {
        "gb_seconds_per_request": mean_gbs,
        "lambda_compute": compute,
        "lambda_requests": requests,
        "api_gateway": gateway,
        "total": compute + requests + gateway,
    }


# ---------------------------------------------------------------- cgroups
def own_cgroups(text: str) -> dict[str, str]:
    """/proc/self/cgroup's text -> {controller: path}; cgroup v2's unified line is under ""."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(","):
            paths[controller] = parts[2]
    return paths


class Cgroup:
    """A CPU-quota + memory-limit group: v1 (separate cpu and memory hierarchies) or v2 (one unified hierarchy).

    `root` is the cgroup file system's mount (/sys/fs/cgroup); `parents` the group this process is in, per
    controller (from /proc/self/cgroup), under which the new group is created. Pure file writes, so a test can
    point `root` at a temporary directory."""

    def __init__(self, name: str, root: Path = Path("/sys/fs/cgroup"), version: int | None = None, parents=None):
        self.name, self.root = name, Path(root)
        self.version = version or (1 if (self.root / "cpu" / "cpu.cfs_quota_us").exists() else 2)
        parents = parents if parents is not None else self._own_parents()
        if self.version == 1:
            self.dirs = {
                "cpu": self.root / "cpu" / parents.get("cpu", "/").lstrip("/") / name,
                "memory": self.root / "memory" / parents.get("memory", "/").lstrip("/") / name,
            }
        else:
            self.dirs = {"unified": self.root / parents.get("", "/").lstrip("/") / name}

    @staticmethod
    def _own_parents() -> dict[str, str]:
        try:
            text = Path("/proc/self/cgroup").read_text(encoding="ascii")
        except OSError:
            return {}
        found = own_cgroups(text)
        # v1 lists "cpu,cpuacct" as one hierarchy: own_cgroups splits it, so "cpu" is there either way
        return found

    def create(self, memory_mb: int, period_us: int = DEFAULT_PERIOD_US) -> None:
        quota = cfs_quota_us(memory_mb, period_us)
        limit = memory_mb * 2**20
        for directory in self.dirs.values():
            directory.mkdir(exist_ok=True)
        if self.version == 1:
            _write(self.dirs["cpu"] / "cpu.cfs_period_us", period_us)
            _write(self.dirs["cpu"] / "cpu.cfs_quota_us", quota)
            _write(self.dirs["memory"] / "memory.limit_in_bytes", limit)
        else:
            _write(self.dirs["unified"] / "cpu.max", f"{quota} {period_us}")
            _write(self.dirs["unified"] / "memory.max", limit)
            with contextlib.suppress(OSError):  # no swap in the simulation (Lambda has none)
                _write(self.dirs["unified"] / "memory.swap.max", 0)

    def attach(self, pid: int) -> None:
        for directory in self.dirs.values():
            _write(directory / "cgroup.procs", pid)

    def settings(self) -> dict[str, str]:
        """What the files say now (for the report and the tests)."""
        names = (
            ("cpu", "cpu.cfs_period_us"),
            ("cpu", "cpu.cfs_quota_us"),
            ("memory", "memory.limit_in_bytes"),
            ("unified", "cpu.max"),
            ("unified", "memory.max"),
        )
        found = {}
        for key, name in names:
            if key in self.dirs and (self.dirs[key] / name).is_file():
                found[name] = (self.dirs[key] / name).read_text(encoding="ascii").strip()
        return found

    def oom_kills(self) -> int | None:
        """OOM kills inside the group (v1: memory.oom_control's oom_kill; v2: memory.events' oom_kill)."""
        path = (
            self.dirs["memory"] / "memory.oom_control" if self.version == 1 else self.dirs["unified"] / "memory.events"
        )
        with contextlib.suppress(OSError, ValueError):
            for line in path.read_text(encoding="ascii").splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        return None

    def remove(self) -> None:
        """rmdir each group (the kernel refuses while a process is still in it; retried briefly)."""
        for directory in self.dirs.values():
            for _ in range(50):
                try:
                    self._rmdir(directory)
                    break
                except FileNotFoundError:
                    break
                except OSError as error:
                    if error.errno != errno.EBUSY:
                        raise
                    time.sleep(0.1)

    _rmdir = staticmethod(os.rmdir)


def _write(path: Path, value) -> None:
    with open(path, "w", encoding="ascii") as handle:
        handle.write(f"{value}\n")


# ---------------------------------------------------------------- runs
def run_in_group(group: Cgroup, command: list[str], log_path: Path, env: dict, timeout: float) -> tuple[int, float]:
    """Run `command` with the child placed in `group` before it executes anything; (exit status, spawn time)."""
    spawned = time.time()
    with open(log_path, "wb") as output:
        completed = subprocess.run(
            command,
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            preexec_fn=lambda: group.attach(os.getpid()),  # the parent runs no threads: safe
        )
    return completed.returncode, spawned


def measure_size(args, memory_mb: int, threads: int, spinning: str | None, images_file: Path, image: Path) -> dict:
    name = (
        f"{GROUP_PREFIX}{memory_mb}" + (f"-t{threads}" if threads != 1 else "") + (f"-s{spinning}" if spinning else "")
    )
    group = Cgroup(name)
    logs = args.work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    group.create(memory_mb, args.period_us)
    env = child_env()
    try:
        out = args.work / f"{name}-warm.json"
        out.unlink(missing_ok=True)
        command = [str(SERVING_PYTHON), "-m", "bench.serving_child", "warm", "--model-dir", str(args.model_dir)]
        command += ["--threads", str(threads), "--images-file", str(images_file), "--batches", "1"]
        command += ["--warmup", str(args.warmup), "--handler-only", "--durations", "--result", str(out)]
        command += ["--spinning", spinning] if spinning else []
        status, _ = run_in_group(group, command, logs / f"{name}-warm.log", env, timeout=1800)
        if status != 0 or not out.is_file():
            tail = (logs / f"{name}-warm.log").read_text(errors="replace")[-1500:]
            raise RuntimeError(f"{name}: the warm run failed (exit {status}, OOM kills {group.oom_kills()}):\n{tail}")
        warm = json.loads(out.read_text(encoding="utf-8"))
        durations = warm["durations_ms"]["1"]
        colds = []
        for index in range(args.cold_runs if not spinning else 0):
            out = args.work / f"{name}-cold-{index}.json"
            out.unlink(missing_ok=True)
            command = [str(SERVING_PYTHON), "-m", "bench.serving_child", "cold", "--model-dir", str(args.model_dir)]
            command += ["--threads", str(threads), "--image", str(image), "--result", str(out)]
            status, spawned = run_in_group(group, command, logs / f"{name}-cold-{index}.log", env, timeout=300)
            if status != 0 or not out.is_file():
                raise RuntimeError(f"{name}: cold run {index} failed (exit {status}, OOM kills {group.oom_kills()})")
            cold = json.loads(out.read_text(encoding="utf-8"))
            phases = cold["phases"]
            colds.append(
                {
                    "spawn_to_answer_s": cold["answered_at"] - spawned,
                    "init_s": phases["imports"] + phases["handler module init (model load)"],
                    "first_answer_s": phases["first answer"],
                    "peak_rss_mib": cold["peak_rss_mib"],
                }
            )
        settings, oom = group.settings(), group.oom_kills()
    finally:
        group.remove()
    row = {
        "memory_mb": memory_mb,
        "threads": threads,
        "spinning": spinning,
        "cpu_share": round(cpu_share(memory_mb), 3),
        "cgroup": {"version": group.version, **settings},
        "oom_kills": oom,
        "warm": summary_ms([d / 1000.0 for d in durations]),
        "billed_ms_mean": round(statistics.fmean(billed_ms(d) for d in durations), 2),
        "cost_per_1000": cost_per_1000(durations, memory_mb),
        "warm_peak_rss_mib": warm.get("peak_rss_mib"),
    }
    if colds:
        init = statistics.median(c["init_s"] for c in colds)
        row["cold"] = {
            "runs": len(colds),
            "spawn_to_answer_s": round(statistics.median(c["spawn_to_answer_s"] for c in colds), 3),
            "init_s": round(init, 3),
            "first_answer_s": round(statistics.median(c["first_answer_s"] for c in colds), 3),
            "peak_rss_mib": max(c["peak_rss_mib"] for c in colds),
            # billed since 2025-08-01 for ZIP functions on managed runtimes, like the invocation
            "init_cost_usd": init * memory_mb / 1024.0 * LAMBDA_X86_PER_GB_SECOND,
        }
    log(
        f"{memory_mb} MB, {threads} thread(s){', spinning ' + spinning if spinning else ''}: warm mean "
        f"{row['warm']['mean_ms']:.1f} ms, median {row['warm']['median_ms']:.1f} ms, "
        f"${row['cost_per_1000']['total']:.5f} per 1,000"
        + (f"; cold {row['cold']['spawn_to_answer_s']:.2f} s" if colds else "")
    )
    return row


def choose(rows: list[dict]) -> dict | None:
    """FunctionMemorySize and IntraOpThreads, on the Lambda compute cost (the request charges are the same at every
    size): the cheapest row the shipped session options can run (spinning off, logic/inference.py); a faster one
    only when its compute costs at most 10% more and its mean warm duration is at least 25% shorter."""
    shippable = [r for r in rows if r.get("spinning") in (None, "0")]
    if not shippable:
        return None

    def compute(row):
        return row["cost_per_1000"]["lambda_compute"]

    cheapest = min(shippable, key=compute)
    best = cheapest
    for row in shippable:
        dearer = compute(row) / compute(cheapest)
        faster = row["warm"]["mean_ms"] / cheapest["warm"]["mean_ms"]
        if dearer <= 1.10 and faster <= 0.75 and row["warm"]["mean_ms"] < best["warm"]["mean_ms"]:
            best = row
    return {
        "memory_mb": best["memory_mb"],
        "threads": best["threads"],
        "cheapest_mb": cheapest["memory_mb"],
        "cheapest_threads": cheapest["threads"],
        "rule": "the cheapest Lambda compute per 1,000; a faster size or thread count only if its compute costs at "
        "most 10% more and its mean warm duration is at least 25% shorter",
    }


def environment() -> dict:
    from bench.__main__ import contention
    from bench.hardware import cpu_features

    features = cpu_features(Path("/proc/cpuinfo").read_text(encoding="utf-8"))
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": features["model"],
        "mhz": features["mhz"],
        "cores": os.cpu_count(),
        "contended": contention(),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.power", description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path(os.environ.get("BENCH_MODEL_DIR") or DEFAULT_MODEL_DIR))
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("BENCH_DATA") or DEFAULT_DATA))
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK / "power")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=list(DEFAULT_SIZES))
    parser.add_argument("--images", type=int, default=100, help="bccd TEST images per size (warm requests)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--period-us", type=int, default=DEFAULT_PERIOD_US)
    parser.add_argument("--no-threads-row", action="store_true", help="skip the 2-thread rows at the largest size")
    parser.add_argument("--quick", action="store_true", help="two sizes, a few requests: checks the code")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.images, args.warmup, args.cold_runs = args.sizes[:1] + args.sizes[-1:], 6, 2, 1
        args.work = args.work / "quick"
    args.model_dir, args.work = args.model_dir.resolve(), args.work.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    from bench.report import power_section, replace_power_section

    args = parse_args(argv)
    if not (args.model_dir / "hematovision.onnx").is_file():
        print(f"bench.power: no model at {args.model_dir}", file=sys.stderr)
        return 2
    probe = Cgroup(f"{GROUP_PREFIX}probe")
    if not all(os.access(d.parent, os.W_OK) for d in probe.dirs.values()):
        print(
            f"bench.power: cannot create cgroups under {', '.join(str(d.parent) for d in probe.dirs.values())} "
            "(run as root, or in a delegated cgroup)",
            file=sys.stderr,
        )
        return 2
    args.work.mkdir(parents=True, exist_ok=True)
    images = test_images(args.data, args.images)
    images_file = args.work / "images.txt"
    images_file.write_text("\n".join(str(p) for p in images) + "\n", encoding="utf-8")
    env = environment()
    if env["contended"]:
        log(f"WARNING: CPU-heavy process running ({env['contended']}): figures will be unreliable")
    from bench.__main__ import contention, cpu_busy_seconds, own_cpu_seconds

    started = time.perf_counter()
    busy_at_start, own_at_start = cpu_busy_seconds(), own_cpu_seconds()
    rows = [measure_size(args, mb, 1, None, images_file, images[0]) for mb in args.sizes]
    if not args.no_threads_row:
        largest = max(args.sizes)
        rows += [measure_size(args, largest, 2, spinning, images_file, images[0]) for spinning in ("1", "0")]
    # CPU other processes used meanwhile (the machine's busy time minus this run's): a loaded machine is no record
    elapsed = time.perf_counter() - started
    others = (cpu_busy_seconds() - busy_at_start) - (own_cpu_seconds() - own_at_start)
    env["background_cores"] = round(max(0.0, others) / max(1e-9, elapsed), 2)
    env["contended"] = env["contended"] or contention()
    card = json.loads((args.model_dir / "model_card.json").read_text(encoding="utf-8"))
    results = {
        "environment": env,
        "model": f"{card.get('name', '?')} {card.get('version', '?')}",
        "model_dir": str(args.model_dir.relative_to(ROOT))
        if args.model_dir.is_relative_to(ROOT)
        else str(args.model_dir),
        "images": len(images),
        "period_us": args.period_us,
        "prices": {
            "as_of": PRICES_AS_OF,
            "lambda_x86_per_gb_second": LAMBDA_X86_PER_GB_SECOND,
            "lambda_per_request": LAMBDA_PER_REQUEST,
            "api_gateway_rest_per_request": API_GATEWAY_REST_PER_REQUEST,
        },
        "rows": rows,
        "choice": choose(rows),
        "quick": args.quick,
        "elapsed_s": round(time.perf_counter() - started, 1),
        "command": "python -m bench.power " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    (args.work / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    text = "\n".join(power_section(results))
    (args.work / "power.md").write_text(text + "\n", encoding="utf-8")
    print(text)
    # only a full run on the shipped model on a quiet machine is the record (a subset of sizes, another model or a
    # loaded machine stays in --work)
    record = not args.quick and args.model_dir == DEFAULT_MODEL_DIR.resolve() and args.sizes == list(DEFAULT_SIZES)
    if record and (env["contended"] or env["background_cores"] > 0.1):
        log(
            f"not recorded in {RESULTS / 'power.json'}: other processes used {env['background_cores']} cores on "
            f"average ({env['contended'] or 'no training'}); rerun on an idle machine"
        )
        record = False
    if record:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "power.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        if DEFAULT_OUT.is_file():
            DEFAULT_OUT.write_text(
                replace_power_section(DEFAULT_OUT.read_text(encoding="utf-8"), text), encoding="utf-8"
            )
        log(f"wrote {RESULTS / 'power.json'} and the power-tuning section of {DEFAULT_OUT}")
    log(f"power tuning done in {results['elapsed_s']:.0f} s; results in {args.work / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
