"""The real linters, offline: `sam validate --lint` and cfn-lint on every template, zero findings."""

from __future__ import annotations

import pytest

from tests.infrastructure.infra_helpers import ROOT, TEMPLATE, all_template_paths, run_tool


def test_sam_validate_lint(sam):
    proc = run_tool([sam, "validate", "--lint", "--template-file", TEMPLATE])
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "is a valid SAM Template" in output, output


@pytest.mark.parametrize("config_env", ["dev", "prod"])
def test_sam_validate_with_each_config_env(sam, config_env):
    proc = run_tool([sam, "validate", "--lint", "--config-env", config_env, "--template-file", TEMPLATE])
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", all_template_paths(), ids=lambda p: str(p.relative_to(ROOT)))
def test_cfn_lint_zero_findings(cfn_lint, path):
    # every rule on (informational ones included): no finding of any level may be left
    proc = run_tool([cfn_lint, "--include-checks", "I", "--", path])
    assert proc.returncode == 0 and not proc.stdout.strip(), f"cfn-lint {path.name}:\n{proc.stdout}{proc.stderr}"


def test_sam_validate_translates(sam, tmp_path):
    """Plain `sam validate` runs the SAM translator (which --lint and cfn-lint 1.x do not)."""
    config = tmp_path / "samconfig.toml"
    config.write_text("version = 0.1\n")  # no `lint = true` from the repository's samconfig
    proc = run_tool([sam, "validate", "--config-file", config, "--template-file", TEMPLATE])
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "valid SAM Template. This is according to basic SAM Validation" in output, output


def test_cfn_lint_translated_template(cfn_lint, translated):
    # errors and warnings only: SAM's generated resources carry informational findings of their own
    # (hard-coded "arn:aws" partitions in the permissions it writes)
    proc = run_tool([cfn_lint, "--", translated])
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr
