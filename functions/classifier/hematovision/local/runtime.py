"""A local implementation of the Lambda Runtime API, and worker processes running AWS's `awslambdaric`.

Each worker is one execution environment: a `python -m awslambdaric <handler>` process with
AWS_LAMBDA_RUNTIME_API pointing at its own loopback endpoint served here, so init, invocation,
serialisation and error reporting go through AWS's real runtime interface client.
Implemented endpoints (2018-06-01): GET runtime/invocation/next, POST runtime/invocation/{id}/response,
POST runtime/invocation/{id}/error, POST runtime/init/error.
A worker that exits is respawned; the invocation it held fails like a crashed Lambda environment.
A running invocation past the function timeout has its worker killed, as Lambda does.
At most `max_queue` invocations wait for a free worker; more are refused ("throttled", a 429 at the gateway).
With a MemoryLimit each worker runs in its own memory cgroup of the function's size, so a worker that goes over
it is killed by the kernel, as Lambda ends an environment out of memory (the request gets a 502).
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

log = logging.getLogger("hematovision.local")

RUNTIME_PREFIX = "/2018-06-01/runtime"
MAX_RESPONSE_BYTES = 6 * 1024 * 1024 + 100  # Lambda's synchronous response limit (6 MiB + 100 B)


@dataclass
class Result:
    kind: str  # "response" | "error" | "died" | "timeout" | "gateway_timeout" | "too_large" | "throttled"
    body: bytes = b""
    detail: str = ""


class Invocation:
    def __init__(self, payload: bytes, trace_id: str | None = None):
        self.id = str(uuid.uuid4())
        self.payload = payload
        self.trace_id = trace_id or f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0"
        self.started: float | None = None
        self.result: Result | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()

    def finish(self, result: Result) -> bool:
        with self._lock:
            if self.result is not None:
                return False
            self.result = result
        self._done.set()
        return True

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)


class InvocationQueue:
    """FIFO with put-back-to-front and removal (a cancelled invocation must never start), bounded for new work."""

    def __init__(self, capacity: int | None = None):
        self._items: collections.deque[Invocation] = collections.deque()
        self._cond = threading.Condition()
        self.capacity = capacity

    def put(self, item: Invocation, front: bool = False) -> bool:
        """False (and not queued) when the queue is at capacity; an invocation put back (front) always fits."""
        with self._cond:
            if not front and self.capacity is not None and len(self._items) >= self.capacity:
                return False
            (self._items.appendleft if front else self._items.append)(item)
            self._cond.notify()
            return True

    def get(self, timeout: float) -> Invocation | None:
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            return self._items.popleft() if self._items else None

    def remove(self, item: Invocation) -> bool:
        with self._cond:
            try:
                self._items.remove(item)
                return True
            except ValueError:
                return False

    def __len__(self) -> int:
        return len(self._items)


class _RuntimeApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LocalLambdaRuntimeAPI/1.0"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid delayed-ACK stalls
    worker: Worker  # set on the per-worker subclass

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        log.debug("runtime-api[%s] " + format, self.worker.index, *args)

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", (headers or {}).get("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _peer_closed(self) -> bool:
        """True when the awslambdaric process has gone: its end of the long-poll connection is closed."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def do_GET(self):  # noqa: N802
        if self.path == f"{RUNTIME_PREFIX}/invocation/next":
            invocation = self.worker.next_invocation()
            if invocation is None:  # worker gone or server stopping: drop the connection
                self.close_connection = True
                return
            if self._peer_closed():  # the process died while waiting (killed while idle): give the work to another
                self.close_connection = True
                self.worker.invocation_lost(invocation)
                return
            deadline_ms = int((invocation.started + self.worker.pool.function_timeout) * 1000)
            try:
                self._reply(
                    200,
                    invocation.payload,
                    {
                        "Lambda-Runtime-Aws-Request-Id": invocation.id,
                        "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                        "Lambda-Runtime-Invoked-Function-Arn": self.worker.pool.function_arn,
                        "Lambda-Runtime-Trace-Id": invocation.trace_id,
                        "Content-Type": "application/json",
                    },
                )
            except OSError:
                self.worker.invocation_lost(invocation)
            return
        self._reply(404, b'{"errorMessage":"unknown runtime API path","errorType":"InvalidRequest"}')

    def do_POST(self):  # noqa: N802
        body = self._read_body()
        path = self.path
        if path == f"{RUNTIME_PREFIX}/init/error":
            self.worker.init_failed(body, self.headers.get("Lambda-Runtime-Function-Error-Type", ""))
            self._reply(202, b'{"status":"OK"}')
            return
        prefix = f"{RUNTIME_PREFIX}/invocation/"
        if path.startswith(prefix):
            request_id, _, action = path[len(prefix) :].partition("/")
            if action in ("response", "error"):
                if action == "response" and len(body) > MAX_RESPONSE_BYTES:
                    result = Result("too_large", detail=f"response of {len(body)} bytes exceeds {MAX_RESPONSE_BYTES}")
                elif action == "response":
                    result = Result("response", body)
                else:
                    result = Result("error", body, self.headers.get("Lambda-Runtime-Function-Error-Type", ""))
                if self.worker.complete(request_id, result):
                    self._reply(202, b'{"status":"OK"}')
                else:
                    self._reply(400, b'{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}')
                return
        self._reply(404, b'{"errorMessage":"unknown runtime API path","errorType":"InvalidRequest"}')


