"""export.screen: a candidate run's validation-only figures, on the stand-in model and a tiny synthetic dbn tree.

The figures of a random model mean nothing; these tests check what is read (dbn-select only, the selected epoch),
how the card is completed from the recipe, the flag bookkeeping and the 160-vs-224 rule.
"""

import json
import shutil

import pytest
from export_helpers import ROOT
from PIL import Image

from export.data import CLASSES, Sample, dbn_split_of, read_groups
from export.recipe import RUN_RECIPE_NAME, Recipe
from export.screen import (
    MIN_BCCD_VAL_ORIGINALS,
    MIN_DBN_SELECT_ACCURACY,
    MIN_PBC_VAL_ACCURACY,
    SCREEN_FILE,
    main,
    originals_figures,
    run_card,
    screened_out,
    select_figures,
    size_choice,
    validation_figures,
)
from tests import fakes

CANDIDATE = ROOT / "export" / "recipes" / "2.0.0-candidate-160.json"


@pytest.fixture
def fake_run(tmp_path, fake_model_dir):
    """A finished cell-crop run folder whose model is the stand-in (224 px), its card without the crop fields."""
    run = tmp_path / "run"
    shutil.copytree(fake_model_dir, run / "model")
    recipe = Recipe.load(CANDIDATE)
    Recipe.from_dict({**recipe.to_dict(), "input_size": 224}).save(run / RUN_RECIPE_NAME)
    history = [
        {"epoch": 1, "val_macro_f1": 0.90, "val_accuracy": 0.91},
        {"epoch": 2, "val_macro_f1": 0.95, "val_accuracy": 0.96},
        {"epoch": 3, "val_macro_f1": 0.94, "val_accuracy": 0.97},
    ]
    (run / "train_report.json").write_text(json.dumps({"selected_epoch": 2, "history": history}))
    return run


@pytest.fixture
def dbn_tree(tmp_path):
    """dbn/<CLASS>/<n>.jpg: smear-like pictures in dbn-select, and files that are not images in dbn-report (any
    attempt to score one would fail)."""
    root = tmp_path / "data"
    selected = 0
    for label, name in enumerate(CLASSES):
        folder = root / "dbn" / name
        folder.mkdir(parents=True)
        for i in range(1, 9):
            file_name = f"{label}{i:02d}.jpg"
            if dbn_split_of(file_name) == "select":
                (folder / file_name).write_bytes(fakes.synthetic_cell(seed=10 * label + i))
                selected += 1
            else:
                (folder / file_name).write_bytes(b"dbn-report: never read by the screen")
    return root, selected


def test_validation_figures_are_the_selected_epochs(fake_run):
    figures = validation_figures(fake_run)
    assert figures["selected_epoch"] == 2
    assert figures["val_macro_f1"] == 0.95 and figures["val_accuracy"] == 0.96


def test_card_of_an_older_run_is_completed_from_its_recipe(fake_run):
    card = run_card(fake_run, Recipe.load(fake_run / RUN_RECIPE_NAME))
    assert card["input"]["crop"] == "cell" and card["input"]["crop_um"] == 28.0
    assert card["localiser"]["version"]
    assert "crop" not in json.loads((fake_run / "model" / "model_card.json").read_text())["input"]  # not rewritten


def test_figures_count_the_models_flags_apart_from_the_localisers():
    answers = [
        {"label": 0, "predicted": 0, "reasons": [], "crop": "cell"},
        {"label": 1, "predicted": 0, "reasons": ["low_confidence"], "crop": "cell"},
        {"label": 1, "predicted": 1, "reasons": ["multiple_cells"], "crop": "cell"},
        {"label": 3, "predicted": 3, "reasons": ["out_of_distribution", "no_cell"], "crop": "frame"},
    ]
    figures = select_figures(answers)
    assert figures["n"] == 4 and figures["accuracy"] == 0.75
    assert figures["flagged_fraction"] == 0.5  # low_confidence and out_of_distribution only
    assert figures["accuracy_unflagged"] == 1.0
    assert figures["flag_reasons"] == {"low_confidence": 1, "out_of_distribution": 1}
    assert figures["cell_count_flags"] == {"multiple_cells": 1, "no_cell": 1}
    assert figures["per_class_recall"]["LYMPHOCYTE"] == 0.5 and figures["crop_cell"] == 3


