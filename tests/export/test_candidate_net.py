"""export.candidate_net (arm C of docs/experiments.md) on a few tune fields, one epoch, in the export venv: fit writes
an ONNX network that onnxruntime runs on localiser.candidate_patches, whose answer does not change with a quarter
turn of the patch (the four turns are averaged inside the graph); cv prints the three scorers' out-of-fold figures.
Skipped without ../shared or the export venv (a failure in CI, CI=true)."""

import json
import subprocess

import numpy as np
import pytest
from export_helpers import EXPORT_PYTHON, ROOT, SHARED_DATA, require

from hematovision.logic import localiser as L


def run(*args: str) -> str:
    require((SHARED_DATA / "fields").is_dir(), f"{SHARED_DATA / 'fields'} is missing: the network learns on the fields")
    require(EXPORT_PYTHON.exists(), f"{EXPORT_PYTHON} is missing: `make export-venv` creates it")
    done = subprocess.run(
        [str(EXPORT_PYTHON), "-m", "export.candidate_net", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_fit_writes_a_network_onnxruntime_runs_and_a_quarter_turn_does_not_change(tmp_path):
    import onnxruntime as ort

    out = run("fit", "--limit", "3", "--epochs", "1", "--versions", "blur", "--out", str(tmp_path))
    assert "wrote" in out
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["patch_side"] == L.PATCH_SIDE and config["localiser_version"] == L.LOCALISER_VERSION
    assert config["fields"] == 9 and config["candidates"] > 0
    session = ort.InferenceSession(str(tmp_path / "candidate_net.onnx"), providers=["CPUExecutionProvider"])
    rgb = np.full((480, 640, 3), (228, 214, 236), dtype=np.uint8)
    rgb[200:260, 280:340] = (96, 52, 140)
    rgb[100:130, 500:540] = (150, 60, 90)
    _, copy = L._working_copy(rgb)
    patches = L.candidate_patches(copy, np.array([(260, 180, 360, 280), (480, 80, 560, 150), (0, 0, 80, 80)]))
    p = session.run(None, {"patches": patches})[0]
    assert p.shape == (3,) and np.all((p >= 0) & (p <= 1))
    turned = np.ascontiguousarray(np.rot90(patches, 1, axes=(1, 2)))
    np.testing.assert_allclose(session.run(None, {"patches": turned})[0], p, atol=1e-5)


@pytest.mark.slow
def test_cv_prints_the_logistic_the_network_and_their_mean():
    out = run("cv", "--limit", "4", "--epochs", "1", "--folds", "2", "--versions", "blur")
    for name in ("logistic", "network", "mean"):
        assert f"{name}: mean F1 over sets and versions" in out
        assert f"{name} @ " in out
    assert "blur bccd" in out
