"""docs/integrating.md, the integrator guide, run as written (issue #21).

From a fresh clone: the repository is `git clone`d (its committed HEAD) into a temporary folder and the examples run
there, so the guide can only use files a clone has (no ../shared data, no build output, no uncommitted file). The
server and the clients are the installed packages of this checkout (the same commit in CI, which runs on a fresh
clone of main). The guide's text itself is read from
this checkout, so an edit to it is tested before it is committed.

- Every ```sh block, in order, is one bash script (`set -euo pipefail`), run in the clone with HEMATOVISION_URL and
  HEMATOVISION_API_KEY pointing at that server. `curl` is wrapped by a shell function that records each call's
  status and body, and each call must answer 200, or the status and error code its line documents
  (`# -> 403 invalid_api_key`).
- Every ```python block runs on its own, in the clone, with the clone's generated client, and must exit 0.
- The ```ts block is docs/clients/classify.ts, and docs/clients/hematovision.d.ts has the spec's routes, schemas
  and error codes (openapi-typescript's output is checked without Node).

The checker is also run on broken copies of the guide (a wrong route, a wrong documented status) to show it fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from hematovision.local import serve_process
from tests.ci import require
from tests.integration.serve_helpers import API_KEY, ROOT, stop_server

GUIDE = ROOT / "docs" / "integrating.md"
CLIENTS_DOCS = ROOT / "docs" / "clients"
SPEC = ROOT / "clients" / "openapi.json"

# `curl` as the guide's scripts see it: the real curl, its body to a file and its status to another (numbered in
# call order through the `calls` file, since a curl in a pipeline runs in a subshell), then the body on stdout as
# usual, so pipelines such as `curl ... | python3 -c ...` work unchanged.
CURL_RECORDER = r"""
set -euo pipefail
: > "$GUIDE_LOG/calls"
curl() {
  local n
  n=$(( $(wc -l < "$GUIDE_LOG/calls") + 1 ))
  echo "$n" >> "$GUIDE_LOG/calls"
  command curl --show-error -o "$GUIDE_LOG/$n.body" -w '%{http_code}' "$@" > "$GUIDE_LOG/$n.status"
  cat "$GUIDE_LOG/$n.body"
}
"""
EXPECTED = re.compile(r"#\s*->\s*(\d{3})\s+([a-z0-9_]+)\s*$")


def fenced_blocks(markdown: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", markdown, flags=re.S | re.M)


@dataclass
class CurlExample:
    command: str  # one logical line: backslash continuations joined
    status: int
    code: str | None  # the error code the line documents, None for a 200


def curl_examples(script: str) -> list[CurlExample]:
    """The curl commands of the guide's sh blocks, in order, each with the answer it documents (default 200)."""
    examples = []
    for line in script.replace("\\\n", " ").splitlines():
        if not line.strip().startswith("curl "):
            continue
        found = EXPECTED.search(line)
        examples.append(CurlExample(line.strip(), int(found[1]) if found else 200, found[2] if found else None))
    return examples


@dataclass
class Clone:
    root: Path
    env: dict[str, str]  # the environment the examples run in


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Clone:
    require((ROOT / ".git").exists(), "not a git checkout: nothing to clone")
    root = tmp_path_factory.mktemp("fresh") / "hematovision"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(root)], check=True, timeout=120)
    env = dict(os.environ)
    env.pop("HEMATOVISION_MODEL_DIR", None)  # the committed model, found beside the package
    return Clone(root, env)


@pytest.fixture(scope="module")
def server(clone, tmp_path_factory):
    served = serve_process.start(
        None, tmp_path_factory.mktemp("guide-serve") / "serve.log", API_KEY, workers=1, env=clone.env, cwd=clone.root
    )
    yield served
    assert stop_server(served) == 0, served.log_tail()


