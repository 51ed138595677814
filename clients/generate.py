"""Regenerates the Python client (clients/python, committed unedited) from the API's OpenAPI document.

    .venv/bin/python clients/generate.py                      # the spec of the code in this checkout
    .venv/bin/python clients/generate.py --spec URL_OR_FILE   # e.g. http://127.0.0.1:3000/openapi.json
    .venv/bin/python clients/generate.py --output DIR         # somewhere else (the tests diff it with the copy)

By default the spec is built in-process from hematovision.handlers.api (the committed model is loaded, no server
needed). The spec used is written beside the client as clients/openapi.json (TypeScript and other generators can
start from it). openapi-python-client (pinned in requirements-dev.txt, settings in openapi-python-client.yaml) formats
its output with ruff: both are taken from this interpreter's venv. Raw image/* bodies are not generated (the
generator skips binary request bodies): clients/python-upload holds the small hand-written helper for them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "openapi-python-client.yaml"


def spec_text(source: str | None) -> str:
    """The OpenAPI document as JSON text: from a URL, a file, or (None) this checkout's handler."""
    if source is None:
        from hematovision.handlers import api

        text = api.openapi_document(api.app)
    elif source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=30) as response:  # noqa: S310 - a URL the developer gives
            text = response.read().decode("utf-8")
    else:
        text = Path(source).read_text(encoding="utf-8")
    document = json.loads(text)
    document.pop("servers", None)  # where it is served from is the caller's setting (base_url), not the client's
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


def generate(spec: str, output: Path) -> None:
    """Runs openapi-python-client on `spec` (JSON text) into `output` (replaced), with ruff from this venv."""
    venv_bin = Path(sys.executable).parent
    environment = dict(os.environ, PATH=os.pathsep.join([str(venv_bin), os.environ.get("PATH", "")]))
    with tempfile.TemporaryDirectory() as work:
        spec_path = Path(work) / "openapi.json"
        spec_path.write_text(spec, encoding="utf-8")
        command = [str(venv_bin / "openapi-python-client"), "generate", "--path", str(spec_path)]
        command += ["--config", str(CONFIG), "--meta", "setup", "--output-path", str(output), "--overwrite"]
        done = subprocess.run(command, env=environment, cwd=work, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not (output / "hematovision_client").is_dir():
        raise SystemExit(f"openapi-python-client failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", help="URL or file of the OpenAPI document (default: built from this checkout)")
    parser.add_argument("--output", type=Path, default=HERE / "python", help="client folder (default: clients/python)")
    args = parser.parse_args(argv)
    spec = spec_text(args.spec)
    generate(spec, args.output)
    (args.output.parent / "openapi.json").write_text(spec, encoding="utf-8")
    print(f"generated {args.output} and {args.output.parent / 'openapi.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