def test_screen_scores_dbn_select_only_and_writes_its_file(fake_run, dbn_tree, capsys):
    data, selected = dbn_tree
    assert 0 < selected < 32  # both halves are present in the tree
    assert main([str(fake_run), "--data", str(data), "--timing-runs", "3"]) == 0
    result = json.loads((fake_run / SCREEN_FILE).read_text())
    assert result["dbn_select"]["n"] == selected
    assert result["crop"] == "cell" and result["input_size"] == 224
    assert result["session_run_ms"]["threads"] == 1 and result["session_run_ms"]["batch"] == 1
    assert result["validation"]["val_macro_f1"] == 0.95
    assert ("dbn-select accuracy" in " ".join(result["screened_out"])) == (
        result["dbn_select"]["accuracy"] < MIN_DBN_SELECT_ACCURACY
    )
    printed = capsys.readouterr().out
    assert "| dbn-select accuracy |" in printed and "| val macro-F1 (bccd+pbc val) | 0.9500 |" in printed


def _result(size, dbn, f1):
    return {"input_size": size, "dbn_select": {"accuracy": dbn}, "validation": {"val_macro_f1": f1}}


@pytest.mark.parametrize(
    ("large", "winner"),
    [((0.95, 0.96), 224), ((0.95, 0.945), 160), ((0.905, 0.96), 160)],
)
def test_the_larger_input_wins_only_by_more_than_a_point_on_both(large, winner):
    choice = size_choice([_result(160, 0.90, 0.94), _result(224, *large)])
    assert choice.endswith(f"-> {winner} px (the larger input needs > 0.01 on both; docs/experiments.md, step 2)")
    assert size_choice([_result(160, 0.9, 0.9)]) is None


def test_bccd_val_is_counted_per_original_smear():
    """Two eosinophil originals from the committed grouping: one all right, one right on 1 of its 3 images."""
    by_group = {}
    for key, group in read_groups().items():
        if key.startswith("TRAIN/EOSINOPHIL/"):
            by_group.setdefault(group, []).append(key)
    first, second = [keys for keys in by_group.values() if len(keys) >= 3][:2]
    eosinophil = CLASSES.index("EOSINOPHIL")
    samples = [Sample(ROOT / key, eosinophil, "bccd", "val") for key in first[:3] + second[:3]]
    predicted = [eosinophil] * 3 + [eosinophil, CLASSES.index("NEUTROPHIL"), CLASSES.index("NEUTROPHIL")]
    answers = [{"label": eosinophil, "predicted": p} for p in predicted]
    figures = originals_figures(samples, answers)
    assert figures["EOSINOPHIL"] == {"originals": 2, "mostly_right": 1}
    assert figures["NEUTROPHIL"] == {"originals": 0, "mostly_right": 0}


def _validation(originals_right: int, pbc_accuracy: float) -> dict:
    """bccd val as 49 originals of which originals_right are mostly right, and pbc val's accuracy."""
    originals = {"EOSINOPHIL": {"originals": 13, "mostly_right": originals_right - 36}}
    originals["NEUTROPHIL"] = {"originals": 36, "mostly_right": 36}
    return {"by_set": {"bccd_val": {"originals": originals}, "pbc_val": {"accuracy": pbc_accuracy}}}


@pytest.mark.parametrize(
    ("originals_right", "pbc", "dbn", "missed"),
    [
        (MIN_BCCD_VAL_ORIGINALS, MIN_PBC_VAL_ACCURACY, MIN_DBN_SELECT_ACCURACY, []),
        (MIN_BCCD_VAL_ORIGINALS - 1, 0.99, 0.95, ["bccd val originals"]),
        (49, MIN_PBC_VAL_ACCURACY - 0.001, 0.95, ["pbc val accuracy"]),
        (49, 0.99, MIN_DBN_SELECT_ACCURACY - 0.001, ["dbn-select accuracy"]),
        (40, 0.9, 0.5, ["bccd val originals", "pbc val accuracy", "dbn-select accuracy"]),
    ],
)
def test_a_candidate_is_screened_out_below_any_floor(originals_right, pbc, dbn, missed):
    reasons = screened_out(_validation(originals_right, pbc), {"accuracy": dbn})
    assert [next(m for m in missed if reason.startswith(m)) for reason in reasons] == missed


