"""Fixtures shared by every test folder: the random-weights stand-in model and a Lambda context.

tests/ is a package: helpers are imported as `from tests import fakes`, `from tests.integration.serve_helpers
import ...` (pytest puts the repository root, the folder above the outermost package, on the path)."""

import pytest

from tests import fakes


@pytest.fixture(scope="session")
def fake_model_dir(tmp_path_factory):
    return fakes.build_fake_model(tmp_path_factory.mktemp("fake-model"))


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
