"""Warm latency through the local server: `python -m hematovision.local.bench IMAGE [-n 200]`.

Starts `hematovision serve` on a free loopback port (hematovision.local.serve_process; or uses --url/--key),
sends IMAGE as a raw image/jpeg body over one keep-alive connection: 10 warm-up requests, then N measured
ones, one at a time. Prints a JSON line: client-side median/p90/p99 and the handler's own total_ms median.
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from hematovision.local import serve_process


def measure(url: str, key: str, data: bytes, n: int, content_type: str) -> dict:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)

    def once() -> tuple[float, dict]:
        start = time.perf_counter()
        connection.request("POST", "/v1/classify", body=data, headers={"Content-Type": content_type, "x-api-key": key})
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {body[:300]!r}")
        return (time.perf_counter() - start) * 1000, json.loads(body)

    for _ in range(10):
        once()
    samples, inside, body = [], [], {}
    for _ in range(n):
        ms, body = once()
        samples.append(ms)
        inside.append(body["timings"]["total_ms"])
    samples.sort()

    def quantile(q: float) -> float:
        return round(samples[min(len(samples) - 1, int(q * len(samples)))], 2)

    return {
        "n": n,
        "median_ms": round(statistics.median(samples), 2),
        "p90_ms": quantile(0.9),
        "p99_ms": quantile(0.99),
        "min_ms": round(samples[0], 2),
        "handler_total_median_ms": round(statistics.median(inside), 2),
        "model": body.get("model"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image", type=Path)
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--url", help="an already running server (default: start one)")
    parser.add_argument("--key", default="bench-key")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model-dir")
    args = parser.parse_args(argv)
    data = args.image.read_bytes()
    content_type = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    if args.url:
        print(json.dumps(measure(args.url, args.key, data, args.n, content_type)))
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        try:
            server = serve_process.start(args.model_dir, Path(scratch) / "serve.log", args.key, workers=args.workers)
        except serve_process.ServeError as error:
            sys.stderr.write(f"{error}\n")
            return 1
        try:
            print(json.dumps(measure(server.url, args.key, data, args.n, content_type)))
            return 0
        finally:
            server.stop(signal.SIGTERM, timeout=30)


if __name__ == "__main__":
    sys.exit(main())
