"""Integration fixtures (the shared ones live in tests/conftest.py): `hematovision serve` on a free loopback port."""

import pytest

from tests.integration.serve_helpers import serving


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_model_dir):
    yield from serving(tmp_path_factory, fake_model_dir)
