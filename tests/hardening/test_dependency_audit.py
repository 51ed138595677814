"""pip-audit of the pinned Lambda requirements: fails on a known-vulnerable pin; skips, saying why, when no
vulnerability database is reachable (never a pass without an audit). See tests/hardening/audit.py."""

from __future__ import annotations

import pytest

from tests.hardening import audit


def test_pinned_lambda_requirements_have_no_known_vulnerabilities():
    lines = [line.split("#")[0].strip() for line in audit.REQUIREMENTS.read_text().splitlines()]
    pins = [line for line in lines if line]
    assert pins and all("==" in p for p in pins), f"every Lambda requirement must be pinned: {pins}"
    verdict = audit.run()
    print("\n" + verdict.summary())
    if verdict.status == "unreachable":
        pytest.skip(verdict.summary())
    assert verdict.status == "clean", verdict.summary()
    assert len(verdict.audited) == len(pins)


# the verdict logic, on pip-audit's JSON report format (no network involved)
def test_verdict_on_a_vulnerable_pin():
    report = {
        "dependencies": [
            {"name": "pillow", "version": "9.0.0", "vulns": [{"id": "PYSEC-2022-10", "fix_versions": ["9.0.1"]}]},
            {"name": "numpy", "version": "2.4.6", "vulns": []},
        ]
    }
    verdict = audit.judge(report, "pypi")
    assert verdict.status == "vulnerable" and verdict.vulnerable == {"pillow==9.0.0": ["PYSEC-2022-10"]}
    assert "PYSEC-2022-10" in verdict.summary()


def test_verdict_when_every_pin_was_skipped_is_not_a_pass():
    """Only PyPI's simple index reachable: pip-audit says 'No known vulnerabilities found' having audited nothing."""
    report = {
        "dependencies": [
            {"name": n, "skip_reason": f"Dependency not found on PyPI and could not be audited: {n}"}
            for n in ("pillow", "numpy")
        ],
        "fixes": [],
    }
    assert audit.judge(report, "pypi").status == "unreachable"
    report["dependencies"].append({"name": "pydantic", "version": "2.14.3", "vulns": []})
    assert audit.judge(report, "pypi").status == "incomplete"


def test_verdict_clean():
    verdict = audit.judge({"dependencies": [{"name": "numpy", "version": "2.4.6", "vulns": []}]}, "osv")
    assert verdict.status == "clean" and verdict.audited == ["numpy==2.4.6"]
