"""`hematovision serve` end to end: API Gateway emulation + awslambdaric workers (random-weights model)."""

import base64
import http.client
import json
import os
import signal
import threading
import time

import pytest

from tests import fakes
from tests.integration.serve_helpers import API_KEY

JPEG = fakes.synthetic_cell()
PNG = fakes.synthetic_cell(seed=4, fmt="PNG")


def assert_alive(server):
    status, body = server.json("POST", "/v1/classify", JPEG, {"Content-Type": "image/jpeg"})
    assert status == 200 and body["label"] in fakes.CLASSES


def test_health_without_key(server):
    status, body = server.json("GET", "/health", key=None)
    assert status == 200 and body["status"] == "ok"
    assert server.json("GET", "/", key=None)[0] == 200
    status, spec = server.json("GET", "/openapi.json", key=None)
    assert status == 200 and "/v1/classify" in spec["paths"]


def test_three_upload_forms(server):
    raw = server.json("POST", "/v1/classify", JPEG, {"Content-Type": "image/jpeg"})
    as_json = server.json(
        "POST",
        "/v1/classify",
        json.dumps({"image": base64.b64encode(JPEG).decode()}),
        {"Content-Type": "application/json"},
    )
    content_type, body = fakes.encode_multipart([("image", "cell.jpg", "image/jpeg", JPEG)])
    multipart = server.json("POST", "/v1/classify", body, {"Content-Type": content_type})
    for status, result in (raw, as_json, multipart):
        assert status == 200, result
        assert set(result["probabilities"]) == set(fakes.CLASSES) and isinstance(result["uncertain"], bool)
    assert raw[1]["probabilities"] == as_json[1]["probabilities"] == multipart[1]["probabilities"]
    assert multipart[1]["filename"] == "cell.jpg"


def test_batch_forms_and_explain(server):
    content_type, body = fakes.encode_multipart(
        [("image", "a.png", "image/png", PNG), ("image", "b.txt", "text/plain", b"nope")]
    )
    status, result = server.json("POST", "/v1/classify/batch?explain=true", body, {"Content-Type": content_type})
    assert status == 200 and [r["status"] for r in result["results"]] == [200, 415]
    assert result["results"][0]["result"]["heatmap"]["data"]
    images = [base64.b64encode(JPEG).decode()] * 3
    status, result = server.json(
        "POST", "/v1/classify/batch", json.dumps({"images": images}), {"Content-Type": "application/json"}
    )
    assert status == 200 and result["succeeded"] == 3


@pytest.mark.parametrize(
    "headers, body, key, status",
    [
        ({"Content-Type": "image/jpeg"}, JPEG, None, 403),
        ({"Content-Type": "image/jpeg"}, JPEG, "wrong-key", 403),
        ({"Content-Type": "text/plain"}, b"hello, I am a text file\n", API_KEY, 415),
        ({"Content-Type": "image/jpeg"}, b"hello, I am a text file\n", API_KEY, 415),
        ({"Content-Type": "image/jpeg"}, JPEG[: len(JPEG) // 3], API_KEY, 422),
        ({"Content-Type": "image/png"}, PNG[:200], API_KEY, 422),
        ({"Content-Type": "image/jpeg"}, b"", API_KEY, 400),
        ({"Content-Type": "application/json"}, b'{"image": "@@@"}', API_KEY, 400),
        ({"Content-Type": "multipart/form-data; boundary=x"}, b"--x\r\ntruncated", API_KEY, 400),
    ],
    ids=[
        "no-key",
        "wrong-key",
        "text-file",
        "text-as-jpeg",
        "truncated-jpeg",
        "truncated-png",
        "empty",
        "bad-base64",
        "bad-multipart",
    ],
)
def test_client_errors_then_still_serving(server, headers, body, key, status):
    got, _, data = server.request("POST", "/v1/classify", body, headers, key=key)
    assert got == status, data
    parsed = json.loads(data)
    assert parsed["error"]["code"] and parsed["request_id"]
    assert b"Traceback" not in data
    assert_alive(server)


def test_unknown_route(server):
    assert server.request("GET", "/v2/nothing", key=None)[0] == 404
    assert server.request("GET", "/v1/classify", key=API_KEY)[0] == 404


def test_api_gateway_body_limit(server):
    """Over 10 MB: refused from the Content-Length alone, before the body is read."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    connection.putrequest("POST", "/v1/classify")
    connection.putheader("x-api-key", API_KEY)
    connection.putheader("Content-Type", "image/jpeg")
    connection.putheader("Content-Length", str(11 * 1024 * 1024))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413
    connection.close()
    assert_alive(server)


def test_lambda_payload_limit(server):
    """5 MB of binary is under API Gateway's 10 MB but ~6.7 MB as a base64 event: Lambda refuses it."""
    status, _, data = server.request(
        "POST", "/v1/classify", os.urandom(5 * 1024 * 1024), {"Content-Type": "image/jpeg"}
    )
    assert status == 413, data
    assert_alive(server)


def test_concurrent_requests(server):
    statuses = []

    def client():
        for _ in range(4):
            statuses.append(server.request("POST", "/v1/classify", JPEG, {"Content-Type": "image/jpeg"})[0])

    threads = [threading.Thread(target=client) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert statuses == [200] * 24


def test_killed_worker_is_replaced(server):
    workers = server.workers()
    assert len(workers) == 2
    victim = sorted(workers)[0]
    os.kill(victim, signal.SIGKILL)
    # SIGKILL is asynchronous: wait until the process is gone (reaped by the pool), else a request handed
    # to it in the meantime is, rightly, one whose environment died mid-way (502)
    deadline = time.time() + 10
    while time.time() < deadline and os.path.exists(f"/proc/{victim}"):
        time.sleep(0.005)
    for _ in range(6):
        assert_alive(server)
    deadline = time.time() + 20
    while time.time() < deadline and (len(server.workers()) != 2 or victim in server.workers()):
        time.sleep(0.1)
    assert len(server.workers()) == 2 and victim not in server.workers()
    assert_alive(server)


def test_sigterm_stops_server_and_workers(tmp_path, fake_model_dir):
    from tests.integration.serve_helpers import start_server, stop_server

    own = start_server(tmp_path, fake_model_dir, workers=1)
    assert len(own.workers()) == 1
    assert stop_server(own, signal.SIGTERM) == 0


def test_missing_model_fails_fast_with_a_clear_message(tmp_path):
    import subprocess
    import sys

    from tests.integration.serve_helpers import ROOT

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hematovision.cli",
            "serve",
            "--port",
            "0",
            "--workers",
            "1",
            "--api-key",
            "k",
            "--model-dir",
            str(tmp_path / "no-model"),
            "--quiet",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3
    assert "failed to initialise" in result.stderr and "No model" in result.stderr


def test_bench_command(tmp_path, fake_model_dir, capsys):
    from hematovision.local import bench

    image = tmp_path / "cell.jpg"
    image.write_bytes(JPEG)
    assert bench.main([str(image), "-n", "5", "--workers", "1", "--model-dir", str(fake_model_dir)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 5 and result["median_ms"] > 0 and result["handler_total_median_ms"] > 0
