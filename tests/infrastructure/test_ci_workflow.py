"""The CI/CD pipeline (.github/workflows/deploy.yml): linted offline by actionlint, and its shape - test, build, deploy
dev, smoke dev, approval, deploy prod - with AWS access by OIDC role assumption only."""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

from tests.infrastructure.infra_helpers import IN_CI, ROOT, TOOLS_BIN

WORKFLOWS = ROOT / ".github" / "workflows"
DEPLOY = WORKFLOWS / "deploy.yml"
ACTIONLINT = TOOLS_BIN / "actionlint"


@pytest.fixture(scope="module")
def actionlint():
    if not ACTIONLINT.exists():
        reason = (
            f"{ACTIONLINT.relative_to(ROOT)} missing - run `make tools-venv` (requirements-tools.txt pins the "
            "actionlint wheel)"
        )
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: failing instead of skipping)")
        pytest.skip(reason)
    return ACTIONLINT


def run_actionlint(actionlint, *paths) -> subprocess.CompletedProcess:
    # no shellcheck/pyflakes integration: the result must not depend on what else the machine has on PATH
    return subprocess.run(
        [str(actionlint), "-color=false", "-shellcheck=", "-pyflakes=", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1"},
    )


def test_workflows_lint_clean(actionlint):
    files = sorted(WORKFLOWS.glob("*.y*ml"))
    assert DEPLOY in files
    proc = run_actionlint(actionlint, *files)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_actionlint_finds_real_mistakes(actionlint, tmp_path):
    """The linter is not a no-op: a job needing an unknown job, an unknown context and a missing runs-on are
    reported."""
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: push\n"
        "jobs:\n"
        "  a:\n"
        "    needs: nonexistent\n"
        "    runs-on: ubuntu-24.04\n"
        "    steps:\n"
        "      - run: echo ${{ github.no_such_property }}\n"
        "  b:\n"
        "    steps:\n"
        "      - run: echo hi\n"
    )
    proc = run_actionlint(actionlint, broken)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    for finding in ("nonexistent", "no_such_property", "runs-on"):
        assert finding in proc.stdout, (finding, proc.stdout)


@pytest.fixture(scope="module")
def workflow() -> dict:
    data = yaml.safe_load(DEPLOY.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def needs(job: dict) -> list[str]:
    value = job.get("needs", [])
    return [value] if isinstance(value, str) else value


def test_pipeline_order(workflow):
    jobs = workflow["jobs"]
    assert {name: needs(job) for name, job in jobs.items()} == {
        "test": [],
        "build": ["test"],
        "deploy-dev": ["build"],
        "smoke-dev": ["deploy-dev"],
        "deploy-prod": ["smoke-dev"],
    }
    assert workflow["on"]["push"]["branches"] == ["main"]
    # prod waits for an approval: the prod environment (required reviewers are set on it in GitHub)
    assert jobs["deploy-prod"]["environment"] == "prod" and jobs["deploy-dev"]["environment"] == "dev"


def steps_text(job: dict) -> str:
    return "\n".join(str(step.get("run", "")) + str(step.get("uses", "")) for step in job["steps"])


def test_deploys_use_oidc_and_samconfig(workflow):
    assert workflow["permissions"] == {"contents": "read"}, "least privilege by default"
    for name, job in workflow["jobs"].items():
        uses_aws = any("configure-aws-credentials" in str(step.get("uses", "")) for step in job["steps"])
        # only the jobs that assume a role may request GitHub's OIDC token
        assert (job.get("permissions", {}).get("id-token") == "write") is uses_aws, name
        for step in job["steps"]:
            if "configure-aws-credentials" in str(step.get("uses", "")):
                inputs = step["with"]
                assert inputs["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}", name
                assert not {"aws-access-key-id", "aws-secret-access-key"} & set(inputs), f"{name}: no stored keys"
    for env in ("dev", "prod"):
        text = steps_text(workflow["jobs"][f"deploy-{env}"])
        assert f"sam deploy --config-env {env}" in text
        # the build job's artifact, not a rebuild: prod gets what dev's smoke test passed
        assert "actions/download-artifact" in text and "sam build" not in text and "make build" not in text
    assert "make build" in steps_text(workflow["jobs"]["build"])
    assert "make smoke" in steps_text(workflow["jobs"]["smoke-dev"])
    assert "make smoke" in steps_text(workflow["jobs"]["deploy-prod"])
    assert "make lint" in steps_text(workflow["jobs"]["test"])