class MemoryLimit:
    """Each worker process capped at `megabytes`, like a Lambda of that MemorySize.

    A memory cgroup per worker: cgroup v1 (`/sys/fs/cgroup/memory/<name>/memory.limit_in_bytes`, swap included
    when the kernel accounts it), else cgroup v2 (`/sys/fs/cgroup/<name>/memory.max`, no swap). Both need root
    (or a delegated cgroup). Without either, RLIMIT_AS: a cap on address space, not on resident memory, so much
    looser than Lambda's (onnxruntime and numpy reserve far more address space than they touch) - `kind` says which.
    """

    V1 = Path("/sys/fs/cgroup/memory")
    V2 = Path("/sys/fs/cgroup")

    def __init__(self, megabytes: int, name: str | None = None):
        self.megabytes = int(megabytes)
        self.bytes = self.megabytes * 1024 * 1024
        self.name = name or f"hematovision-local-{os.getpid()}"
        self.kind = self._probe()
        self._groups: dict[int, Path] = {}

    def _probe(self) -> str:
        if (self.V1 / "memory.limit_in_bytes").exists() and os.access(self.V1, os.W_OK):
            return "cgroup-v1"
        controllers = self.V2 / "cgroup.controllers"
        if controllers.exists() and "memory" in controllers.read_text().split() and os.access(self.V2, os.W_OK):
            return "cgroup-v2"
        return "rlimit-as"

    def describe(self) -> str:
        where = {"cgroup-v1": "a cgroup v1 memory limit", "cgroup-v2": "a cgroup v2 memory.max"}
        return f"{self.megabytes} MB ({where.get(self.kind, 'RLIMIT_AS, address space only: no cgroup available')})"

    def group(self, index: int) -> Path | None:
        return self._groups.get(index)

    def _create(self, index: int) -> Path:
        group = self._groups.get(index)
        if group is not None:
            return group
        if self.kind == "cgroup-v1":
            group = self.V1 / f"{self.name}-w{index}"
            group.mkdir(exist_ok=True)
            (group / "memory.limit_in_bytes").write_text(str(self.bytes))
            swap = group / "memory.memsw.limit_in_bytes"
            if swap.exists():
                with contextlib.suppress(OSError):
                    swap.write_text(str(self.bytes))
        else:
            subtree = self.V2 / "cgroup.subtree_control"
            if "memory" not in subtree.read_text().split():
                subtree.write_text("+memory")
            group = self.V2 / f"{self.name}-w{index}"
            group.mkdir(exist_ok=True)
            (group / "memory.max").write_text(str(self.bytes))
            with contextlib.suppress(OSError):
                (group / "memory.swap.max").write_text("0")
        self._groups[index] = group
        return group

    def attach(self, pid: int, index: int) -> None:
        """Put the (just started) worker process `pid` under the limit."""
        if self.kind == "rlimit-as":
            import resource

            resource.prlimit(pid, resource.RLIMIT_AS, (self.bytes, self.bytes))
            return
        (self._create(index) / "cgroup.procs").write_text(str(pid))

    def peak_bytes(self, index: int) -> int | None:
        """The cgroup's peak memory usage (v1 max_usage_in_bytes, v2 memory.peak) since creation or reset."""
        group = self._groups.get(index)
        for name in ("memory.max_usage_in_bytes", "memory.peak"):
            if group is not None and (group / name).exists():
                return int((group / name).read_text().split()[0])
        return None

    def release(self) -> None:
        """Remove the cgroups (their processes have exited)."""
        for group in self._groups.values():
            for _ in range(20):
                try:
                    group.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # a process still being reaped
                    time.sleep(0.05)
        self._groups.clear()


