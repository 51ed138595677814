"""The malformed-input corpus (tests/hardening/corpus.py, >= 500 generated cases) through the Lambda handler
directly and through `hematovision serve`: the asserted status per case, never a 5xx, no uncaught exception,
no stack trace or file path in any answer, no image bytes or base64 in any log line, process alive afterwards.
Issue #20: each case answers within TIME_BOUND_S, and the peak RSS over the whole corpus (so of every case) stays
under 75% of the template's MemorySize: the test process's through the handler, each worker's through the server;
the server's logs hold neither the API key nor a query string.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import http.client
import io
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from bench.decode_memory import memory_bound_mb
from hematovision.local.events import build_event
from hematovision.local.template import default_template_path, load_api_config
from tests import fakes
from tests.hardening import corpus
from tests.integration.serve_helpers import API_KEY

CASES = corpus.build()
TEMPLATE = load_api_config(default_template_path())
JPEG = fakes.synthetic_cell()

# what an answer must never contain: a Python traceback, a source file or a path on the machine
LEAKS = re.compile(r'Traceback|File "|\.py\b|/var/task|/opt/|/work/|/home/|/usr/lib|site-packages|/tmp/')
# a long base64 run in a log line: an image (or any body) dumped into the logs
BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{120,}={0,2}")
RAW_IMAGE_MARKERS = ("JFIF", "IHDR", "IDAT", "\\xff\\xd8", "\\x89PNG", "\ufffd\ufffd\ufffd")
TIME_BOUND_S = 5.0


def peak_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def reset_peak(pid: int | str = "self") -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM back to the current RSS (root, or the process's owner)


def test_corpus_is_large_and_varied():
    assert len(CASES) >= 500
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"
    statuses = collections.Counter(min(c.expected(False)) for c in CASES)
    assert {200, 400, 413, 415, 422} <= set(statuses)


def fingerprints(case: corpus.Case) -> list[str]:
    """Substrings that would show this case's image bytes in a log: base64 at three alignments, JSON image text."""
    found = []
    data = case.body
    if len(data) >= 96:
        for start in (0, 1, 2, len(data) // 2):
            found.append(base64.b64encode(data[start : start + 48]).decode())
    if case.content_type and "json" in case.content_type and len(data) >= 96:
        try:
            value = json.loads(data)
        except (ValueError, RecursionError):
            value = None
        texts = [value.get("image")] if isinstance(value, dict) and isinstance(value.get("image"), str) else []
        if isinstance(value, dict) and isinstance(value.get("images"), list):
            texts += [t for t in value["images"] if isinstance(t, str)]
        found += [t.strip()[:48] for t in texts if len(t.strip()) >= 48]
    return found


def assert_clean_logs(text: str, cases: list[corpus.Case]) -> None:
    assert "Traceback" not in text and "unhandled error" not in text and "could not resolve" not in text, (
        "an exception reached the logs"
    )
    for line in text.splitlines():
        run = BASE64_RUN.search(line)
        assert run is None, f"base64-like run in a log line: {line[:200]}"
        for marker in RAW_IMAGE_MARKERS:
            assert marker not in line, f"image bytes in a log line: {line[:200]}"
    for case in cases:
        for fingerprint in fingerprints(case):
            assert fingerprint not in text, f"{case.id}: its image data appears in the logs"


def check_answer(case: corpus.Case, status: int, body: bytes, through_server: bool) -> dict | None:
    where = "serve" if through_server else "handler"
    assert status < 500, f"{where} {case.id}: {status} {body[:300]!r}"
    assert status in case.expected(through_server), (
        f"{where} {case.id}: got {status}, want {sorted(case.expected(through_server))}: {body[:300]!r}"
    )
    text = body.decode("utf-8", errors="replace")
    assert not LEAKS.search(text), f"{where} {case.id}: the answer leaks internals: {text[:300]}"
    parsed = json.loads(body)
    if status != 200:
        assert set(parsed) >= {"error", "request_id"} and parsed["error"]["code"] and parsed["error"]["message"], parsed
        if case.code and (not through_server or case.server_status is None):
            assert parsed["error"]["code"] == case.code, (
                f"{where} {case.id}: code {parsed['error']['code']}, want {case.code}"
            )
    elif case.check is not None:
        case.check(parsed)
    return parsed


# ------------------------------------------------------------------ the handler, invoked directly
def event_for(case: corpus.Case) -> dict:
    """The event API Gateway would send for this request (same builder as the local server)."""
    return build_event(
        "POST",
        case.path,
        case.path,
        headers=[*case.headers.items(), ("x-api-key", API_KEY)],
        query=parse_qsl(case.query, keep_blank_values=True),
        body=case.body,
        binary=TEMPLATE.is_binary(case.content_type),
        api_key=API_KEY,
    )


def test_corpus_through_the_handler(api, context, capsys):
    handler = api.logger.registered_handler
    stream = io.StringIO()
    previous = handler.setStream(stream)
    distribution = collections.Counter()
    reset_peak()
    try:
        for case in CASES:
            started = time.perf_counter()
            response = api.lambda_handler(event_for(case), context)  # an uncaught exception fails the test here
            assert time.perf_counter() - started <= TIME_BOUND_S, case.id
            assert set(response) >= {"statusCode", "body"}, case.id
            distribution[response["statusCode"]] += 1
            check_answer(case, response["statusCode"], response["body"].encode(), through_server=False)
        alive = api.lambda_handler(event_for(corpus.Case("alive", corpus.CLASSIFY, "image/jpeg", JPEG, 200)), context)
        assert alive["statusCode"] == 200
    finally:
        handler.setStream(previous)
    assert peak_mb() < memory_bound_mb(), f"peak RSS {peak_mb():.0f} MB over the corpus"
    out = capsys.readouterr()
    logs = stream.getvalue() + out.out + out.err
    assert logs.count('"correlation_id"') >= len(CASES) // 2, "the handler's logs were not captured"
    assert_clean_logs(logs, CASES)
    print(f"\ncorpus through the handler: {len(CASES)} cases, statuses {dict(sorted(distribution.items()))}")


def test_exif_orientations_are_classified_upright(api, context):
    """A phone photo stored turned, with the EXIF orientation that undoes it: the same verdict as the upright one."""
    for orientation in range(1, 9):
        upright, stored = corpus.exif_rotated(orientation)
        answers = []
        for data in (upright, stored):
            response = api.lambda_handler(
                event_for(corpus.Case("exif", corpus.CLASSIFY, "image/png", data, 200)), context
            )
            assert response["statusCode"] == 200, response["body"]
            answers.append(json.loads(response["body"]))
        assert answers[0]["probabilities"] == answers[1]["probabilities"], f"orientation {orientation}"
        assert (answers[1]["width"], answers[1]["height"]) == (320, 240)


# ------------------------------------------------------------------ through `hematovision serve`
def post(server, case: corpus.Case) -> tuple[int, dict, bytes]:
    """POST the case; a body over 10 MB is refused from its Content-Length, so the upload may break off:
    read the answer."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=60)
    try:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the server answered before the end
            connection.request("POST", case.target, body=case.body, headers={**case.headers, "x-api-key": API_KEY})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def send_corpus(server, cases) -> collections.Counter:
    """Every case through `hematovision serve`, 4 at a time, each answer checked and within the time bound; the
    distribution of statuses. The server must still be running at the end."""

    def send(case):
        started = time.perf_counter()
        return (case, *post(server, case), time.perf_counter() - started)

    distribution = collections.Counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        for case, status, headers, body, seconds in pool.map(send, cases):
            assert seconds <= TIME_BOUND_S, f"{case.id}: {seconds:.1f} s"
            distribution[status] += 1
            assert headers.get("x-amzn-requestid"), case.id
            check_answer(case, status, body, through_server=True)
    assert server.process.poll() is None, "the server died"
    return distribution


def test_corpus_through_the_server(server):
    workers = server.workers()
    assert len(workers) == 2

    for pid in workers:
        reset_peak(pid)

    distribution = send_corpus(server, CASES)
    assert server.workers() == workers, "a worker process died during the corpus (a crash, not an answer)"
    for pid in workers:
        assert peak_mb(pid) < memory_bound_mb(), f"worker {pid}: peak RSS {peak_mb(pid):.0f} MB over the corpus"
    status, _, body = server.request("POST", "/v1/classify", JPEG, {"Content-Type": "image/jpeg"})
    assert status == 200, body
    logs = server.log_path.read_text(errors="replace")
    assert logs.count('"correlation_id"') >= len(CASES) // 2, "the workers' logs were not captured"
    assert_clean_logs(logs, CASES)
    assert API_KEY not in logs, "a user-given API key in the logs"
    assert "foo=bar" not in logs and "explain=" not in logs, "a query string in the logs"
    print(f"\ncorpus through hematovision serve: {len(CASES)} cases, statuses {dict(sorted(distribution.items()))}")


def test_every_classify_route_needs_a_key_locally(server):
    """Every /v1 route of the template answers 403 without a key or with a wrong one, before the function runs."""
    keyed = {(r.method, r.path) for r in TEMPLATE.routes if r.api_key_required}
    assert {("POST", "/v1/classify"), ("POST", "/v1/classify/batch"), ("GET", "/v1/model")} <= keyed
    for route in TEMPLATE.routes:
        if not route.path.startswith("/v1"):
            continue
        assert route.api_key_required, f"{route.method} {route.path} is open"
        for key in (None, "", "wrong-key", API_KEY.upper(), API_KEY[:-1]):
            headers = {"Content-Type": "image/jpeg"}
            status, _, body = server.request(
                route.method, route.path, JPEG if route.method == "POST" else None, headers, key=key
            )
            assert status == 403, (route.path, key, status)
            assert json.loads(body)["error"]["code"] == "invalid_api_key"
    status, spec = server.json("GET", "/openapi.json", key=None)
    assert status == 200
    for path in ("/v1/classify", "/v1/classify/batch", "/v1/model"):
        for operation in spec["paths"][path].values():
            assert operation.get("security") == [{"apiKey": []}], path


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND", "FOO", "PATCH", "DELETE", "PUT"])
def test_any_method_gets_the_gateway_answer(server, method):
    """Regression: http.server answered unknown methods (TRACE, ...) with an HTML 501;
    API Gateway gives its JSON 404."""
    for path in ("/v1/classify", "/health", "/nowhere"):
        status, headers, body = server.request(method, path, b"x", {"Content-Type": "image/jpeg"})
        assert status == 404, (method, path, status, body[:200])
        assert json.loads(body)["error"]["code"] == "not_found" and headers.get("x-amzn-requestid")
    assert server.request("GET", "/health", key=None)[0] == 200


def test_openapi_documents_the_key_refusal(server):
    status, spec = server.json("GET", "/openapi.json", key=None)
    for path in ("/v1/classify", "/v1/classify/batch", "/v1/model"):
        for operation in spec["paths"][path].values():
            assert "403" in operation["responses"], path
