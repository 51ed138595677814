#!/usr/bin/env python3
"""Print the unzipped size of the built Lambda package (what counts against Lambda's 250 MB limit).

    python infra/package_size.py [BUILT_FUNCTION_DIR] [--top N] [--json]

BUILT_FUNCTION_DIR defaults to .aws-sam/build/ClassifierFunction (the output of `sam build`).
Sizes are sums of regular-file sizes in MiB (2**20 bytes), as Lambda counts its 250 MB quota
(262,144,000 bytes); MB (10**6) is printed beside them. Exit status: 0 within the budget,
1 over the budget (default 100 MB, 95.4 MiB), 2 over Lambda's hard limit, 3 if the directory is missing.
Standard library only, so it runs from any interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

MIB = 2**20
BUDGET_MIB = 100e6 / MIB  # issue 4: the unzipped package stays <= 100 MB (95.4 MiB)
LAMBDA_LIMIT_MIB = 250.0  # Lambda: deployment package (and layers), unzipped

ALIASES = {"pil": "pillow", "google": "protobuf", "typing_extensions.py": "typing_extensions"}

DEFAULT_DIR = Path(__file__).resolve().parent.parent / ".aws-sam" / "build" / "ClassifierFunction"


def measure(root: str | os.PathLike[str], top: int = 15) -> dict:
    """Sizes of a built package: total, per top-level entry, and the largest files (bytes)."""
    root = Path(root)
    total = 0
    files = 0
    groups: dict[str, int] = defaultdict(int)
    largest: list[tuple[int, str]] = []
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            size = path.stat().st_size
            rel = path.relative_to(root)
            total += size
            files += 1
            head = rel.parts[0]
            # group "numpy-2.4.6.dist-info" and "numpy.libs" with "numpy"
            key = head.split("-")[0] if head.endswith(".dist-info") else head
            key = key[: -len(".libs")] if key.endswith(".libs") else key
            key = ALIASES.get(key.lower(), key.lower())
            groups[key] += size
            largest.append((size, rel.as_posix()))
    largest.sort(reverse=True)
    return {
        "dir": str(root),
        "files": files,
        "total_bytes": total,
        "total_mib": round(total / MIB, 2),
        "total_mb": round(total / 1e6, 2),
        "budget_mib": BUDGET_MIB,
        "lambda_limit_mib": LAMBDA_LIMIT_MIB,
        "groups": dict(sorted(groups.items(), key=lambda kv: -kv[1])),
        "largest": [{"bytes": s, "path": p} for s, p in largest[:top]],
    }


def format_report(report: dict, top_groups: int = 12) -> str:
    lines = [
        f"Lambda package {report['dir']}",
        f"  total: {report['total_mib']:.2f} MiB ({report['total_mb']:.2f} MB) in {report['files']} files"
        f" - budget {report['budget_mib']:.0f} MiB, Lambda limit {report['lambda_limit_mib']:.0f} MiB",
        "  by package (incl. its .libs and .dist-info):",
    ]
    for name, size in list(report["groups"].items())[:top_groups]:
        lines.append(f"    {size / MIB:8.2f} MiB  {name}")
    lines.append("  largest files:")
    for item in report["largest"]:
        lines.append(f"    {item['bytes'] / MIB:8.2f} MiB  {item['path']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", nargs="?", default=str(DEFAULT_DIR), help="built function directory")
    parser.add_argument("--top", type=int, default=15, help="how many of the largest files to list")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--budget-mib", type=float, default=BUDGET_MIB)
    args = parser.parse_args(argv)
    if not Path(args.dir).is_dir():
        print(f"no built package at {args.dir} - run `make build` (sam build) first", file=sys.stderr)
        return 3
    report = measure(args.dir, top=args.top)
    report["budget_mib"] = args.budget_mib
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    if report["total_mib"] > LAMBDA_LIMIT_MIB:
        return 2
    if report["total_mib"] > args.budget_mib:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
