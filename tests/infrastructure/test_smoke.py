"""`make smoke` (scripts/smoke.py), the post-deploy check, against a local `hematovision serve` with the committed
model: the same checks a deploy runs against dev, here on loopback - and it fails when the API is wrong."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

from tests.ci import require
from tests.infrastructure.infra_helpers import MODEL_DIR, ROOT
from tests.integration.serve_helpers import API_KEY, start_server, stop_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require((MODEL_DIR / "hematovision.onnx").is_file(), "the committed model has not landed yet")
    served = start_server(tmp_path_factory.mktemp("smoke-serve"), MODEL_DIR, workers=1)
    yield served
    assert stop_server(served) == 0, served.log_path.read_text(errors="replace")[-3000:]


def make_smoke(url: str, key: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    return subprocess.run(
        ["make", "--no-print-directory", "smoke", f"URL={url}", f"KEY={key}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_make_smoke_passes_against_the_local_server(server):
    proc = make_smoke(server.url + "/", API_KEY)  # a trailing slash is tolerated
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    oks = [line for line in lines if line.startswith("ok ")]
    assert len(oks) == 5, proc.stdout
    assert any("POST /v1/classify (a real cell photo): NEUTROPHIL" in line for line in oks), proc.stdout
    assert "smoke: 5 of 5 checks passed" in lines
    # the key is never printed (make does not echo the line that holds it either)
    assert API_KEY not in proc.stdout + proc.stderr


def test_make_smoke_fails_with_a_key_the_api_refuses(server):
    proc = make_smoke(server.url, "not-a-key-of-this-server")
    assert proc.returncode != 0
    failed = [line for line in proc.stdout.splitlines() if line.startswith("FAIL")]
    # the keyed checks fail with the status the API gave; health (unkeyed), the wrong-key check and the unknown
    # route (404 before any key check, as API Gateway answers it) still pass
    assert len(failed) == 2, proc.stdout
    assert any(line.startswith("FAIL GET /v1/model: status 403 (invalid_api_key)") for line in failed), proc.stdout
    assert "smoke: 3 of 5 checks passed" in proc.stdout


def test_make_smoke_fails_when_nothing_listens(tmp_path):
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = make_smoke(f"http://127.0.0.1:{port}", "any-key")
    assert proc.returncode != 0
    assert "smoke: 0 of 5 checks passed" in proc.stdout, proc.stdout


def test_make_smoke_needs_a_url_and_a_key():
    proc = make_smoke("", "")
    assert proc.returncode != 0 and "usage: make smoke URL=" in proc.stderr
