"""Imports go through packaging, not sys.path edits: the project installs hematovision, export and bench, and
tests/ is a package (`from tests import fakes`). The only sys.path / PYTHONPATH lines left emulate Lambda's
task root (/var/task): code that runs the Lambda code as Lambda lays it out, not as the venv installs it.

A new hit fails here: import the module by its package instead, or, if it really emulates the task root,
add it below with the reason."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEARCHED = ("export", "bench", "tests", "functions")
PATTERN = re.compile(r"sys\.path|PYTHONPATH")

# (file, the code on the line) -> why it is task-root emulation
ALLOWED = {
    (
        "functions/classifier/hematovision/local/server.py",
        'environment["PYTHONPATH"] = os.pathsep.join(p for p in (str(code_uri), '
        'environment.get("PYTHONPATH", "")) if p)',
    ): "the local server's awslambdaric workers import the handler from the CodeUri, as Lambda does from /var/task",
    (
        "functions/classifier/cold_start_bytecode.py",
        "sys.path.insert(0, package)",
    ): "runs under `python3.12 -I -S` inside `sam build`: imports the BUILT package as Lambda's /var/task",
    (
        "tests/infrastructure/lambda_smoke.py",
        "sys.path.insert(0, pkg)",
    ): "runs under `python3.12 -I -S`: imports the BUILT package (.aws-sam/build) as Lambda's /var/task",
    (
        "bench/cold_start.py",
        '"PYTHONPATH": str(package),',
    ): "the cold-start benchmark of the BUILT package under `python3.12 -S`, the package as /var/task",
    (
        "tests/integration/test_runtime.py",
        "environment = dict(os.environ, PYTHONPATH=str(tmp_path), **env)",
    ): "the runtime tests' probe handler lives in a temporary task root, on the workers' PYTHONPATH as on Lambda",
}
SELF = Path(__file__).resolve()  # the allow-list above quotes the lines it allows


def hits() -> set[tuple[str, str]]:
    """(file, stripped line) of every match in the searched folders' text files, comments and docs included."""
    found = set()
    for top in SEARCHED:
        for path in sorted((ROOT / top).rglob("*")):
            parts = path.relative_to(ROOT).parts
            if path == SELF or not path.is_file() or path.stat().st_size > 1_000_000:
                continue
            if any(part.startswith(".") or part == "__pycache__" or part.endswith(".egg-info") for part in parts):
                continue
            data = path.read_bytes()
            if b"\0" in data:  # binary
                continue
            for line in data.decode("utf-8", errors="replace").splitlines():
                if PATTERN.search(line):
                    found.add((path.relative_to(ROOT).as_posix(), line.strip()))
    return found


def test_sys_path_and_pythonpath_only_for_task_root_emulation():
    found = hits()
    unexpected = sorted(found - ALLOWED.keys())
    assert not unexpected, "sys.path / PYTHONPATH outside the task-root allow-list:\n" + "\n".join(
        f"  {file}: {line}" for file, line in unexpected
    )
    # an allow-list entry whose line went away is stale: drop it
    assert not ALLOWED.keys() - found, sorted(ALLOWED.keys() - found)


def test_the_search_sees_every_allowed_file():
    assert all((ROOT / file).is_file() for file, _ in ALLOWED), [f for f, _ in ALLOWED if not (ROOT / f).is_file()]
