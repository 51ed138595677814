"""Unit-test fixtures (the shared ones live in tests/conftest.py): the handler with the stand-in model, events."""

import json
from pathlib import Path

import pytest

from tests.fakes import load_handler_module

EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.fixture(scope="session")
def api(fake_model_dir):
    """hematovision.handlers.api with the fake model loaded at import, as in a Lambda init."""
    yield from load_handler_module(fake_model_dir)


@pytest.fixture
def load_event():
    def load(name: str) -> dict:
        return json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))

    return load
