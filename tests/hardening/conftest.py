"""Hardening fixtures: the random-weights stand-in model, the handler module loaded with it, one server per module."""

import importlib
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for path in (HERE, HERE.parent, HERE.parent / "integration"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import fakes  # noqa: E402
from serve_helpers import start_server, stop_server  # noqa: E402


@pytest.fixture(scope="session")
def fake_model_dir(tmp_path_factory):
    return fakes.build_fake_model(tmp_path_factory.mktemp("fake-model"))


@pytest.fixture(scope="module")
def api(fake_model_dir):
    """hematovision.handlers.api with the fake model loaded at import, as in a Lambda init."""
    previous = os.environ.get("HEMATOVISION_MODEL_DIR")
    os.environ["HEMATOVISION_MODEL_DIR"] = str(fake_model_dir)
    module = sys.modules.get("hematovision.handlers.api")
    module = importlib.reload(module) if module else importlib.import_module("hematovision.handlers.api")
    yield module
    if previous is None:
        os.environ.pop("HEMATOVISION_MODEL_DIR", None)
    else:
        os.environ["HEMATOVISION_MODEL_DIR"] = previous


class LambdaContext:
    function_name = "hematovision-hardening"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:hematovision-hardening"
    aws_request_id = "hardening-invocation-id"
    log_group_name = "/aws/lambda/hematovision-hardening"
    log_stream_name = "hardening"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 15000


@pytest.fixture
def context():
    return LambdaContext()


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_model_dir):
    """`hematovision serve` with the fake model, 2 workers, its log (server + workers' stdout) in server.log_path."""
    server = start_server(tmp_path_factory.mktemp("serve"), fake_model_dir, workers=2)
    yield server
    assert stop_server(server) == 0, server.log_path.read_text(errors="replace")[-3000:]
