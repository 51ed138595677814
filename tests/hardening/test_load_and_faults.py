"""Loopback load test with the REAL committed model, and a worker killed mid-request.

Load: CLIENTS concurrent clients POST a 320x240 JPEG to `hematovision serve` (127.0.0.1 only, 2 awslambdaric
workers) for LOAD_SECONDS (default 60, env HEMATOVISION_LOAD_SECONDS; bounded by MAX_REQUESTS too, so it
always stops by itself). Asserts zero errors, and RSS of the server + workers flat within 10% after warm-up
(mean of the first WINDOW seconds after warm-up vs. the last WINDOW seconds; the peak is reported too).
Writes the figures (requests, throughput, p50/p90/p99/max latency, RSS) to test-artifacts/load-test.json and
prints them. The real model is used so the latency is the product's, not the 16-feature stand-in's.

Fault: a worker is SIGKILLed while it decodes a batch of large (49 MP) images. The client gets what API Gateway answers
when the Lambda environment dies, through the template's DEFAULT_5XX: 502 bad_gateway (retryable, never a hang); the
worker is replaced and the next request succeeds.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import statistics
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from tests import fakes
from tests.integration.serve_helpers import REAL_MODEL_DIR, ROOT, require, start_server, stop_server

LOAD_SECONDS = float(os.environ.get("HEMATOVISION_LOAD_SECONDS", "60"))
WARM_UP_SECONDS = 10.0
WINDOW = 10.0
CLIENTS = 4
MAX_REQUESTS = 50_000
JPEG = fakes.synthetic_cell(320, 240, seed=21)


def rss_bytes(pids) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


@pytest.fixture(scope="module")
def real_server(tmp_path_factory):
    require((REAL_MODEL_DIR / "hematovision.onnx").exists(), "the committed model is missing")
    server = start_server(tmp_path_factory.mktemp("serve-load"), REAL_MODEL_DIR, workers=2)
    yield server
    assert stop_server(server) == 0, server.log_path.read_text(errors="replace")[-3000:]


@pytest.mark.slow
def test_load_on_loopback(real_server):
    server = real_server
    assert server.host == "127.0.0.1"
    workers = server.workers()
    pids = {server.process.pid, *workers}
    latencies: list[tuple[float, float]] = []  # (time since start, seconds)
    errors: list[str] = []
    lock = threading.Lock()
    start = time.monotonic()
    deadline = start + LOAD_SECONDS
    stop = threading.Event()

    def client():
        while not stop.is_set() and time.monotonic() < deadline:
            sent = time.monotonic()
            try:
                status, _, body = server.request(
                    "POST", "/v1/classify", JPEG, {"Content-Type": "image/jpeg"}, timeout=30
                )
                ok = status == 200 and json.loads(body)["label"]
                problem = None if ok else f"{status}: {body[:200]!r}"
            except Exception as error:  # noqa: BLE001 - every failure is an error of the load test
                problem = f"{type(error).__name__}: {error}"
            with lock:
                if problem:
                    errors.append(problem)
                else:
                    latencies.append((sent - start, time.monotonic() - sent))
                if len(latencies) + len(errors) >= MAX_REQUESTS:
                    stop.set()

    samples: list[tuple[float, int]] = []
    threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        samples.append((time.monotonic() - start, rss_bytes(pids)))
        time.sleep(1.0)
    for thread in threads:
        thread.join(40)
    duration = time.monotonic() - start

    warm = [s for t, s in samples if t >= WARM_UP_SECONDS]
    first = [s for t, s in samples if WARM_UP_SECONDS <= t < WARM_UP_SECONDS + WINDOW]
    last = [s for t, s in samples if t >= samples[-1][0] - WINDOW]
    steady = [d for t, d in latencies if t >= WARM_UP_SECONDS]
    all_latencies = [d for _, d in latencies]
    report = {
        "model": "committed (functions/classifier/model)",
        "clients": CLIENTS,
        "workers": len(workers),
        "duration_s": round(duration, 1),
        "requests": len(latencies) + len(errors),
        "errors": len(errors),
        "throughput_rps": round(len(latencies) / duration, 1),
        "latency_ms_after_warm_up": {
            "p50": round(statistics.median(steady) * 1000, 1),
            "p90": round(percentile(steady, 90) * 1000, 1),
            "p99": round(percentile(steady, 99) * 1000, 1),
            "max": round(max(steady) * 1000, 1),
        },
        "latency_ms_all": {
            "p50": round(statistics.median(all_latencies) * 1000, 1),
            "p99": round(percentile(all_latencies, 99) * 1000, 1),
        },
        "rss_mib": {
            "at_start": round(samples[0][1] / 2**20, 1),
            "after_warm_up": round(statistics.mean(first) / 2**20, 1),
            "end": round(statistics.mean(last) / 2**20, 1),
            "peak_after_warm_up": round(max(warm) / 2**20, 1),
        },
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    report["rss_mib"]["change_pct"] = round(
        (report["rss_mib"]["end"] / report["rss_mib"]["after_warm_up"] - 1) * 100, 2
    )
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "load-test.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print("\nload test:", json.dumps(report))

    assert not errors, f"{len(errors)} errors, e.g. {errors[:5]}"
    assert duration >= LOAD_SECONDS - 1 and len(latencies) >= 100, report
    assert server.process.poll() is None and server.workers() == workers, "a process died under load"
    assert abs(report["rss_mib"]["change_pct"]) <= 10, f"RSS not flat: {report['rss_mib']}"
    assert max(warm) <= 1.10 * statistics.mean(first), (
        f"RSS peak over 10% above the post-warm-up level: {report['rss_mib']}"
    )


def busy(pid: int) -> float:
    """CPU seconds (user + system) the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.slow
