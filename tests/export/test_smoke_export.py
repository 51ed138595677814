"""The smoke run: the committed recipe on a few dozen images (2 short epochs), end to end: train, convert,
evaluate, parity. And the model-2.0 candidate recipe run as an experiment (another recipe file, default run
folder): it writes nothing but its own run folder.

Runs in the export venv (.venv-export: TensorFlow, tf2onnx), which `make test` creates. About 3-5 minutes.
"""

import json
import shutil
import subprocess
import time
from types import SimpleNamespace

import numpy as np
import pytest
from export_helpers import EXPORT_PYTHON, MODEL_DIR, ROOT, SHARED_DATA, require

from export.card import markdown
from export.perturb import PERTURBATIONS
from export.promote import ARTIFACTS, DOCS, RUN_MODEL, PromotionRefused, promote
from export.recipe import RECIPE_FILE, RUN_RECIPE_NAME, Recipe, committed_recipe
from hematovision.logic.localiser import LOCALISER_VERSION

RUNS = ROOT / "build" / "runs"
SHIPPED = (ARTIFACTS, MODEL_DIR, DOCS / "model-card.md", DOCS / "figures")
# git status is compared where export/ writes: the whole tree would also see other people's edits made meanwhile
# in a shared checkout.
EXPORT_WRITES = ("export/artifacts", "functions/classifier/model", "docs", "bench/results")


def git_status() -> str:
    command = ["git", "status", "--porcelain", "--untracked-files=all", "--", *EXPORT_WRITES]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout


def newest_write(paths) -> float:
    files = [p for path in paths for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file()]
    return max(p.stat().st_mtime for p in files)


