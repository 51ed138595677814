"""pip-audit of the pinned Lambda requirements (functions/classifier/requirements.txt).

    python tests/hardening/audit.py [REQUIREMENTS]

Exit 0: every pin audited, no known vulnerability. Exit 1: a known-vulnerable pin (listed), or a pin
that could not be audited while others could. Exit 2: no vulnerability database reachable — pip-audit
needs PyPI's JSON API (service "pypi") or api.osv.dev (service "osv"); where only the package index is
reachable (PyPI's /simple/ but not /pypi/<name>/<version>/json), pip-audit reports every pin as "not
found on PyPI" and would print "No known vulnerabilities found": that is NOT a clean audit, and is
reported here as unreachable, never as a pass.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "functions" / "classifier" / "requirements.txt"
SERVICES = ("pypi", "osv")
NETWORK_ERRORS = (
    "ConnectionError",
    "NameResolutionError",
    "Max retries exceeded",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "timed out",
    "ConnectTimeout",
    "ReadTimeout",
)


@dataclass
class Verdict:
    status: str  # "clean" | "vulnerable" | "unreachable" | "incomplete"
    service: str
    audited: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    vulnerable: dict[str, list[str]] = field(default_factory=dict)
    detail: str = ""

    def summary(self) -> str:
        if self.status == "vulnerable":
            return f"pip-audit ({self.service}): known-vulnerable pins: " + "; ".join(
                f"{name}: {', '.join(ids)}" for name, ids in sorted(self.vulnerable.items())
            )
        if self.status == "unreachable":
            return f"pip-audit could not reach a vulnerability database ({self.detail})"
        if self.status == "incomplete":
            return f"pip-audit ({self.service}): audited {self.audited}, could not audit {self.skipped}"
        return (
            f"pip-audit ({self.service}): {len(self.audited)} pins audited, no known vulnerabilities: "
            f"{', '.join(self.audited)}"
        )


def judge(report: dict, service: str) -> Verdict:
    """The verdict on one pip-audit JSON report."""
    verdict = Verdict("clean", service)
    for dependency in report.get("dependencies", []):
        name = f"{dependency.get('name')}=={dependency.get('version', '?')}"
        if dependency.get("skip_reason"):
            verdict.skipped[str(dependency.get("name"))] = dependency["skip_reason"]
            continue
        verdict.audited.append(name)
        ids = [v.get("id") for v in dependency.get("vulns", [])]
        if ids:
            verdict.vulnerable[name] = ids
    if verdict.vulnerable:
        verdict.status = "vulnerable"
    elif verdict.skipped and not verdict.audited:
        verdict.status = "unreachable"
        verdict.detail = f"service {service}: every pin skipped, e.g. {next(iter(verdict.skipped.values()))!r}"
    elif verdict.skipped:
        verdict.status = "incomplete"
    return verdict


def pip_audit_command() -> list[str]:
    beside = Path(sys.executable).with_name("pip-audit")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("pip-audit")
    return [found] if found else [sys.executable, "-m", "pip_audit"]


def run(requirements: Path = REQUIREMENTS, timeout: float = 180) -> Verdict:
    reasons = []
    for service in SERVICES:
        try:
            result = subprocess.run(
                [
                    *pip_audit_command(),
                    "-r",
                    str(requirements),
                    "--no-deps",
                    "--disable-pip",
                    "--progress-spinner",
                    "off",
                    "--format",
                    "json",
                    "--vulnerability-service",
                    service,
                    "--timeout",
                    "20",
                ],
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            reasons.append(f"{service}: timed out after {timeout:.0f} s")
            continue
        try:
            report = json.loads(result.stdout)
        except ValueError:
            error = (result.stderr.strip().splitlines() or ["no output"])[-1]
            if any(marker in result.stderr for marker in NETWORK_ERRORS):
                reasons.append(f"{service}: {error[:200]}")
                continue
            return Verdict("incomplete", service, detail=f"pip-audit failed (exit {result.returncode}): {error[:300]}")
        verdict = judge(report, service)
        if verdict.status != "unreachable":
            return verdict
        reasons.append(verdict.detail)
    return Verdict("unreachable", "/".join(SERVICES), detail="; ".join(reasons))


def main(argv: list[str]) -> int:
    verdict = run(Path(argv[0]) if argv else REQUIREMENTS)
    print(verdict.summary())
    return {"clean": 0, "unreachable": 2}.get(verdict.status, 1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
