#!/usr/bin/env python3
"""Post-deploy smoke test of a HematoVision API at any base URL (standard library only: runs with any python3).

    make smoke URL=https://{api}.execute-api.{region}.amazonaws.com/dev KEY=...   # the stack's ApiUrl output
    HEMATOVISION_API_KEY=... python3 scripts/smoke.py URL [--image PATH --expect-label LABEL]

URL is the stage's base (or a custom domain's root), without /v1: the routes carry the version. The key comes from
HEMATOVISION_API_KEY (`make smoke` sets it from KEY), never from the command line, so it stays out of `ps` and logs.

Checks, in order: GET /health 200 with the model loaded; GET /v1/model 200 (the card); POST /v1/classify with a real
cell photo (hooks/neutrophil.jpg, the PreTraffic hook's, as a raw image/jpeg body) 200, well-formed, and called a
NEUTROPHIL; the same with a wrong key 403 invalid_api_key; an unknown route 404 not_found. One line per check; exit
0 when all pass, 1 when one fails, 2 on a usage error. Never prints the key, the image or a whole response body.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = ROOT / "hooks" / "neutrophil.jpg"
DEFAULT_LABEL = "NEUTROPHIL"  # bccd TEST_SIMPLE/NEUTROPHIL/_0_1966.jpeg (hooks/pre_traffic.py says why)
KEY_ENV = "HEMATOVISION_API_KEY"
CLASSES = {"EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL"}
CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}


class CheckFailed(Exception):
    pass


def request(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None, timeout=30.0):
    """(status, parsed JSON body or None). HTTP errors are answers too: their status and body are returned."""
    req = urllib.request.Request(
        url, data=body, method=method, headers={"Accept": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:  # noqa: S310 - the operator's own URL
            status, data = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, data = error.code, error.read()
    try:
        return status, json.loads(data)
    except ValueError:
        return status, None


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def error_code(body) -> str | None:
    return body.get("error", {}).get("code") if isinstance(body, dict) else None


def check_health(base: str, key: str, args) -> str:
    # a fresh deploy may answer 5xx for a few seconds while the stage and the new version warm up: retry briefly
    for attempt in range(args.health_attempts):
        status, body = request(f"{base}/health", timeout=args.timeout)
        if status == 200 or attempt == args.health_attempts - 1:
            break
        time.sleep(2 * (attempt + 1))
    expect(status == 200, f"status {status} ({error_code(body)})")
    expect(isinstance(body, dict) and body.get("status") == "ok", "body status is not ok")
    version = (body.get("model") or {}).get("version")
    expect(bool(version), "no model version")
    return f"model {version}"


def check_model(base: str, key: str, args) -> str:
    status, body = request(f"{base}/v1/model", headers={"x-api-key": key}, timeout=args.timeout)
    expect(status == 200, f"status {status} ({error_code(body)})")
    expect(isinstance(body, dict) and body.get("version") and set(body.get("classes") or []) == CLASSES, "not a card")
    return f"card {body['name']} {body['version']}"


def classify(base: str, key: str, args):
    headers = {"x-api-key": key, "Content-Type": CONTENT_TYPES.get(args.image.suffix.lower(), "image/jpeg")}
    return request(f"{base}/v1/classify", "POST", args.image.read_bytes(), headers, timeout=args.timeout)


def check_classify(base: str, key: str, args) -> str:
    status, body = classify(base, key, args)
    expect(status == 200, f"status {status} ({error_code(body)})")
    probabilities = body.get("probabilities") or {}
    expect(set(probabilities) == CLASSES, f"classes {sorted(probabilities)}")
    expect(abs(sum(probabilities.values()) - 1.0) < 1e-3, "probabilities do not sum to 1")
    expect(body.get("label") in CLASSES and bool(body.get("disclaimer")), "no label or no disclaimer")
    if args.expect_label:
        expect(body["label"] == args.expect_label, f"called {body['label']}, expected {args.expect_label}")
    return f"{body['label']} {body.get('confidence')}"


def check_wrong_key(base: str, key: str, args) -> str:
    status, body = classify(base, f"smoke-wrong-key-{uuid.uuid4().hex}", args)
    expect(status == 403, f"status {status}, expected 403")
    expect(error_code(body) == "invalid_api_key", f"code {error_code(body)!r}, expected 'invalid_api_key'")
    return "invalid_api_key"


def check_unknown_route(base: str, key: str, args) -> str:
    status, body = request(f"{base}/v1/no-such-route-{uuid.uuid4().hex[:8]}", headers={"x-api-key": key})
    expect(status == 404, f"status {status}, expected 404")
    expect(error_code(body) == "not_found", f"code {error_code(body)!r}, expected 'not_found'")
    return "not_found"


CHECKS = [
    ("GET /health", check_health),
    ("GET /v1/model", check_model),
    ("POST /v1/classify (a real cell photo)", check_classify),
    ("POST /v1/classify with a wrong key -> 403", check_wrong_key),
    ("GET an unknown route -> 404", check_unknown_route),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="base URL of the stage, e.g. the stack's ApiUrl output (without /v1)")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="a cell photo (default: %(default)s)")
    parser.add_argument("--expect-label", default=None, help=f"default {DEFAULT_LABEL} for the default image")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--health-attempts", type=int, default=3)
    args = parser.parse_args(argv)
    key = os.environ.get(KEY_ENV, "")
    if not key or not args.url.startswith(("http://", "https://")):
        print(f"usage: {KEY_ENV}=KEY {parser.prog} URL (an http(s) URL and a key are required)", file=sys.stderr)
        return 2
    if args.expect_label is None and args.image == DEFAULT_IMAGE:
        args.expect_label = DEFAULT_LABEL
    base = args.url.rstrip("/")
    print(f"smoke test of {base}")
    failures = 0
    for name, check in CHECKS:
        started = time.monotonic()
        try:
            detail = check(base, key, args)
            outcome = "ok  "
        except (CheckFailed, OSError) as error:  # OSError: connection refused, DNS, TLS, timeouts
            detail, outcome = f"{type(error).__name__}: {error}" if isinstance(error, OSError) else str(error), "FAIL"
            failures += 1
        print(f"{outcome} {name}: {detail} ({(time.monotonic() - started) * 1000:.0f} ms)")
    print(f"smoke: {len(CHECKS) - failures} of {len(CHECKS)} checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
