"""Hardening fixtures (the shared ones live in tests/conftest.py): the handler module and one server per module."""

import pytest

from tests.fakes import load_handler_module
from tests.integration.serve_helpers import serving


@pytest.fixture(scope="module")
def api(fake_model_dir):
    """hematovision.handlers.api with the fake model loaded at import, as in a Lambda init."""
    yield from load_handler_module(fake_model_dir)


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_model_dir):
    """`hematovision serve` with the fake model, 2 workers, its log (server + workers' stdout) in server.log_path."""
    yield from serving(tmp_path_factory, fake_model_dir, workers=2)
