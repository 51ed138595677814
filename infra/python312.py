#!/usr/bin/env python3
"""Find a working CPython 3.12, Lambda's runtime version (standard library only).

    python infra/python312.py      # prints its path; exit status 1 when there is none

Tried in order: $HEMATOVISION_PYTHON312, python3.12 on PATH, pyenv, uv, /usr(/local)/bin. Used by the
infrastructure tests (import the built package as Lambda would) and by `make bench` (the built package's
cold start). functions/classifier/Makefile has its own short lookup, since `sam build` may run it from a copy.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path


def find_python312() -> str | None:
    candidates = [os.environ.get("HEMATOVISION_PYTHON312", ""), shutil.which("python3.12") or ""]
    home = Path.home()
    for pattern in (
        str(home / ".pyenv/versions/3.12*/bin/python3.12"),
        str(home / ".local/share/uv/python/cpython-3.12*/bin/python3.12"),
        "/usr/bin/python3.12",
        "/usr/local/bin/python3.12",
    ):
        candidates.extend(sorted(glob.glob(pattern), reverse=True))
    for candidate in candidates:
        if not candidate:
            continue
        try:
            out = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == "True":
            return candidate
    return None


if __name__ == "__main__":
    found = find_python312()
    if found:
        print(found)
    sys.exit(0 if found else 1)
