"""Helpers for the integration tests: start/stop `hematovision serve` on a free loopback port, CI-aware skips."""

import os
import signal
import time
from pathlib import Path

from hematovision.local import serve_process
from hematovision.local.serve_process import ServeProcess
from tests.ci import IN_CI, require  # noqa: F401  (the integration tests import them from here too)

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
API_KEY = "integration-test-key"
REAL_MODEL_DIR = ROOT / "functions" / "classifier" / "model"
SHARED_DATA = ROOT.parent / "shared" / "data"


Server = ServeProcess  # the integration tests' name for it


def start_server(tmp_path: Path, model_dir: Path, workers: int = 2, extra_env: dict | None = None) -> Server:
    return serve_process.start(
        model_dir,
        tmp_path / "serve.log",
        API_KEY,
        workers=workers,
        env=dict(os.environ, **(extra_env or {})),
        cwd=ROOT,
        timeout=90,
    )


def stop_server(server: Server, sig=signal.SIGINT) -> int:
    """Stop the server; fails the test if it does not stop in time or leaves a worker process behind."""
    workers = server.workers()
    try:
        code = server.stop(sig)
    except serve_process.ServeError as error:
        raise AssertionError(str(error)) from None
    time.sleep(0.2)
    leftover = {
        pid
        for pid in workers
        if Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    }
    assert not leftover, f"worker processes survived the server: {leftover}"
    return code


def serving(tmp_path_factory, model_dir, **options):
    """Fixture body: a server for the module, stopped (cleanly, or the test fails) afterwards."""
    server = start_server(tmp_path_factory.mktemp("serve"), model_dir, **options)
    yield server
    assert stop_server(server) == 0, server.log_path.read_text(errors="replace")[-3000:]
