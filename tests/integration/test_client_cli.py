"""`hematovision classify --url URL` (issue #21): the CLI as a client of a running API, here `hematovision serve`
(the integration fixture, stand-in model), with the key from HEMATOVISION_API_KEY."""

import json
import os
import subprocess
import sys

from tests.integration.serve_helpers import API_KEY, ROOT

CELL = ROOT / "events" / "cell.jpg"


def run_cli(*args, key=API_KEY):
    environment = {k: v for k, v in os.environ.items() if k != "HEMATOVISION_API_KEY"}
    if key is not None:
        environment["HEMATOVISION_API_KEY"] = key
    command = [sys.executable, "-m", "hematovision.cli", "classify", *args]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=120, check=False)


def test_classify_through_the_api(server, tmp_path):
    (tmp_path / "notes.txt").write_bytes(b"not an image")
    done = run_cli("--url", server.url, "--json", str(CELL), str(tmp_path / "notes.txt"))
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 1, done.stderr  # one file failed
    assert (
        lines[0]["path"] == str(CELL)
        and lines[0]["label"]
        and set(lines[0]["probabilities"])
        == {
            "EOSINOPHIL",
            "LYMPHOCYTE",
            "MONOCYTE",
            "NEUTROPHIL",
        }
    )
    assert lines[0]["crop"] in ("frame", "cell") and isinstance(lines[0]["uncertain"], bool)
    assert lines[1]["error"]["code"] == "unsupported_media_type"  # sent as application/octet-stream: the API's 415
    assert API_KEY not in done.stdout + done.stderr


def test_text_output_and_the_classify_url_itself(server):
    done = run_cli("--url", f"{server.url}/v1/classify/", str(CELL))
    assert done.returncode == 0, done.stderr
    path, label, confidence = done.stdout.strip().split("\t")[:3]
    assert path == str(CELL) and label in ("EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL")
    assert 0 <= float(confidence.split()[0]) <= 1


def test_wrong_key_and_no_key(server):
    done = run_cli("--url", server.url, "--json", str(CELL), key="wrong-key")
    assert done.returncode == 1 and json.loads(done.stdout)["error"]["code"] == "invalid_api_key"
    done = run_cli("--url", server.url, str(CELL), key=None)
    assert done.returncode == 2 and "HEMATOVISION_API_KEY" in done.stderr and not done.stdout


def test_unreachable_api(tmp_path):
    done = run_cli("--url", "http://127.0.0.1:9", "--json", str(CELL))  # port 9 (discard): nothing listens
    assert done.returncode == 1 and json.loads(done.stdout)["error"]["code"] == "unreachable"
