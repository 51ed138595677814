"""Hostile-but-valid images within the function's memory (issue #20 point 1).

Small files declaring up to 50 megapixels (32-bit and 16-bit TIFF, transparent and 16-bit PNG, palette, RLE BMP,
WebP, CMYK, batches of 16) and 12 MP whole fields, from bench/decode_memory.py. Each case asserts its status, a
peak RSS under 75% of the template's MemorySize and a loose time guard (the < 2 s target is the benchmark's):
- through the handler, each case in a fresh process (VmHWM after the one event, init included);
- through `hematovision serve --memory-mb <MemorySize>`: one worker in a memory cgroup of the function's size,
  its peak counter reset before each case (/proc/<pid>/clear_refs), and the worker never killed.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import decode_memory
from hematovision.local import serve_process
from hematovision.local.runtime import MemoryLimit
from tests.integration.serve_helpers import API_KEY, REAL_MODEL_DIR, ROOT

TIME_BOUND_S = 5.0
BOUND_MB = decode_memory.memory_bound_mb()
MEMORY_MB = decode_memory.function_memory_mb()


@pytest.fixture(scope="module")
def cases():
    return decode_memory.build_cases()


@pytest.fixture(scope="module")
def model_dir(fake_model_dir):
    """The committed model when it is there (what deploys), else the random stand-in."""
    return REAL_MODEL_DIR if (REAL_MODEL_DIR / "model_card.json").is_file() else fake_model_dir


def test_the_bound_is_read_from_the_template():
    assert MEMORY_MB == 1769 and pytest.approx(0.75 * 1769) == BOUND_MB  # FunctionMemorySize's default


def test_cases_cover_the_findings(cases):
    names = {c.name for c in cases}
    for name in ("tiff-32bit-int-50mp", "png-rgba-50mp", "png-16bit-grey-50mp", "batch-16-png-rgba-50mp"):
        assert name in names
    assert all(len(c.body) < 4_400_000 for c in cases), "every case fits Lambda's 6 MB event in base64"
    for case in cases:
        if case.name.endswith("-12mp"):
            assert case.status == 200, f"{case.name}: a 12 MP field must be accepted"


def check(case, status: int, items, peak_mb: float, seconds: float, where: str) -> None:
    assert status == case.status, f"{where} {case.name}: status {status}, want {case.status}"
    if case.item_statuses is not None:
        assert items == case.item_statuses, f"{where} {case.name}: items {items}"
    assert peak_mb < BOUND_MB, f"{where} {case.name}: peak RSS {peak_mb:.0f} MB >= {BOUND_MB:.0f} MB"
    assert seconds <= TIME_BOUND_S, f"{where} {case.name}: {seconds:.1f} s"


def test_through_the_handler_in_fresh_processes(cases, model_dir):
    results = [(case, decode_memory.measure(case, model_dir)) for case in cases]  # one at a time: honest times
    rows = []
    for case, result in results:
        assert "error" not in result, f"{case.name}: {result.get('error')}"
        check(case, result["status"], result["items"], result["peak_mb"], result["seconds"], "handler")
        rows.append(f"{case.name} {result['peak_mb']:.0f} MB {result['seconds']:.2f} s")
    print("\n" + "\n".join(rows))


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def post(server, case) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=60)
    try:
        connection.request(
            "POST", case.path, body=case.body, headers={"Content-Type": case.content_type, "x-api-key": API_KEY}
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def limited_server(tmp_path, model_dir):
    return serve_process.start(
        model_dir,
        tmp_path / "serve.log",
        API_KEY,
        workers=1,
        env=dict(os.environ),
        cwd=ROOT,
        timeout=90,
        extra_args=["--memory-mb"],  # no value: the template's MemorySize
    )


def test_through_serve_under_the_function_memory_size(cases, model_dir, tmp_path):
    import json

    if MemoryLimit(MEMORY_MB).kind == "rlimit-as":
        pytest.skip("no writable memory cgroup (not root?): RLIMIT_AS is not a resident-memory limit")
    server = limited_server(tmp_path, model_dir)
    try:
        log = server.log_path.read_text()
        assert f"each worker limited to {MEMORY_MB} MB (a cgroup" in log, log[-2000:]
        (worker,) = server.workers()
        group = Path(f"/proc/{worker}/cgroup").read_text()
        assert "hematovision-local-" in group, group
        for case in cases:
            reset_peak(worker)
            started = time.perf_counter()
            status, body = post(server, case)
            seconds = time.perf_counter() - started
            items = [r["status"] for r in json.loads(body).get("results", [])] or None
            check(case, status, items, vm_hwm_mb(worker), seconds, "serve")
            assert server.workers() == {worker}, f"{case.name}: the worker was killed (out of memory?)"
    finally:
        server.stop()


def test_the_memory_limit_kills_a_process_over_it():
    """The mechanism `serve --memory-mb` relies on: a process over its cgroup's limit is killed, as Lambda does."""
    limit = MemoryLimit(200, name=f"hematovision-test-{os.getpid()}")
    if limit.kind == "rlimit-as":
        pytest.skip("no writable memory cgroup (not root?)")
    code = "import sys, time; sys.stdin.readline(); b = bytearray(400 * 1024 * 1024); print('survived', flush=True)"
    process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        limit.attach(process.pid, 0)
        process.stdin.write("go\n")
        process.stdin.flush()
        out, _ = process.communicate(timeout=60)
        assert process.returncode == -9 and "survived" not in out, (process.returncode, out)
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait()
        limit.release()
    assert limit.group(0) is None
