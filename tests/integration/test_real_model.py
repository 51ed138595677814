"""The committed model on real data: CLI evaluate matches the model card; the local server gives the same answers.

Skipped locally while functions/classifier/model/hematovision.onnx or ../shared/data is absent;
with CI=true a missing model or data set fails instead.
"""

import json
import subprocess
import sys

import pytest

from tests.integration.serve_helpers import (
    API_KEY,
    REAL_MODEL_DIR,
    ROOT,
    SHARED_DATA,
    require,
    start_server,
    stop_server,
)

TEST_SIMPLE = SHARED_DATA / "bccd" / "TEST_SIMPLE"


@pytest.fixture(scope="module")
def real_model():
    require(
        (REAL_MODEL_DIR / "hematovision.onnx").is_file(),
        "the trained model functions/classifier/model/hematovision.onnx has not landed yet",
    )
    require(TEST_SIMPLE.is_dir(), f"shared data not found at {TEST_SIMPLE}")
    return REAL_MODEL_DIR


@pytest.fixture(scope="module")
def evaluation(real_model):
    output = subprocess.run(
        [
            sys.executable,
            "-m",
            "hematovision.cli",
            "evaluate",
            str(TEST_SIMPLE),
            "--json",
            "--model-dir",
            str(real_model),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return json.loads(output.stdout)


def card_metrics_for(card: dict, n: int, hint: str) -> dict | None:
    sets = card.get("metrics") or {}
    named = [m for name, m in sets.items() if hint in name.lower() and isinstance(m, dict) and m.get("n") == n]
    return named[0] if named else next((m for m in sets.values() if isinstance(m, dict) and m.get("n") == n), None)


def test_evaluate_matches_model_card(real_model, evaluation):
    card = json.loads((real_model / "model_card.json").read_text())
    assert evaluation["n"] == 71 and not evaluation["errors"]
    stated = card_metrics_for(card, 71, "simple")
    assert stated is not None, (
        f"the model card states no metrics for bccd TEST_SIMPLE (n=71); sets: {list(card.get('metrics', {}))}"
    )
    assert evaluation["confusion_matrix"] == stated["confusion_matrix"]
    assert evaluation["accuracy"] == pytest.approx(stated["accuracy"], abs=1e-9)
    assert evaluation["macro_f1"] == pytest.approx(stated["macro_f1"], abs=1e-9)


def test_accuracy_is_plausible(evaluation):
    assert evaluation["accuracy"] >= 0.7, evaluation


def test_local_server_agrees_with_cli(real_model, evaluation, tmp_path):
    """Every TEST_SIMPLE image as a raw JPEG through `hematovision serve`: the same labels as the CLI."""
    classes = evaluation["classes"]
    server = start_server(tmp_path, real_model)
    try:
        correct = total = 0
        for name in classes:
            for path in sorted((TEST_SIMPLE / name).iterdir()):
                status, _, data = server.request(
                    "POST", "/v1/classify", path.read_bytes(), {"Content-Type": "image/jpeg"}, key=API_KEY
                )
                assert status == 200, data
                total += 1
                correct += json.loads(data)["label"] == name
        assert total == evaluation["n"]
        assert correct / total == pytest.approx(evaluation["accuracy"], abs=1e-9)
    finally:
        stop_server(server)