def test_without_the_sets_scored_apart_the_screen_says_it_cannot_judge_them():
    reasons = screened_out({"val_macro_f1": 0.99}, {"accuracy": 0.99})
    assert reasons == ["bccd val originals and pbc val not scored (run with --per-set-val)"]


def test_perturbed_validation_scores_every_perturbation_of_validation_sets_only(fake_run, tmp_path, capsys):
    """--perturbed: each validation set under each perturbation of the robustness table, through the serving
    decode; never a test image (the test sets of the tree are files that cannot be decoded)."""
    from export.perturb import ENLARGEMENTS, PERTURBATIONS
    from export.screen import PERTURBED_PER_CLASS

    data = tmp_path / "shared"
    groups = read_groups()
    for label, name in enumerate(CLASSES):
        for i in range(1, 9):  # dbn: select decodable, report not
            file_name = f"{label}{i:02d}.jpg"
            folder = data / "dbn" / name
            folder.mkdir(parents=True, exist_ok=True)
            select = dbn_split_of(file_name) == "select"
            (folder / file_name).write_bytes(fakes.synthetic_cell(seed=label * 10 + i) if select else b"report")
    # bccd TRAIN: one image of two groups per class (val takes some groups); TEST and pbc: not images
    for label, name in enumerate(CLASSES):
        train = data / "bccd" / "TRAIN" / name
        train.mkdir(parents=True)
        for file_name in [f for f, g in groups.items() if f.startswith(f"TRAIN/{name}/")][:40]:
            (train / file_name.rsplit("/", 1)[1]).write_bytes(fakes.synthetic_cell(seed=label))
        for test in ("TEST", "TEST_SIMPLE"):
            (data / "bccd" / test / name).mkdir(parents=True)
            (data / "bccd" / test / name / "x.jpeg").write_bytes(b"test: never read")
        (data / "pbc" / name).mkdir(parents=True)
        for i in range(12):
            (data / "pbc" / name / f"{i}.jpg").write_bytes(fakes.synthetic_cell(seed=100 + i))
    assert main([str(fake_run), "--data", str(data), "--timing-runs", "3", "--per-class", "1", "--perturbed"]) == 0
    figures = json.loads((fake_run / SCREEN_FILE).read_text())["perturbed_validation"]
    assert set(figures["by_set"]) == set(PERTURBED_PER_CLASS)
    for per_set in figures["by_set"].values():
        assert set(per_set["accuracy"]) == set(PERTURBATIONS)
        assert all(0.0 <= a <= 1.0 for a in per_set["accuracy"].values())
        # the enlargements also say how many cells stay in the kept window, and the accuracy on those
        assert set(per_set["cell_in_frame"]) == set(ENLARGEMENTS)
        assert all(0.0 <= kept["share"] <= 1.0 for kept in per_set["cell_in_frame"].values())
    out = capsys.readouterr().out
    assert "| perturbed val: mean accuracy |" in out
    assert "|   scale_x3, cell in frame (share) |" in out


def test_a_cell_off_the_centre_is_out_of_the_enlargements_window(tmp_path):
    """cell_in_frame: the localiser's cell on the original, inside or outside the central 1/k each enlargement keeps."""
    from export.perturb import ENLARGEMENTS
    from export.screen import cell_in_frame
    from tests.unit.test_localiser import field  # a synthetic smear with a white cell where asked

    centred, corner = tmp_path / "centred.png", tmp_path / "corner.png"
    Image.fromarray(field(wbc=((320, 240),))).save(centred)
    Image.fromarray(field(wbc=((90, 80),))).save(corner)
    inside = cell_in_frame([Sample(centred, 0, "bccd", "val"), Sample(corner, 0, "bccd", "val")])
    assert set(inside) == set(ENLARGEMENTS)
    assert all(list(flags) == [True, False] for flags in inside.values())