def run_export(*args: str) -> subprocess.CompletedProcess:
    require(EXPORT_PYTHON.is_file(), f"export venv not found at {EXPORT_PYTHON} (make export-venv)")
    require((SHARED_DATA / "bccd" / "TRAIN").is_dir(), f"shared data not found at {SHARED_DATA}")
    result = subprocess.run(
        [str(EXPORT_PYTHON), "-m", "export", *args], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("smoke") / "run"
    run_export("all", "--smoke", "--work", str(run))
    return run


def test_smoke_run_is_the_committed_recipe_on_fewer_epochs(smoke_run):
    assert Recipe.load(smoke_run / RUN_RECIPE_NAME) == Recipe.load(RECIPE_FILE).smoke_sized()
    report = json.loads((smoke_run / "train_report.json").read_text())
    assert report["smoke"] and report["batchnorm_check"]["max_moving_mean_drift"] == 0.0


def test_smoke_run_selects_the_epoch_with_the_best_validation_macro_f1(smoke_run):
    report = json.loads((smoke_run / "train_report.json").read_text())
    history = report["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    best = max(h["val_macro_f1"] for h in history)
    assert report["selected_epoch"] == min(h["epoch"] for h in history if h["val_macro_f1"] == best)  # ties: earlier


def test_smoke_card_renders_the_recorded_recipe(smoke_run):
    recipe = Recipe.load(smoke_run / RUN_RECIPE_NAME)
    report = json.loads((smoke_run / "train_report.json").read_text())
    card = json.loads((smoke_run / RUN_MODEL / "model_card.json").read_text())
    assert card["version"] == f"{recipe.version}-smoke"
    for key, value in recipe.card_training(report["selected_epoch"]).items():
        assert card["training"][key] == value, key
    assert (
        f"# Model card — hematovision-wbc {recipe.version}-smoke" in (smoke_run / "docs" / "model-card.md").read_text()
    )


def test_smoke_export_meets_the_artifact_contract(smoke_run):
    import onnxruntime as ort

    model_dir = smoke_run / RUN_MODEL
    recipe = Recipe.load(smoke_run / RUN_RECIPE_NAME)
    size = recipe.input_size
    card = json.loads((model_dir / "model_card.json").read_text())
    assert card["parity"]["passed"], card["parity"]
    assert card["parity"]["max_abs_probability_diff"] <= 1e-4
    session = ort.InferenceSession(str(model_dir / "hematovision.onnx"), providers=["CPUExecutionProvider"])
    (image,) = session.get_inputs()
    assert image.name == "image" and image.type == "tensor(uint8)" and image.shape[1:] == [size, size, 3]
    assert [o.name for o in session.get_outputs()] == ["probabilities", "cam", "ood_similarity"]
    batch = np.random.default_rng(1).integers(0, 256, (3, size, size, 3), dtype=np.uint8)
    probabilities, cam, similarity = session.run(None, {"image": batch})
    side = -(-size // 32)  # MobileNetV2's last feature map: the input over 32, rounded up
    assert probabilities.shape == (3, 4) and cam.shape == (3, side, side, 4) and similarity.shape == (3,)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    for key in ("bccd_test", "bccd_test_simple", "pbc_test", "bccd_val", "pbc_val", "dbn_select", "dbn_report"):
        assert card["metrics"][key]["n"] > 0
    assert 0.0 <= card["non_blood_images"]["flagged_uncertain_fraction"] <= 1.0
    if recipe.crop == "cell":
        assert_cell_model_card(card, recipe)
    else:
        # a frame model keeps 1.2.0's threshold rule
        assert card["uncertainty"]["chosen_on"] == ["bccd_val", "pbc_val"] and "calibration" not in card["uncertainty"]
        assert "crop" not in card["input"] and "localiser" not in card
    assert_robustness_table(card)
    assert (model_dir / "hematovision.onnx").stat().st_size <= 10 * 1024 * 1024


def test_smoke_model_is_served_by_the_handler_code(smoke_run):
    from hematovision.logic.classifier import Classifier
    from hematovision.logic.inference import Model

    classifier = Classifier(Model(smoke_run / RUN_MODEL, intra_op_threads=1))
    jpeg = next((SHARED_DATA / "bccd" / "TEST_SIMPLE" / "MONOCYTE").iterdir()).read_bytes()
    (item,) = classifier.classify([jpeg]).items
    assert item.ok and item.verdict.label in classifier.model.classes


def test_a_smoke_run_is_never_promoted(smoke_run, tmp_path):
    targets = {name: tmp_path / name for name in ("artifacts", "model_dir", "docs")}
    with pytest.raises(PromotionRefused, match="smoke run"):
        promote(smoke_run, committed_recipe(), **targets)
    assert not any(path.exists() for path in targets.values())


CANDIDATE = ROOT / "export" / "recipes" / "2.0.0-candidate-160.json"


@pytest.fixture(scope="module")
def candidate_run():
    """The model-2.0 candidate recipe (cell crops, 160 px, stain augmentation) on the smoke subset, end to end, as
    an experiment is run: trained into the default place (build/runs/<name>), then converted and evaluated there.
    What each step wrote is recorded, so the same run also shows that an experiment touches nothing that ships."""
    status, runs_before, started = git_status(), set(RUNS.glob("*")), time.time()
    trained = run_export("train", "--smoke", "--recipe", str(CANDIDATE))
    new_runs = set(RUNS.glob("*")) - runs_before
    assert len(new_runs) == 1, new_runs
    (run,) = new_runs
    files_after_training = {p.name for p in run.iterdir()}
    run_export("convert", "--work", str(run))
    run_export("evaluate", "--work", str(run))
    yield SimpleNamespace(
        path=run,
        status=status,
        started=started,
        train_stdout=trained.stdout,
        files_after_training=files_after_training,
    )
    subprocess.run(["rm", "-rf", str(run)], check=True)


def test_an_experiment_writes_only_its_run_folder(candidate_run):
    run = candidate_run.path
    assert run.name.startswith(f"{Recipe.load(CANDIDATE).version}-smoke-")
    assert f"run folder: {run}" in candidate_run.train_stdout
    assert candidate_run.files_after_training == {
        RUN_RECIPE_NAME,
        "train_report.json",
        "classifier.keras",
        "centroids.npy",
    }
    # converting and evaluating the experiment also wrote only into its folder
    assert git_status() == candidate_run.status
    assert newest_write(SHIPPED) < candidate_run.started


def test_the_model_2_candidate_recipe_trains_converts_and_evaluates(candidate_run):
    run = candidate_run.path
    recipe = Recipe.load(run / RUN_RECIPE_NAME)
    assert recipe == Recipe.load(CANDIDATE).smoke_sized() and recipe.crop == "cell"
    card = json.loads((run / RUN_MODEL / "model_card.json").read_text())
    assert card["parity"]["passed"], card["parity"]
    assert card["input"]["shape"][1:] == [160, 160, 3]
    for key in ("bccd_test", "pbc_test", "bccd_val", "pbc_val", "dbn_select", "dbn_report"):
        assert card["metrics"][key]["n"] > 0
    assert_cell_model_card(card, recipe)
    assert_robustness_table(card)
    import onnxruntime as ort

    session = ort.InferenceSession(str(run / RUN_MODEL / "hematovision.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1:] == [160, 160, 3]


def assert_cell_model_card(card, recipe):
    assert "crop" in card["training"] and card["training"]["stain_camera_augmentation"]
    # the crop contract the serving code reads (logic/inference.Model), and the serving code crops: every set scored
    assert card["input"]["crop"] == "cell" and card["input"]["crop_um"] == recipe.crop_um
    assert card["localiser"]["version"] == LOCALISER_VERSION
    assert f"{recipe.crop_um:g} um" in card["input"]["preprocessing"]
    # a cell model's thresholds are calibrated on validation images, clean and perturbed, never on a test set
    assert card["uncertainty"]["chosen_on"] == ["bccd_val", "pbc_val", "dbn_select"]
    assert card["uncertainty"]["calibration"]["perturbed_n"] > 0
    assert any(row[name]["crop_cell"] for row in card["robustness"]["rows"].values() for name in row)


def assert_robustness_table(card):
    rows = card["robustness"]["rows"]
    assert list(rows) == ["none", *PERTURBATIONS]
    for row in rows.values():
        assert set(row) == {"bccd_test_simple", "pbc_test", "dbn_report"}
        assert all(cell["n"] > 0 and 0.0 <= cell["flagged_fraction"] <= 1.0 for cell in row.values())
    assert "Robustness" in markdown(card)


def test_the_screen_reads_a_candidate_run(candidate_run, capsys):
    from export.screen import SCREEN_FILE, main

    assert main([str(candidate_run.path), "--per-class", "2", "--timing-runs", "3"]) == 0
    result = json.loads((candidate_run.path / SCREEN_FILE).read_text())
    assert result["input_size"] == 160 and result["crop"] == "cell"
    assert 0 < result["dbn_select"]["n"] <= 8 and result["dbn_select"]["crop_cell"] > 0
    assert "| dbn-select accuracy |" in capsys.readouterr().out


def test_the_screen_makes_a_validation_only_card_for_a_run_stopped_before_evaluation(candidate_run, tmp_path):
    """A converted run without a card (its evaluation, which scores the test sets too, was skipped): the screen
    calibrates a card on bccd val + pbc val only and says so."""
    from export.screen import SCREEN_FILE, main

    stopped = tmp_path / "stopped"
    shutil.copytree(candidate_run.path, stopped)
    (stopped / RUN_MODEL / "model_card.json").unlink()
    (stopped / SCREEN_FILE).unlink(missing_ok=True)
    assert main([str(stopped), "--per-class", "2", "--timing-runs", "3", "--per-set-val"]) == 0
    result = json.loads((stopped / SCREEN_FILE).read_text())
    assert result["thresholds"]["screening_card"] is True and result["crop"] == "cell"
    assert {name: figures["n"] for name, figures in result["validation"]["by_set"].items()} == {
        "bccd_val": 8,
        "pbc_val": 8,
    }
    assert not (stopped / RUN_MODEL / "model_card.json").exists()  # the screen writes only its own file


def test_a_soup_of_a_run_with_itself_is_that_run_and_converts(candidate_run, tmp_path):
    """export.soup on two copies of the smoke candidate (seeds told apart): the mean of identical weights is the
    same model, so the soup's validation figures must equal the ingredient's, measured in the same run; the soup
    folder then converts like a training run. Different recipes are refused."""
    ingredients = []
    for seed in (1, 2):
        copy = tmp_path / f"seed{seed}"
        shutil.copytree(candidate_run.path, copy)
        recipe = Recipe.load(copy / RUN_RECIPE_NAME)
        Recipe.from_dict({**recipe.to_dict(), "seed": seed}).save(copy / RUN_RECIPE_NAME)
        ingredients.append(copy)
    soup = tmp_path / "soup"
    command = [str(EXPORT_PYTHON), "-m", "export.soup", *map(str, ingredients), "--work", str(soup)]
    result = subprocess.run([*command, "--version", "soup-test"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((soup / "train_report.json").read_text())
    (first, second) = report["soup"]["ingredients"]
    assert report["smoke"] and report["selected_epoch"] == "soup"
    assert report["history"][0]["val_macro_f1"] == pytest.approx(first["val_macro_f1"], abs=1e-9)
    assert (first["seed"], second["seed"]) == (1, 2) and Recipe.load(soup / RUN_RECIPE_NAME).version == "soup-test"
    run_export("convert", "--work", str(soup))
    assert (soup / RUN_MODEL / "hematovision.onnx").is_file()

    other = Recipe.load(ingredients[1] / RUN_RECIPE_NAME)
    Recipe.from_dict({**other.to_dict(), "dropout": 0.5}).save(ingredients[1] / RUN_RECIPE_NAME)
    refused = subprocess.run(
        [*command[:-1], str(tmp_path / "refused"), "--version", "x"], cwd=ROOT, capture_output=True, text=True
    )
    assert refused.returncode != 0 and "differ in dropout" in refused.stderr
