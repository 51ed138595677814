"""Check the packaged model against its card at build time, and record the check for the function's init.

    python3 verify_model.py <package-dir>        (run by the Lambda Makefile; standard library only)

The model card names its ONNX file by sha256. Hashing the 9 MB file costs ~12 ms of every cold start, so the
build does it once: it refuses a package whose model differs from the card, then writes model/build_check.json
with that sha256, the file's size and its CRC-32. At init, hematovision.logic.inference checks a model directory
that holds this record by size and CRC-32 (~3 ms; it catches a truncated or corrupted file) and the record's
sha256 against the card (the card served is the one the build verified the file against). Without the record
(local server, CLI, tests, export) the init hashes the file as before.
"""

from __future__ import annotations

import hashlib
import json
import sys
import zlib
from pathlib import Path

MODEL_FILE = "hematovision.onnx"  # hematovision.config.MODEL_FILE
CARD_FILE = "model_card.json"  # hematovision.config.CARD_FILE
BUILD_CHECK_FILE = "build_check.json"  # hematovision.logic.inference.BUILD_CHECK_FILE
CHUNK = 1 << 20


def digests(path: Path) -> tuple[str, int]:
    """sha256 (hex) and CRC-32 of a file."""
    sha, crc = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            sha.update(chunk)
            crc = zlib.crc32(chunk, crc)
    return sha.hexdigest(), crc


def main(argv: list[str]) -> int:
    model_dir = Path(argv[0]) / "model"
    onnx, card_path = model_dir / MODEL_FILE, model_dir / CARD_FILE
    if not onnx.is_file() or not card_path.is_file():
        print(f"verify_model: no {MODEL_FILE} + {CARD_FILE} in {model_dir}", file=sys.stderr)
        return 1
    expected = json.loads(card_path.read_text(encoding="utf-8")).get("sha256")
    sha256, crc32 = digests(onnx)
    if sha256 != expected:
        print(f"verify_model: {onnx} has sha256 {sha256}, its card states {expected}", file=sys.stderr)
        return 1
    record = {"sha256": sha256, "bytes": onnx.stat().st_size, "crc32": crc32}
    (model_dir / BUILD_CHECK_FILE).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({"verified": MODEL_FILE, **record}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
