"""The local Lambda Runtime API with real awslambdaric workers: responses, function errors, crashes, timeouts,
init errors."""

import contextlib
import json
import os
import textwrap

import pytest

from hematovision.local.runtime import WorkerPool

HANDLER = textwrap.dedent(
    """
    import json, os, time
    if os.environ.get("FAIL_INIT"):
        raise RuntimeError("init failed on purpose")

    def handler(event, context):
        action = event.get("action")
        if action == "exit":
            os._exit(3)
        if action == "raise":
            raise ValueError("function error on purpose")
        if action == "sleep":
            time.sleep(event["seconds"])
        return {"statusCode": 200, "body": json.dumps({
            "pid": os.getpid(), "request_id": context.aws_request_id,
            "remaining_ms": context.get_remaining_time_in_millis(), "echo": event.get("echo")})}
    """
)


@contextlib.contextmanager
def running_pool(tmp_path, workers=1, timeout=2.0, **env):
    """A started pool whose task root is tmp_path (holding probe.py), stopped on exit."""
    (tmp_path / "probe.py").write_text(HANDLER, encoding="utf-8")
    # tmp_path plays Lambda's /var/task, which Lambda puts on its workers' import path
    environment = dict(os.environ, PYTHONPATH=str(tmp_path), **env)
    with open(tmp_path / "workers.log", "wb") as log:  # every worker the pool (re)spawns writes here
        pool = WorkerPool(workers, "probe.handler", tmp_path, environment, function_timeout=timeout, worker_output=log)
        pool.start()
        try:
            yield pool
        finally:
            pool.stop()


def invoke(pool, event, timeout=20):
    result = pool.invoke(json.dumps(event).encode(), timeout)
    body = json.loads(result.body) if result.body else None
    return result, body


@pytest.fixture
def pool(tmp_path):
    with running_pool(tmp_path) as pool:
        assert pool.wait_ready(30), (tmp_path / "workers.log").read_text()
        yield pool


def test_response_and_context(pool):
    result, body = invoke(pool, {"echo": "é\u2603"})
    assert result.kind == "response"
    payload = json.loads(body["body"])
    assert payload["echo"] == "é\u2603" and payload["request_id"] and 0 < payload["remaining_ms"] <= 2000


def test_function_error(pool):
    result, body = invoke(pool, {"action": "raise"})
    assert result.kind == "error" and body["errorType"] == "ValueError"
    assert invoke(pool, {})[0].kind == "response"


def test_crash_then_respawn(pool):
    first = json.loads(invoke(pool, {})[1]["body"])["pid"]
    result, _ = invoke(pool, {"action": "exit"})
    assert result.kind == "died"
    result, body = invoke(pool, {})
    assert result.kind == "response" and json.loads(body["body"])["pid"] != first


def test_timeout_kills_the_environment(pool):
    result, _ = invoke(pool, {"action": "sleep", "seconds": 30})
    assert result.kind == "timeout"
    assert invoke(pool, {})[0].kind == "response"


def test_init_error_is_reported(tmp_path):
    with running_pool(tmp_path, FAIL_INIT="1") as pool:
        result, _ = invoke(pool, {}, timeout=3)
        assert result.kind == "gateway_timeout"  # no environment ever becomes ready
        assert any("init failed on purpose" in e for e in pool.init_errors())