def test_worker_killed_mid_request_is_replaced(tmp_path, fake_model_dir):
    big = io.BytesIO()
    Image.new("RGB", (4800, 4000), (200, 120, 160)).save(
        big, format="PNG", compress_level=1
    )  # 19 MP: decodes for a while
    big = big.getvalue()
    server = start_server(tmp_path, fake_model_dir, workers=1)
    try:
        (victim,) = server.workers()
        before = busy(victim)
        answer: dict = {}

        # four 19 MP images in one batch, all within the request's decode budget (limits.MAX_REQUEST_DECODE_BYTES;
        # larger ones are refused before decoding): about 0.7 s of CPU, so a kill after 0.25 s lands mid-request
        batch = json.dumps({"images": [base64.b64encode(big).decode()] * 4}).encode()

        def slow_request():
            answer["reply"] = server.request(
                "POST", "/v1/classify/batch", batch, {"Content-Type": "application/json"}, timeout=60
            )

        thread = threading.Thread(target=slow_request)
        thread.start()
        deadline = time.time() + 20
        while busy(victim) - before < 0.25 and time.time() < deadline:  # the worker is decoding the images
            time.sleep(0.01)
        assert busy(victim) - before >= 0.25, "the worker never got busy with the request"
        os.kill(victim, signal.SIGKILL)
        thread.join(60)
        status, headers, body = answer["reply"]
        assert status == 502, (status, body[:300])  # what API Gateway answers when the environment dies
        assert json.loads(body)["error"]["code"] == "bad_gateway"
        assert headers.get("x-amzn-errortype") == "InternalServerErrorException"
        assert b"Traceback" not in body and headers.get("x-amzn-requestid")
        # the next request succeeds on a fresh environment (it waits for the replacement's init)
        status, _, body = server.request("POST", "/v1/classify", JPEG, {"Content-Type": "image/jpeg"}, timeout=60)
        assert status == 200, body[:300]
        (replacement,) = server.workers()
        assert replacement != victim
        # and the big image itself is fine when nobody kills the worker
        status, _, body = server.request("POST", "/v1/classify", big, {"Content-Type": "image/png"}, timeout=60)
        assert status == 200, body[:300]
        assert "respawning" in server.log_path.read_text(errors="replace")
    finally:
        assert stop_server(server) == 0
