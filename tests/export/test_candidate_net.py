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
def test_cv_prints_the_logistic_the_network_and_their_mean_and_saves_the_scores(tmp_path):
    saved = tmp_path / "scores.npz"
    args = ("--limit", "4", "--epochs", "1", "--folds", "2", "--versions", "blur", "--context", "1.5")
    out = run("cv", *args, "--save", str(saved))
    for name in ("logistic", "network", "mean"):
        assert f"{name}: mean F1 over sets and versions" in out
        assert f"{name} @ " in out
    assert "blur bccd" in out
    scores = np.load(saved)
    for part in ("plain", "blur"):
        n = len(scores[f"positive/{part}"])
        assert n > 0 and all(scores[f"{name}/{part}"].shape == (n,) for name in ("logistic", "network", "mean"))
        np.testing.assert_allclose(scores[f"mean/{part}"], (scores[f"logistic/{part}"] + scores[f"network/{part}"]) / 2)
    # another network seed on the same folds, averaged with the saved run's network
    out = run("cv", *args, "--network-seed", "1", "--ensemble-with", str(saved))
    assert f"the network averaged with {saved}'s:" in out
    assert out.count("mean: mean F1 over sets and versions") == 2


def test_cv_refuses_to_average_with_a_run_on_other_candidates(tmp_path):
    saved = tmp_path / "scores.npz"
    plain = np.zeros(3, dtype=bool)
    np.savez(saved, **{"positive/plain": plain, "network/plain": plain.astype(float)})
    from export import candidate_net

    parts = {"": type("Part", (), {"positive": np.ones(4, dtype=bool)})()}
    scores = {name: {"": np.zeros(4)} for name in ("logistic", "network", "mean")}
    with pytest.raises(SystemExit, match="not this run's"):
        candidate_net.ensemble_with(scores, parts, saved)


def test_the_ensemble_averages_the_networks_and_recomputes_the_mean(tmp_path):
    from export import candidate_net

    saved = tmp_path / "scores.npz"
    positive = np.array([True, False])
    np.savez(saved, **{"positive/plain": positive, "network/plain": np.array([0.2, 0.6])})
    parts = {"": type("Part", (), {"positive": positive})()}
    scores = {"logistic": {"": np.array([1.0, 0.0])}, "network": {"": np.array([0.6, 0.2])}, "mean": {"": None}}
    candidate_net.ensemble_with(scores, parts, saved)
    np.testing.assert_allclose(scores["network"][""], [0.4, 0.4])
    np.testing.assert_allclose(scores["mean"][""], [0.7, 0.2])


def test_patch_side_is_a_cv_experiment_only(monkeypatch):
    from export import candidate_net
    from export import localiser_train as T

    monkeypatch.setattr(L, "PATCH_SIDE", L.PATCH_SIDE)  # undone after the test
    monkeypatch.setattr(T, "PATCH_SHAPE", T.PATCH_SHAPE)
    with pytest.raises(SystemExit):
        candidate_net.main(["fit", "--out", "x", "--patch-side", "48"])
    candidate_net.resize_patches(48)
    rgb = np.full((120, 160, 3), (228, 214, 236), dtype=np.uint8)
    _, copy = L._working_copy(rgb)
    assert L.candidate_patches(copy, np.array([(10, 10, 50, 50)])).shape == (1, 48, 48, 3)


def test_widened_patches_hold_the_box_in_their_middle_and_stay_inside_the_photo(monkeypatch):
    from export import candidate_net

    monkeypatch.setattr(L, "candidate_patches", L.candidate_patches)  # undone after the test
    rgb = np.full((480, 640, 3), (228, 214, 236), dtype=np.uint8)
    rgb[200:260, 280:340] = (96, 52, 140)
    _, copy = L._working_copy(rgb)
    box = np.array([(280, 200, 340, 260), (0, 0, 60, 60)], dtype=np.float64)
    plain = L.candidate_patches(copy, box)
    candidate_net.widen_patches(2.0)
    wide = L.candidate_patches(copy, box)
    side = L.PATCH_SIDE
    # the box fills the plain patch and the middle half of the widened one
    assert plain[0].mean() < 0.6 and wide[0][side // 4 : 3 * side // 4, side // 4 : 3 * side // 4].mean() < 0.6
    assert wide[0][:4].mean() > 0.75  # the widened patch's edge is background
    assert wide.shape == plain.shape and np.isfinite(wide).all()  # the corner box is clipped to the photo