class Worker:
    """One execution environment: a runtime-API endpoint and the awslambdaric process polling it."""

    def __init__(self, pool: WorkerPool, index: int):
        self.pool = pool
        self.index = index
        handler = type(f"RuntimeApiHandler{index}", (_RuntimeApiHandler,), {"worker": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.address = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.process: subprocess.Popen | None = None
        self.generation = 0
        self.alive = False
        self.current: Invocation | None = None
        self.ready = threading.Event()  # set when the process first asks for an invocation (init done)
        self.init_error: str | None = None
        self.spawned_at = 0.0
        self.restarts = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # -- runtime API callbacks (HTTP threads)
    def next_invocation(self) -> Invocation | None:
        with self._lock:
            generation = self.generation
        self.ready.set()
        while not self.pool.stopping:
            with self._lock:
                if generation != self.generation or not self.alive:
                    return None
            invocation = self.pool.queue.get(timeout=0.25)
            if invocation is None:
                continue
            with self._lock:
                if generation == self.generation and self.alive and invocation.result is None:
                    invocation.started = time.time()
                    self.current = invocation
                    return invocation
            if invocation.result is None:
                self.pool.queue.put(invocation, front=True)
            return None
        return None

    def invocation_lost(self, invocation: Invocation) -> None:
        with self._lock:
            if self.current is invocation:
                self.current = None
        if invocation.result is None:
            self.pool.queue.put(invocation, front=True)

    def complete(self, request_id: str, result: Result) -> bool:
        with self._lock:
            invocation = self.current
            if invocation is None or invocation.id != request_id:
                return False
            self.current = None
        invocation.finish(result)
        return True

    def init_failed(self, body: bytes, error_type: str) -> None:
        try:
            detail = json.loads(body)
            message = f"{detail.get('errorType', error_type)}: {detail.get('errorMessage', '')}"
        except ValueError:
            message = error_type or "init error"
        self.init_error = message
        log.error("worker %d: init failed: %s", self.index, message)

    # -- process management
    def _env(self) -> dict[str, str]:
        env = dict(self.pool.environment)
        env["AWS_LAMBDA_RUNTIME_API"] = self.address
        return env

    def _spawn(self) -> None:
        with self._lock:
            self.generation += 1
            self.alive = True
        self.spawned_at = time.time()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "awslambdaric", self.pool.handler],
            env=self._env(),
            cwd=str(self.pool.task_root),
            stdin=subprocess.DEVNULL,
            stdout=self.pool.worker_output,
            stderr=self.pool.worker_output,
            start_new_session=True,  # Ctrl-C goes to the server, which stops the workers itself
        )
        if self.pool.memory_limit is not None:
            try:
                self.pool.memory_limit.attach(self.process.pid, self.index)
            except OSError as error:  # refuse to run unlimited when a limit was asked for
                log.error("worker %d: cannot apply the memory limit: %s", self.index, error)
                self.kill()

    def _on_exit(self, code: int) -> None:
        with self._lock:
            self.alive = False
            invocation, self.current = self.current, None
        if invocation is not None:
            timed_out = (
                invocation.started is not None and time.time() - invocation.started >= self.pool.function_timeout
            )
            invocation.finish(Result("timeout" if timed_out else "died", detail=f"worker exited with {code}"))
        if not self.pool.stopping:
            log.warning(
                "worker %d (pid %s) exited with %s%s; respawning",
                self.index,
                self.process.pid if self.process else "?",
                code,
                " while handling a request" if invocation is not None else "",
            )

    def _supervise(self) -> None:
        failures = 0
        while not self.pool.stopping:
            self._spawn()
            while not self.pool.stopping:
                try:
                    code = self.process.wait(timeout=0.25)
                    break
                except subprocess.TimeoutExpired:
                    pass
                with self._lock:
                    current = self.current
                if (
                    current is not None
                    and current.started
                    and time.time() - current.started > self.pool.function_timeout
                ):
                    log.warning(
                        "worker %d: invocation %s timed out after %ss; killing the environment",
                        self.index,
                        current.id,
                        self.pool.function_timeout,
                    )
                    self.kill()
            else:
                break
            self._on_exit(code)
            self.restarts += 1
            # back off when the environment cannot even initialise (e.g. no model), like Lambda retrying init
            failures = failures + 1 if time.time() - self.spawned_at < 5 else 0
            if failures:
                time.sleep(min(0.2 * 2**failures, 5.0))
        self._terminate()
        self._on_exit(-1)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.process.kill()

    def _terminate(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            self.process.terminate()
        try:
            self.process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self.kill()
            self.process.wait(timeout=3)

    def start(self) -> None:
        for target, name in ((self.httpd.serve_forever, "runtime-api"), (self._supervise, "supervisor")):
            thread = threading.Thread(target=target, name=f"worker{self.index}-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._terminate()
        self.httpd.shutdown()
        self.httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=5)


class WorkerPool:
    def __init__(
        self,
        workers: int,
        handler: str,
        task_root: Path,
        environment: dict[str, str],
        function_timeout: float = 30.0,
        function_name: str = "hematovision-local-classifier",
        worker_output=None,
        max_queue: int | None = None,
        memory_limit: MemoryLimit | None = None,
    ):
        self.handler = handler
        self.task_root = task_root
        self.function_timeout = float(function_timeout)
        self.function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.environment = environment
        self.worker_output = worker_output
        self.queue = InvocationQueue(max_queue)
        self.memory_limit = memory_limit
        self.stopping = False
        self.workers = [Worker(self, i) for i in range(max(1, workers))]

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def wait_ready(self, timeout: float, cancel: threading.Event | None = None) -> bool:
        """True once every worker has initialised; False on timeout, on an init error or when cancelled."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if all(w.ready.is_set() for w in self.workers):
                return True
            if self.init_errors() or (cancel is not None and cancel.is_set()):
                return False
            time.sleep(0.05)
        return False

    def init_errors(self) -> list[str]:
        return [w.init_error for w in self.workers if w.init_error]

    def invoke(self, payload: bytes, timeout: float) -> Result:
        """Run one invocation on the next free worker; `timeout` is the caller's (API Gateway's) limit."""
        invocation = Invocation(payload)
        if not self.queue.put(invocation):
            return Result("throttled", detail=f"{len(self.queue)} requests already wait for a worker")
        if invocation.wait(timeout):
            return invocation.result
        if self.queue.remove(invocation):
            invocation.finish(Result("gateway_timeout", detail="no worker became free in time"))
        else:
            invocation.finish(Result("gateway_timeout", detail="the function did not answer in time"))
        return invocation.result

    def stop(self) -> None:
        self.stopping = True
        threads = [threading.Thread(target=w.stop, daemon=True) for w in self.workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        while True:
            invocation = self.queue.get(timeout=0)
            if invocation is None:
                break
            invocation.finish(Result("died", detail="server stopping"))
        if self.memory_limit is not None:
            self.memory_limit.release()
