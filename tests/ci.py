"""The skip-or-fail rule of every test that needs something outside the repository (../shared, the trained model,
a tool): skipped with its reason on a developer's machine, a failure in CI (CI=true), where everything must run."""

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, reason: str) -> None:
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: required, not skipped)")
    pytest.skip(reason)
