"""The generated Python client (clients/python, hematovision_client) and its raw-upload helper (hematovision_upload)
against a real `hematovision serve` with the committed model (issue #21): only the base URL and the key are set.

The server runs one worker and a queue of one (--max-queue 1), so concurrent requests meet the local throttle (429
rate_limited with Retry-After, issue #20) and the client's retry is exercised for real. And the committed client is
what openapi-python-client generates from the served /openapi.json, unedited."""

import base64
import filecmp
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hematovision_client.api.analyze import analyze_v1_analyze_post
from hematovision_client.api.classify import classify_batch_v1_classify_batch_post, classify_v1_classify_post
from hematovision_client.api.model import model_card_v1_model_get
from hematovision_client.models import (
    AnalyzeResponse,
    BatchJsonRequest,
    BatchResponse,
    ClassifyJsonRequest,
    ClassifyResponse,
    ClassifyV1ClassifyPostFilesBody,
    ErrorCode,
    ErrorResponse,
    ModelCard,
)
from hematovision_client.types import File
from hematovision_upload import analyze_raw, classify_raw, keyed_client

from hematovision.local import serve_process
from tests.integration.serve_helpers import API_KEY, REAL_MODEL_DIR, ROOT, SHARED_DATA, require, stop_server

CLIENTS = ROOT / "clients"
CELL = ROOT / "events" / "cell.jpg"  # synthetic one-cell frame (tests/fakes.py)
FIELD = ROOT / "events" / "field.jpg"  # a real bccd whole field with two white cells
NEUTROPHIL = SHARED_DATA / "bccd" / "TEST_SIMPLE" / "NEUTROPHIL"
CLASSES = {"EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    process = serve_process.start(
        REAL_MODEL_DIR,
        tmp_path_factory.mktemp("serve") / "serve.log",
        API_KEY,
        workers=1,
        cwd=ROOT,
        timeout=90,
        extra_args=["--max-queue", "1"],
    )
    yield process
    assert stop_server(process) == 0, process.log_tail()


@pytest.fixture
def client(server):
    with keyed_client(server.url, API_KEY, timeout=60) as client:
        yield client


