"""Installed size of a dependency set: the closure of some requirements in the interpreter that runs this.

    python -m bench.sizes NAME[extra] ...     (prints JSON: total bytes and bytes per distribution)

Standard library only (uses `packaging` for environment markers when it is installed). Counts the files each
distribution's RECORD lists, without __pycache__/*.pyc (the Lambda package carries no bytecode either).
"""

from __future__ import annotations

import json
import re
import sys
from importlib import metadata
from pathlib import Path

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _parse(requirement: str) -> tuple[str, set[str], str]:
    """(name, extras, marker) of a requirement string."""
    head, _, marker = requirement.partition(";")
    match = _NAME.match(head)
    if not match:
        return "", set(), ""
    extras = {e.strip() for e in (match.group(2) or "").split(",") if e.strip()}
    return match.group(1), extras, marker.strip()


def _marker_ok(marker: str, extras: set[str]) -> bool:
    if not marker:
        return True
    try:
        from packaging.markers import Marker

        parsed = Marker(marker)
        return any(parsed.evaluate({"extra": e}) for e in (extras or {""}))
    except Exception:
        if "extra" in marker:
            return any(re.search(rf"extra\s*==\s*['\"]{re.escape(e)}['\"]", marker) for e in extras)
        return True


def closure(requirements: list[str]) -> dict[str, metadata.Distribution]:
    found: dict[str, metadata.Distribution] = {}
    pending = [(_parse(r)[0], _parse(r)[1]) for r in requirements]
    seen_extras: dict[str, set[str]] = {}
    while pending:
        name, extras = pending.pop()
        key = _canonical(name)
        if not key:
            continue
        known = seen_extras.get(key)
        if known is not None and extras <= known:
            continue
        seen_extras[key] = (known or set()) | extras
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found[key] = dist
        for requirement in dist.requires or []:
            sub_name, sub_extras, marker = _parse(requirement)
            if _marker_ok(marker, seen_extras[key]):
                pending.append((sub_name, sub_extras))
    return found


def dist_bytes(dist: metadata.Distribution) -> int:
    total = 0
    for file in dist.files or []:
        if "__pycache__" in file.parts or file.suffix == ".pyc":
            continue
        try:
            path = file.locate()
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
        except OSError:
            pass
    return total


def measure(requirements: list[str]) -> dict:
    dists = closure(requirements)
    sizes = {key: dist_bytes(dist) for key, dist in dists.items()}
    return {
        "requirements": requirements,
        "python": sys.version.split()[0],
        "total_bytes": sum(sizes.values()),
        "distributions": dict(sorted(sizes.items(), key=lambda kv: -kv[1])),
    }


def requirement_names(path) -> list[str]:
    """The `name[extras]` of each line of a requirements file (no -r includes, no options)."""
    names = []
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = _NAME.match(line)
        if match:
            names.append(match.group(1) + (f"[{match.group(2)}]" if match.group(2) else ""))
    return names


def files(requirements: list[str]) -> list[tuple[str, str]]:
    """(site-packages root, path relative to it) of every file of the closure, bytecode excluded."""
    found = []
    for dist in closure(requirements).values():
        base = Path(dist.locate_file("")).resolve()
        for file in dist.files or []:
            if "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            path = Path(file.locate()).resolve()
            if path.is_file() and path.is_relative_to(base):
                found.append((str(base), str(path.relative_to(base))))
    return found


if __name__ == "__main__":
    if sys.argv[1:2] == ["--files"]:
        print(json.dumps(files(sys.argv[2:])))
    else:
        print(json.dumps(measure(sys.argv[1:])))