def run_sh_examples(guide: str, clone: Clone, server, log_dir: Path) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run the guide's sh blocks against `server`; the process and the problems found (empty: all as documented)."""
    script = "\n".join(fenced_blocks(guide, "sh"))
    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(clone.env, HEMATOVISION_URL=server.url, HEMATOVISION_API_KEY=API_KEY, GUIDE_LOG=str(log_dir))
    proc = subprocess.run(
        ["bash", "-c", CURL_RECORDER + script],
        cwd=clone.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    problems = [] if proc.returncode == 0 else [f"the script exited {proc.returncode}: {proc.stderr[-2000:]}"]
    examples = curl_examples(script)
    made = len((log_dir / "calls").read_text().split())
    if made != len(examples):
        problems.append(f"{len(examples)} curl examples in the guide, {made} made")
    for n, example in enumerate(examples[:made], start=1):
        status = int((log_dir / f"{n}.status").read_text() or 0)
        body = (log_dir / f"{n}.body").read_text(errors="replace")
        if status != example.status:
            problems.append(f"{example.command}\n  -> {status} (documented: {example.status}): {body[:300]}")
            continue
        try:
            answer = json.loads(body)
        except ValueError:
            problems.append(f"{example.command}\n  -> not JSON: {body[:300]}")
            continue
        code = answer.get("error", {}).get("code") if isinstance(answer, dict) else None
        if code != example.code:
            problems.append(f"{example.command}\n  -> error code {code!r} (documented: {example.code!r})")
    return proc, problems


def test_the_guide_has_examples_of_success_and_of_errors():
    examples = curl_examples("\n".join(fenced_blocks(GUIDE.read_text(), "sh")))
    routes = {re.search(r"\$URL(/[a-z0-9/.]*)", e.command)[1] for e in examples}
    assert {"/health", "/v1/classify", "/v1/classify/batch", "/v1/analyze", "/v1/model"} <= routes
    assert {e.status for e in examples} >= {200, 403, 413, 415}
    assert not any("-w0" in e.command for e in examples), "base64 -w0 does not exist on macOS"


def test_every_sh_example_answers_as_documented(clone, server, tmp_path):
    proc, problems = run_sh_examples(GUIDE.read_text(), clone, server, tmp_path / "log")
    assert not problems, "\n".join(problems) + "\n" + proc.stdout[-2000:]
    # the real photo is called what the guide says it is
    assert '"label":"NEUTROPHIL"' in proc.stdout.replace(" ", "")


def test_a_wrong_route_or_a_wrong_documented_status_fails_the_check(clone, server, tmp_path):
    guide = GUIDE.read_text()
    wrong_route = guide.replace('"$URL/v1/classify/batch"', '"$URL/v1/classify/batches"', 1)
    assert wrong_route != guide
    _, problems = run_sh_examples(wrong_route, clone, server, tmp_path / "route")
    assert any("/v1/classify/batches" in p and "-> 404" in p for p in problems), problems

    wrong_status = guide.replace(
        '"$URL/v1/model"   # -> 403 invalid_api_key', '"$URL/v1/model"   # -> 401 invalid_api_key'
    )
    assert wrong_status != guide
    _, problems = run_sh_examples(wrong_status, clone, server, tmp_path / "status")
    assert len(problems) == 1 and "-> 403 (documented: 401)" in problems[0], problems


@pytest.mark.parametrize("index", range(len(fenced_blocks(GUIDE.read_text(), "python"))))
def test_every_python_example_runs(clone, server, index):
    block = fenced_blocks(GUIDE.read_text(), "python")[index]
    env = dict(clone.env, HEMATOVISION_URL=server.url, HEMATOVISION_API_KEY=API_KEY)
    proc = subprocess.run(
        [sys.executable, "-c", block], cwd=clone.root, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"{block}\n{proc.stdout}\n{proc.stderr}"


def test_the_typescript_example_is_the_checked_file():
    (block,) = fenced_blocks(GUIDE.read_text(), "ts")
    assert block == (CLIENTS_DOCS / "classify.ts").read_text()


def test_the_typescript_types_follow_the_spec():
    """A change of routes, schemas or error codes in clients/openapi.json needs the .d.ts regenerated
    (docs/clients/README.md says how)."""
    spec = json.loads(SPEC.read_text())
    types = (CLIENTS_DOCS / "hematovision.d.ts").read_text()
    assert types.startswith("/**\n * This file was auto-generated by openapi-typescript.")
    assert set(re.findall(r'^    "(/[^"]*)": \{$', types, flags=re.M)) == set(spec["paths"])
    schemas = types.split("    schemas: {\n", 1)[1].split("\n    };\n", 1)[0]
    assert set(re.findall(r"^        (\w+): ", schemas, flags=re.M)) == set(spec["components"]["schemas"])
    (codes,) = re.findall(r'^        ErrorCode: ((?:"[a-z0-9_]+"(?: \| )?)+);$', types, flags=re.M)
    assert re.findall(r'"([a-z0-9_]+)"', codes) == spec["components"]["schemas"]["ErrorCode"]["enum"]


def deploy_parameters(environment: str) -> dict[str, str]:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    overrides = config[environment]["deploy"]["parameters"]["parameter_overrides"]
    return dict(item.split("=", 1) for item in overrides)


def test_the_guide_quotes_the_deployed_configuration():
    """The tiers, bounds and log retention the guide states are samconfig.toml's (prod, and dev where it says so)."""
    guide = " ".join(GUIDE.read_text().split())  # line breaks inside sentences do not matter
    prod, dev = deploy_parameters("prod"), deploy_parameters("dev")
    assert prod["FreeQuotaPeriod"] == prod["StandardQuotaPeriod"] == "MONTH"
    free = f"| free | evaluation | {int(prod['FreeQuotaLimit']):,} requests a month | "
    free += f"{prod['FreeThrottleRateLimit']} req/s / {prod['FreeThrottleBurstLimit']} |"
    standard = f"| standard | production | {int(prod['StandardQuotaLimit']):,} requests a month | "
    standard += f"{prod['StandardThrottleRateLimit']} req/s / {prod['StandardThrottleBurstLimit']} |"
    for row in (free, standard):
        assert row in guide, row
    assert f"a {int(dev['StandardQuotaLimit']):,} standard quota and a {dev['StageThrottleRateLimit']} req/s" in guide
    assert f"at most {prod['StageThrottleRateLimit']} req/s (burst {prod['StageThrottleBurstLimit']})" in guide
    assert f"at most {int(prod['WafRateLimitPerIp']):,} requests per 5 minutes" in guide
    assert f"runs at most {prod['ReservedConcurrency']} requests at once" in guide
    retry_after = prod["RetryAfterSeconds"]
    for code in ("throttled", "service_unavailable", "bad_gateway", "gateway_timeout"):
        assert re.search(rf"`{code}`, `Retry-After: {retry_after}`", guide), code
    assert f"**{prod['LogRetentionDays']} days in prod** ({dev['LogRetentionDays']} in dev)" in guide