def test_committed_client_is_the_generated_one(server, tmp_path):
    """(a) Regenerated from the served /openapi.json into a temp dir, it equals the committed copy, file for file."""
    fresh = tmp_path / "python"
    done = subprocess.run(
        [sys.executable, str(CLIENTS / "generate.py"), "--spec", f"{server.url}/openapi.json", "--output", str(fresh)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "openapi.json").read_text() == (CLIENTS / "openapi.json").read_text(), "clients/openapi.json"

    def files(root: Path) -> set[str]:
        skipped = ("__pycache__", ".ruff_cache", ".egg-info")
        return {
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file() and not any(part.endswith(skipped) for part in p.relative_to(root).parts)
        }

    committed = CLIENTS / "python"
    assert files(fresh) == files(committed), "regenerate with: .venv/bin/python clients/generate.py"
    _, mismatch, errors = filecmp.cmpfiles(committed, fresh, sorted(files(fresh)), shallow=False)
    assert not mismatch and not errors, f"edited or stale: {mismatch or errors}; run clients/generate.py"


def check_prediction(answer):
    assert isinstance(answer, ClassifyResponse), answer
    assert answer.label in CLASSES and set(answer.probabilities.to_dict()) == CLASSES
    assert answer.model.version and answer.disclaimer


def test_classify_raw_jpeg(client):
    response = classify_raw(client, CELL.read_bytes(), "image/jpeg")
    assert response.status_code == 200
    check_prediction(response.parsed)


def test_classify_real_photo_raw(client):
    require(NEUTROPHIL.is_dir(), f"../shared is absent: no bccd photo at {NEUTROPHIL}")
    photo = sorted(NEUTROPHIL.iterdir())[0]
    answer = classify_raw(client, photo.read_bytes(), "image/jpeg").parsed
    check_prediction(answer)
    assert answer.label == "NEUTROPHIL"  # the committed model gets this TEST_SIMPLE photo right (golden test)


def test_classify_multipart(client):
    body = ClassifyV1ClassifyPostFilesBody(image=File(payload=CELL.open("rb"), file_name="cell.jpg"))
    response = classify_v1_classify_post.sync_detailed(client=client, body=body)
    assert response.status_code == 200, response.content[:300]
    check_prediction(response.parsed)


def test_classify_json_base64_with_heatmap(client):
    body = ClassifyJsonRequest(image=base64.b64encode(CELL.read_bytes()).decode(), filename="cell.jpg")
    answer = classify_v1_classify_post.sync(client=client, body=body, explain=True)
    check_prediction(answer)
    assert answer.filename == "cell.jpg" and answer.heatmap.data


def test_batch(client):
    image = base64.b64encode(CELL.read_bytes()).decode()
    body = BatchJsonRequest(images=[image, base64.b64encode(b"not an image").decode()])
    answer = classify_batch_v1_classify_batch_post.sync(client=client, body=body)
    assert isinstance(answer, BatchResponse), answer
    assert (answer.count, answer.succeeded, answer.failed) == (2, 1, 1)
    good, bad = answer.results
    assert good.ok and good.status == 200 and good.result.label in CLASSES
    assert bad.ok is False and bad.status == 415 and bad.error.code == ErrorCode.UNSUPPORTED_IMAGE


def test_analyze(client):
    answer = analyze_raw(client, FIELD.read_bytes(), "image/jpeg").parsed
    assert isinstance(answer, AnalyzeResponse), answer
    assert answer.cell_count == len(answer.cells) >= 1 and (answer.width, answer.height) == (640, 480)
    assert all(cell.label in CLASSES and len(cell.box) == 4 for cell in answer.cells)
    assert sum(answer.counts.to_dict().values()) == answer.cell_count
    body = ClassifyJsonRequest(image=base64.b64encode(FIELD.read_bytes()).decode())
    generated = analyze_v1_analyze_post.sync(client=client, body=body)  # the JSON form, through the generated code
    assert isinstance(generated, AnalyzeResponse) and generated.cell_count == answer.cell_count


def test_model_card(client):
    card = model_card_v1_model_get.sync(client=client)
    assert isinstance(card, ModelCard) and set(card.classes) == CLASSES
    assert card.uncertainty.confidence_threshold > 0 and "metrics" in card.to_dict()


def test_error_answers_parse(client):
    answer = classify_raw(client, b"GIF89a? no", "image/gif").parsed
    assert isinstance(answer, ErrorResponse) and answer.error.code == ErrorCode.UNSUPPORTED_IMAGE
    assert answer.request_id


def test_wrong_key_is_a_403_the_client_parses(server):
    with keyed_client(server.url, "not-the-key") as wrong:
        response = classify_raw(wrong, CELL.read_bytes())
    assert response.status_code == 403
    assert isinstance(response.parsed, ErrorResponse), response.content[:300]
    assert response.parsed.error.code == ErrorCode.INVALID_API_KEY


def classify_with_retry(client, image: bytes, attempts: int = 20) -> tuple[object, int]:
    """What an integrator does with 429: wait for Retry-After (with a little jitter), try again. -> (answer, 429s)."""
    for attempt in range(attempts):
        response = classify_raw(client, image)
        if response.status_code != 429:
            return response.parsed, attempt  # every attempt before this one was a 429
        assert isinstance(response.parsed, ErrorResponse) and response.parsed.error.code == ErrorCode.RATE_LIMITED
        delay = float(response.headers["retry-after"])
        time.sleep(min(delay, 0.2) * (1 + attempt % 3))  # capped: the test must not sleep a whole Retry-After each
    raise AssertionError(f"still throttled after {attempts} attempts")


def test_local_throttle_429_is_handled(server):
    """Eight requests at once, one worker, a queue of one: some get 429 rate_limited; retrying gets them all."""
    image = FIELD.read_bytes()  # a slower photo (localiser + model), so the worker is busy while the others arrive
    with keyed_client(server.url, API_KEY, timeout=60) as client, ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda _: classify_with_retry(client, image), range(8)))
    assert all(isinstance(answer, ClassifyResponse) for answer, _ in outcomes), outcomes
    assert sum(throttled for _, throttled in outcomes) >= 1, "no request met the local throttle"


def test_spec_served_locally_lists_this_server(server):
    status, spec = server.json("GET", "/openapi.json", key=None)
    assert status == 200 and spec["servers"][0]["url"] == server.url
    assert json.dumps(spec["servers"][1]["variables"]["stage"]["enum"]) == '["dev", "prod"]'
