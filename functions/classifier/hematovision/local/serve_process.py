"""`hematovision serve` as a child process on a free loopback port: start it, wait until it answers, stop it.

One launcher for everything that needs a real local server: `python -m hematovision.local.bench`, the
throughput benchmark (bench/throughput.py) and the integration, browser and hardening tests.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

HOST = "127.0.0.1"  # never another address: the dev server is not meant to be reachable from the network
LISTENING = re.compile(r"Listening on (http://127\.0\.0\.1:(\d+))")
OWN_KEY = object()  # request(key=...) default: the server's own key ("" and None are meaningful values)


class ServeError(RuntimeError):
    """The server did not start, did not become healthy, or did not stop when asked."""


def children(pid: int) -> set[int]:
    """Direct child processes of `pid` (the server's workers), from /proc."""
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):  # the task ended meanwhile
            found |= {int(p) for p in (task / "children").read_text().split()}
    return found


class ServeProcess:
    """A running `hematovision serve`: its process, URL, log file and the API key it accepts."""

    def __init__(self, process: subprocess.Popen, url: str, log_path: Path, api_key: str):
        self.process = process
        self.url = url
        self.host, port = url.removeprefix("http://").split(":")
        self.port = int(port)
        self.log_path = Path(log_path)
        self.api_key = api_key

    def request(self, method, path, body=None, headers=None, key=OWN_KEY, timeout: float = 60):
        """(status, lower-cased headers, body bytes). `key` defaults to the server's key; None sends none."""
        headers = dict(headers or {})
        key = self.api_key if key is OWN_KEY else key
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

    def json(self, method, path, body=None, headers=None, key=OWN_KEY):
        status, _, data = self.request(method, path, body, headers, key)
        return status, json.loads(data) if data else None

    def workers(self) -> set[int]:
        return children(self.process.pid)

    def log_tail(self, chars: int = 3000) -> str:
        return _tail(self.log_path, chars)

    def stop(self, sig: signal.Signals = signal.SIGINT, timeout: float = 20) -> int:
        """Send `sig` and wait; kill it (and raise ServeError) if it has not stopped within `timeout` s."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
                raise ServeError(f"hematovision serve did not stop within {timeout:.0f} s of {sig.name}") from None
        return self.process.returncode


def start(
    model_dir: str | os.PathLike[str] | None,
    log_path: str | os.PathLike[str],
    api_key: str,
    *,
    workers: int = 2,
    python: str | os.PathLike[str] = sys.executable,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    quiet: bool = False,
    timeout: float = 120,
    extra_args: list[str] | tuple[str, ...] = (),
) -> ServeProcess:
    """Start `python -m hematovision.cli serve` on HOST with a free port, accepting only `api_key`; return once
    it prints its URL and GET /health answers 200. Its stdout and stderr go to `log_path`.

    `env` is the child's whole environment (default: this process's); `model_dir` (when given) overrides its
    HEMATOVISION_MODEL_DIR, and HEMATOVISION_API_KEYS is dropped so that `api_key` is the only key. `extra_args`
    are more `serve` options (e.g. ["--memory-mb", "1024"])."""
    log_path = Path(log_path)
    environment = dict(os.environ if env is None else env)
    environment.pop("HEMATOVISION_API_KEYS", None)
    if model_dir is not None:
        environment["HEMATOVISION_MODEL_DIR"] = str(Path(model_dir).resolve())
    command = [str(python), "-m", "hematovision.cli", "serve", "--host", HOST, "--port", "0"]
    command += ["--workers", str(workers), "--api-key", api_key] + (["--quiet"] if quiet else []) + list(extra_args)
    with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            command, cwd=cwd, env=environment, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    deadline = time.monotonic() + timeout
    url = None
    while url is None:
        found = LISTENING.search(log_path.read_text(errors="replace"))
        if found:
            url = found.group(1)
        elif process.poll() is not None:
            raise ServeError(f"hematovision serve exited with {process.returncode}:\n{_tail(log_path)}")
        elif time.monotonic() > deadline:
            _kill(process)
            raise ServeError(f"hematovision serve did not start within {timeout:.0f} s:\n{_tail(log_path)}")
        else:
            time.sleep(0.1)
    server = ServeProcess(process, url, log_path, api_key)
    healthy_by = time.monotonic() + 10
    while time.monotonic() < healthy_by:
        try:
            if server.request("GET", "/health", key=None, timeout=5)[0] == 200:
                return server
        except OSError:
            pass
        time.sleep(0.1)
    _kill(process)
    raise ServeError(f"GET /health never answered 200:\n{_tail(log_path)}")


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def _kill(process: subprocess.Popen) -> None:
    process.kill()
    process.wait(timeout=10)
