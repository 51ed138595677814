"""Throughput of `hematovision serve` on loopback: bounded in requests and in time, stops by itself.

The server is started on 127.0.0.1 with a free port (never another address), loaded by `concurrency`
client threads POSTing raw JPEGs to /v1/classify until `requests` answers or `seconds` have passed,
then stopped with SIGINT (and killed if it has not stopped 20 s later); hematovision.local.serve_process
starts and stops it.
"""

from __future__ import annotations

import http.client
import itertools
import os
import sys
import threading
import time
from pathlib import Path

from bench.common import ROOT, child_env, log, summary_ms
from hematovision.local import serve_process
from hematovision.local.serve_process import HOST

API_KEY = "bench-throughput-key"


def post(port: int, body: bytes, timeout: float = 60.0) -> int:
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request(
            "POST", "/v1/classify", body=body, headers={"Content-Type": "image/jpeg", "x-api-key": API_KEY}
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def load(port: int, bodies: list[bytes], requests: int, seconds: float, concurrency: int) -> dict:
    counter = itertools.count()
    lock = threading.Lock()
    durations: list[float] = []
    statuses: dict[str, int] = {}
    deadline = time.perf_counter() + seconds

    def worker():
        while time.perf_counter() < deadline:
            index = next(counter)
            if index >= requests:
                return
            start = time.perf_counter()
            try:
                status = str(post(port, bodies[index % len(bodies)]))
            except OSError as error:
                status = type(error).__name__
            elapsed = time.perf_counter() - start
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status == "200":
                    durations.append(elapsed)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 90)
    wall = time.perf_counter() - started
    done = sum(statuses.values())
    return {
        "requests": done,
        "ok": statuses.get("200", 0),
        "errors": done - statuses.get("200", 0),
        "statuses": statuses,
        "seconds": round(wall, 2),
        "requests_per_s": round(statuses.get("200", 0) / wall, 2) if wall else 0.0,
        "latency": summary_ms(durations),
        "concurrency": concurrency,
    }


def run(
    python: Path, model_dir: Path, workers: int, images: list[Path], work: Path, requests: int, seconds: float
) -> dict:
    bodies = [p.read_bytes() for p in images]
    log_path = work / f"serve-{workers}w.log"
    started = time.perf_counter()
    env = child_env(HEMATOVISION_INTRA_OP_THREADS="1")
    server = serve_process.start(
        model_dir, log_path, API_KEY, workers=workers, python=python, env=env, cwd=ROOT, quiet=True
    )
    startup = time.perf_counter() - started
    try:
        for i in range(2 * workers):  # warm every worker
            post(server.port, bodies[i % len(bodies)])
        result = load(server.port, bodies, requests, seconds, concurrency=2 * workers)
    finally:
        server.stop()
    result.update(workers=workers, startup_s=round(startup, 2), host=HOST)
    log(f"serve --workers {workers}: {result['ok']} ok / {result['errors']} errors, {result['requests_per_s']} req/s")
    return result


if __name__ == "__main__":  # manual use: python -m bench.throughput MODEL_DIR IMAGE... (10 requests)
    import json

    print(
        json.dumps(
            run(
                Path(sys.executable),
                Path(sys.argv[1]),
                int(os.environ.get("WORKERS", "1")),
                [Path(p) for p in sys.argv[2:]],
                Path("/tmp"),
                10,
                30,
            )
        )
    )
