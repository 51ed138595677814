"""Helpers for the integration tests: start/stop `hematovision serve` on a free loopback port, CI-aware skips."""

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
API_KEY = "integration-test-key"
IN_CI = os.environ.get("CI", "").lower() == "true"
REAL_MODEL_DIR = ROOT / "functions" / "classifier" / "model"
SHARED_DATA = ROOT.parent / "shared" / "data"


def require(condition: bool, reason: str) -> None:
    """Skip locally when a resource is absent; in CI (CI=true) that is a failure, never a skip."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: required, not skipped)")
    pytest.skip(reason)


def children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found |= {int(p) for p in (task / "children").read_text().split()}
        except OSError:
            pass
    return found


class Server:
    def __init__(self, process: subprocess.Popen, url: str, log_path: Path):
        self.process = process
        self.url = url
        self.host, port = url.removeprefix("http://").split(":")
        self.port = int(port)
        self.log_path = log_path

    def request(self, method, path, body=None, headers=None, key=API_KEY, timeout=60):
        headers = dict(headers or {})
        if key is not None:
            headers.setdefault("x-api-key", key)
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        finally:
            connection.close()

    def json(self, method, path, body=None, headers=None, key=API_KEY):
        status, headers, data = self.request(method, path, body, headers, key)
        return status, json.loads(data) if data else None

    def workers(self) -> set[int]:
        return children(self.process.pid)


def start_server(tmp_path: Path, model_dir: Path, workers: int = 2, extra_env: dict | None = None) -> Server:
    log_path = tmp_path / "serve.log"
    env = dict(os.environ, HEMATOVISION_MODEL_DIR=str(model_dir), **(extra_env or {}))
    env.pop("HEMATOVISION_API_KEYS", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hematovision.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--workers",
            str(workers),
            "--api-key",
            API_KEY,
        ],
        cwd=ROOT,
        env=env,
        stdout=open(log_path, "wb"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.time() + 90
    url = None
    while time.time() < deadline:
        text = log_path.read_text(errors="replace")
        found = re.search(r"Listening on (http://127\.0\.0\.1:\d+)", text)
        if found:
            url = found.group(1)
            break
        if process.poll() is not None:
            raise AssertionError(f"hematovision serve exited with {process.returncode}:\n{text[-3000:]}")
        time.sleep(0.1)
    if url is None:
        process.kill()
        raise AssertionError(
            "hematovision serve did not start in 90 s:\n" + log_path.read_text(errors="replace")[-3000:]
        )
    server = Server(process, url, log_path)
    for _ in range(100):
        try:
            if server.request("GET", "/health", key=None, timeout=5)[0] == 200:
                return server
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("/health never answered 200")


def stop_server(server: Server, sig=signal.SIGINT) -> int:
    workers = server.workers()
    if server.process.poll() is None:
        server.process.send_signal(sig)
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=5)
            raise AssertionError("hematovision serve did not stop within 20 s of " + sig.name)
    time.sleep(0.2)
    leftover = {
        pid
        for pid in workers
        if Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    }
    assert not leftover, f"worker processes survived the server: {leftover}"
    return server.process.returncode


def serving(tmp_path_factory, model_dir, **options):
    """Fixture body: a server for the module, stopped (cleanly, or the test fails) afterwards."""
    server = start_server(tmp_path_factory.mktemp("serve"), model_dir, **options)
    yield server
    assert stop_server(server) == 0, server.log_path.read_text(errors="replace")[-3000:]
