"""Unit-test fixtures: a random-weights stand-in model (tests/fakes.py) behind HEMATOVISION_MODEL_DIR."""

import importlib
import json
import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
EVENTS = ROOT / "events"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import fakes  # noqa: E402


@pytest.fixture(scope="session")
def fake_model_dir(tmp_path_factory):
    return fakes.build_fake_model(tmp_path_factory.mktemp("fake-model"))


@pytest.fixture(scope="session")
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
    function_name = "hematovision-test"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:hematovision-test"
    aws_request_id = "test-invocation-id"
    log_group_name = "/aws/lambda/hematovision-test"
    log_stream_name = "test"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 15000


@pytest.fixture
def context():
    return LambdaContext()


@pytest.fixture
def load_event():
    def load(name: str) -> dict:
        return json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))

    return load
