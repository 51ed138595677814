"""Integration fixtures: `hematovision serve` as a subprocess on a free loopback port, with an explicit key."""

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for path in (HERE, HERE.parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import fakes  # noqa: E402
from serve_helpers import start_server, stop_server  # noqa: E402


@pytest.fixture(scope="session")
def fake_model_dir(tmp_path_factory):
    return fakes.build_fake_model(tmp_path_factory.mktemp("fake-model"))


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_model_dir):
    server = start_server(tmp_path_factory.mktemp("serve"), fake_model_dir)
    yield server
    assert stop_server(server) == 0, server.log_path.read_text(errors="replace")[-3000:]
