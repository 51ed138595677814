"""python -m export.screen RUN [RUN...]: model 2.0's screening figures of candidate runs, from validation data only.

The decision rule (docs/experiments.md, "Model 2.0: plan" and the session-11 screening rule) chooses among candidates
on validation alone: bccd val by original smear, pbc val per image (both with --per-set-val), dbn-select, the third
lab's selection half (export.data.dbn_splits), and the selected epoch's macro-F1 on bccd val + pbc val (the run's
train_report.json) to break ties. This command computes exactly those, through the serving Classifier with the run's
ONNX model and card, plus each model's session.run time at batch 1 on 1 thread. It never reads bccd TEST/TEST_SIMPLE,
pbc test or dbn-report: those are measured only for the adopted model (`make evaluate`).

Per run it prints one column of a side-by-side table and writes RUN/screen.json. No TensorFlow: runs in .venv.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from export.data import CLASSES, DATA_ROOT, Sample, dbn_splits
from export.recipe import RUN_RECIPE_NAME, Recipe
from export.robustness import CALIBRATION_PER_CLASS

RUN_MODEL = "model"  # export/promote.RUN_MODEL (not imported: promote is the writer of shipped files)
SCREEN_FILE = "screen.json"
# The screen-out rule (docs/experiments.md, "the screening rule for bccd val", session 11): below any floor a candidate
# is dropped. bccd val holds 49 independent originals, each augmented ~33 times, so it is judged by originals (model
# 1.2.0: 45 of 49 mostly right); pbc val per image (1.2.0: 0.997); dbn-select, the third lab, is the main floor.
MIN_BCCD_VAL_ORIGINALS = 45
MIN_PBC_VAL_ACCURACY = 0.985
MIN_DBN_SELECT_ACCURACY = 0.90
# 160 vs 224: the larger input wins only if it is better by more than this on both figures (step 2).
LARGER_INPUT_MARGIN = 0.01
MODEL_REASONS = ("low_confidence", "out_of_distribution")  # the card's own rule (logic/verdict.py)
CELL_COUNT_REASONS = ("multiple_cells", "no_cell")  # the localiser's advice about the photo, reported apart
TIMING_RUNS = 50
TIMING_WARMUP = 5
# --perturbed: the validation images under every perturbation of the robustness table (export/perturb.py): dbn-select
# whole, bccd val and pbc val by the calibration's fixed subsamples.
PERTURBED_PER_CLASS = {**CALIBRATION_PER_CLASS, "dbn_select": None}


def validation_figures(run: Path) -> dict:
    """The selected epoch's validation figures (bccd val + pbc val), as the run's training recorded them."""
    report = json.loads((run / "train_report.json").read_text())
    selected = report["selected_epoch"]
    (entry,) = [h for h in report["history"] if h["epoch"] == selected]
    return {
        "sets": "bccd_val + pbc_val",
        "selected_epoch": selected,
        "val_macro_f1": entry["val_macro_f1"],
        "val_accuracy": entry["val_accuracy"],
    }


def first_per_class(samples: list[Sample], per_class: int | None) -> list[Sample]:
    """All samples, or the first n of each class (tests)."""
    if per_class is None:
        return samples
    return [s for label in range(len(CLASSES)) for s in [s for s in samples if s.label == label][:per_class]]


def screening_card(run: Path, recipe: Recipe, data_root: Path = DATA_ROOT, per_class: int | None = None) -> dict:
    """A card for a converted run that was stopped before its evaluation (which also scores the test sets, and a
    candidate needs none of that): the crop contract from its recipe, and thresholds by model 1.2.0's rule
    (export.evaluate.choose_thresholds) on bccd val + pbc val only, so dbn-select stays out of the calibration.
    per_class: the first n validation images of each class (tests)."""
    from export.card import loading_card
    from export.data import all_splits
    from export.evaluate import THRESHOLD_SETS, choose_thresholds, load_arrays, onnx_outputs
    from hematovision.logic.inference import Model, sha256_file

    card = {**loading_card(recipe), "version": recipe.version}
    model = Model(run / RUN_MODEL, intra_op_threads=2, card=card)
    named = all_splits(data_root)
    sets = [first_per_class(named[name], per_class) for name in THRESHOLD_SETS]
    outputs = [onnx_outputs(model, load_arrays(samples, recipe.input_size, recipe)) for samples in sets]
    card["uncertainty"] = {**choose_thresholds(outputs), "screening_card": True}
    card["sha256"] = sha256_file(run / RUN_MODEL / "hematovision.onnx")
    return card


def run_card(run: Path, recipe: Recipe, data_root: Path = DATA_ROOT, per_class: int | None = None) -> dict:
    """The run's card, with the crop fields completed from its recorded recipe where the card predates them (runs
    evaluated before export/card.py wrote them); a screening card where the run was converted but not evaluated."""
    from export.card import crop_fields

    card_file = run / RUN_MODEL / "model_card.json"
    if not card_file.is_file():
        return screening_card(run, recipe, data_root, per_class)
    card = copy.deepcopy(json.loads(card_file.read_text()))
    input_fields, localiser = crop_fields(recipe)
    for key, value in input_fields.items():
        card.setdefault("input", {}).setdefault(key, value)
    if localiser is not None:
        card.setdefault("localiser", localiser)
    return card


def classify_samples(classifier, samples: list[Sample]) -> list[dict]:
    """Each sample through the serving classify path (as /v1/classify, with the localiser's flags): its label, the
    verdict's reasons and what the model saw ("cell" or "frame", from the card's crop)."""
    from hematovision.logic.evaluation import classify_files

    answers = []
    outcomes = classify_files(classifier, [s.path for s in samples], localise=True)
    for sample, (path, item) in zip(samples, outcomes, strict=True):
        if not item.ok:
            raise RuntimeError(f"a validation image could not be classified: {path}: {item.error.code}")
        answers.append(
            {
                "label": sample.label,
                "predicted": item.verdict.label_index,
                "reasons": list(item.verdict.uncertain_reasons),
                "crop": item.crop,
            }
        )
    return answers


def select_figures(answers: list[dict]) -> dict:
    """Accuracy, macro-F1, per-class recall, the model's own flagged fraction and the accuracy of its unflagged
    answers; the localiser's cell-count flags and the crops counted apart."""
    from hematovision.logic.metrics import compute_metrics

    labels = np.array([a["label"] for a in answers])
    predicted = np.array([a["predicted"] for a in answers])
    flagged = np.array([any(r in MODEL_REASONS for r in a["reasons"]) for a in answers], dtype=bool)
    correct = labels == predicted
    metrics = compute_metrics(labels, predicted, CLASSES, uncertain=flagged)
    return {
        "n": metrics["n"],
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "flagged_fraction": metrics["uncertain_fraction"],
        "accuracy_unflagged": float(correct[~flagged].mean()) if (~flagged).any() else None,
        "flag_reasons": {r: sum(r in a["reasons"] for a in answers) for r in MODEL_REASONS},
        "cell_count_flags": {r: sum(r in a["reasons"] for a in answers) for r in CELL_COUNT_REASONS},
        "per_class_recall": {c: metrics["per_class"][c]["recall"] for c in CLASSES},
        "per_class_n": {c: metrics["per_class"][c]["support"] for c in CLASSES},
        "crop_cell": sum(a["crop"] == "cell" for a in answers),
        "confusion_matrix": metrics["confusion_matrix"],
    }


def originals_figures(samples: list[Sample], answers: list[dict]) -> dict:
    """bccd val per original smear: its images are augmentations of a few dozen originals (export/groups.py), so
    per-image figures move in blocks of ~33 images. Per class: how many originals, and on how many of them most
    images are right - the number of independent cells the per-image recall really rests on."""
    from export.data import read_groups

    groups = read_groups()
    right: dict[str, list[bool]] = {}
    for sample, answer in zip(samples, answers, strict=True):
        key = groups[f"TRAIN/{CLASSES[sample.label]}/{sample.path.name}"]
        right.setdefault(key, []).append(answer["predicted"] == answer["label"])
    by_class = {}
    for name in CLASSES:
        votes = [np.mean(v) for k, v in right.items() if k.startswith(f"{name}/")]
        by_class[name] = {"originals": len(votes), "mostly_right": int(sum(v > 0.5 for v in votes))}
    return by_class


def session_run_ms(model, runs: int = TIMING_RUNS, warmup: int = TIMING_WARMUP) -> dict:
    """Median and p90 of session.run for one image (the serving outputs: probabilities and the OOD score; with
    test_time "mirror", the run of the image and its mirror that serving makes), with the machine's load average
    beside it: a busy machine inflates the figure."""
    from hematovision.logic.inference import INPUT_NAME, OUTPUT_OOD, OUTPUT_PROBABILITIES

    size = model.input_size
    passes = 2 if model.test_time == "mirror" else 1
    batch = np.random.default_rng(0).integers(0, 256, (passes, size, size, 3), dtype=np.uint8)
    names = [OUTPUT_PROBABILITIES] + ([OUTPUT_OOD] if model.has_ood else [])
    for _ in range(warmup):
        model.session.run(names, {INPUT_NAME: batch})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        model.session.run(names, {INPUT_NAME: batch})
        times.append((time.perf_counter() - start) * 1000.0)
    return {
        "median": round(statistics.median(times), 2),
        "p90": round(float(np.percentile(times, 90)), 2),
        "runs": runs,
        "batch": 1,
        "passes": passes,
        "threads": model.threads,
        "input_size": size,
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def screen_run(
    run: Path,
    data_root: Path = DATA_ROOT,
    per_class: int | None = None,
    timing_runs: int = TIMING_RUNS,
    per_set_val: bool = False,
    perturbed: bool = False,
):
    """One candidate's screening figures (validation only); per_class: the first n images of each class of every set
    scored (tests); per_set_val: also bccd val and pbc val apart, through the serving classify (the run's report
    has only their union)."""
    from hematovision.logic.classifier import Classifier
    from hematovision.logic.inference import Model

    run = Path(run)
    recipe = Recipe.load(run / RUN_RECIPE_NAME)
    card = run_card(run, recipe, Path(data_root), per_class)
    crop_um = card["input"].get("crop_um") if card["input"].get("crop", "frame") == "cell" else None
    samples = dbn_splits(Path(data_root) / "dbn")["select"]
    samples = first_per_class(samples, per_class)
    # the guard of the decision rule: nothing here may score a dbn-report image
    assert all(s.split == "select" for s in samples), "screen scores dbn-select only"
    model = Model(run / RUN_MODEL, intra_op_threads=2, card=card)
    classifier = Classifier(model)
    figures = select_figures(classify_samples(classifier, samples))
    timing = session_run_ms(Model(run / RUN_MODEL, intra_op_threads=1, card=card), runs=timing_runs)
    validation = validation_figures(run)
    if per_set_val:
        from export.data import all_splits

        named = all_splits(Path(data_root))
        validation["by_set"] = {}
        for name in ("bccd_val", "pbc_val"):
            samples_of_set = first_per_class(named[name], per_class)
            answers = classify_samples(classifier, samples_of_set)
            validation["by_set"][name] = select_figures(answers)
            if name == "bccd_val":
                validation["by_set"][name]["originals"] = originals_figures(samples_of_set, answers)
    result = {
        "run": str(run),
        "version": recipe.version,
        "input_size": recipe.input_size,
        "crop": card["input"].get("crop", "frame"),
        "crop_um": crop_um,
        "thresholds": {
            k: card["uncertainty"].get(k)
            for k in ("confidence_threshold", "ood_similarity_threshold", "chosen_on", "screening_card")
        },
        "validation": validation,
        "dbn_select": figures,
        "session_run_ms": timing,
        "screened_out": screened_out(validation, figures),
        "perturbed_validation": perturbed_figures(classifier, Path(data_root), per_class) if perturbed else None,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return result


def cell_in_frame(samples: list[Sample]) -> dict[str, np.ndarray]:
    """Per enlargement row (export.perturb.ENLARGEMENTS): whether each sample's white cell (the centre of the
    localiser's first box on the original; False with no box) stays inside the central 1/k that the row keeps."""
    from export.perturb import ENLARGEMENTS, stays_in_frame
    from hematovision.logic.localiser import locate
    from hematovision.logic.preprocessing import decode_image

    found = [locate(decode_image(sample.path.read_bytes())) for sample in samples]
    return {
        name: np.array([stays_in_frame(f.width, f.height, f.boxes[0] if f.boxes else None, k) for f in found], bool)
        for name, k in ENLARGEMENTS.items()
    }


def perturbed_figures(classifier, data_root: Path, per_class: int | None = None) -> dict:
    """Accuracy (the top class, no threshold) of each validation set of PERTURBED_PER_CLASS under each perturbation
    of the robustness table, through the serving decode (export.robustness.perturbed_raw), and the mean over the
    perturbations, per set and over the sets. For the enlargements, which keep the central 1/k of the photo, also the
    share of images whose white cell stays in that window and the accuracy on those (cell_in_frame): elsewhere the
    cell is cut out of the photo. per_class: that many images per class of every set (tests)."""
    from export.data import all_splits, dbn_named, fixed_subsample
    from export.perturb import PERTURBATIONS
    from export.robustness import perturbed_raw

    named = {**all_splits(Path(data_root)), **dbn_named(Path(data_root))}
    by_set = {}
    for name, taken in PERTURBED_PER_CLASS.items():
        samples = fixed_subsample(named[name], taken if per_class is None else per_class)
        assert all(s.split != "report" for s in samples), "the screen never scores dbn-report"
        raws = perturbed_raw(classifier, samples, list(PERTURBATIONS))
        right = {p: raw.probabilities.argmax(axis=1) == raw.labels for p, raw in raws.items()}
        accuracy = {p: float(np.mean(r)) for p, r in right.items()}
        in_frame = {
            p: {
                "share": float(np.mean(inside)),
                "accuracy": float(np.mean(right[p][inside])) if inside.any() else None,
            }
            for p, inside in cell_in_frame(samples).items()
        }
        by_set[name] = {
            "n": len(samples),
            "accuracy": accuracy,
            "mean": float(np.mean(list(accuracy.values()))),
            "cell_in_frame": in_frame,
        }
    return {"by_set": by_set, "mean": float(np.mean([figures["mean"] for figures in by_set.values()]))}


def originals_right(validation: dict) -> int | None:
    """bccd val: on how many originals most images are right (None where the sets were not scored apart)."""
    originals = validation.get("by_set", {}).get("bccd_val", {}).get("originals")
    return None if originals is None else sum(c["mostly_right"] for c in originals.values())


def screened_out(validation: dict, dbn_select: dict) -> list[str]:
    """The floors a candidate misses; the bccd val and pbc val floors need the sets scored apart (--per-set-val)."""
    reasons = []
    right = originals_right(validation)
    if right is None:
        reasons.append("bccd val originals and pbc val not scored (run with --per-set-val)")
    else:
        if right < MIN_BCCD_VAL_ORIGINALS:
            reasons.append(f"bccd val originals mostly right {right} < {MIN_BCCD_VAL_ORIGINALS}")
        pbc = validation["by_set"]["pbc_val"]["accuracy"]
        if pbc < MIN_PBC_VAL_ACCURACY:
            reasons.append(f"pbc val accuracy {pbc:.3f} < {MIN_PBC_VAL_ACCURACY}")
    if dbn_select["accuracy"] < MIN_DBN_SELECT_ACCURACY:
        reasons.append(f"dbn-select accuracy {dbn_select['accuracy']:.3f} < {MIN_DBN_SELECT_ACCURACY}")
    return reasons


def _pct(value) -> str:
    return "—" if value is None else f"{value:.3f}"


def table(results: list[dict]) -> str:
    """The candidates side by side, one column each."""
    rows = [
        ("run", lambda r: Path(r["run"]).name),
        ("version", lambda r: r["version"]),
        ("input size (px)", lambda r: str(r["input_size"])),
        ("crop", lambda r: r["crop"] + (f" {r['crop_um']:g} um" if r["crop_um"] else "")),
        ("selected epoch", lambda r: str(r["validation"]["selected_epoch"])),
        ("val macro-F1 (bccd+pbc val)", lambda r: f"{r['validation']['val_macro_f1']:.4f}"),
        ("val accuracy", lambda r: f"{r['validation']['val_accuracy']:.4f}"),
        *[
            (
                f"{name} accuracy / EOS recall",
                lambda r, name=name: (
                    f"{_pct(r['validation']['by_set'][name]['accuracy'])} / "
                    f"{_pct(r['validation']['by_set'][name]['per_class_recall']['EOSINOPHIL'])}"
                    if "by_set" in r["validation"]
                    else "-"
                ),
            )
            for name in ("bccd_val", "pbc_val")
        ],
        (
            "bccd val originals mostly right, EOS / all",
            lambda r: (
                "{e[mostly_right]} of {e[originals]} / {right} of {total}".format(
                    e=r["validation"]["by_set"]["bccd_val"]["originals"]["EOSINOPHIL"],
                    right=sum(c["mostly_right"] for c in r["validation"]["by_set"]["bccd_val"]["originals"].values()),
                    total=sum(c["originals"] for c in r["validation"]["by_set"]["bccd_val"]["originals"].values()),
                )
                if "originals" in r["validation"].get("by_set", {}).get("bccd_val", {})
                else "-"
            ),
        ),
        ("dbn-select n", lambda r: str(r["dbn_select"]["n"])),
        ("dbn-select accuracy", lambda r: _pct(r["dbn_select"]["accuracy"])),
        ("dbn-select macro-F1", lambda r: _pct(r["dbn_select"]["macro_f1"])),
        ("flagged (model's rule)", lambda r: _pct(r["dbn_select"]["flagged_fraction"])),
        ("accuracy if not flagged", lambda r: _pct(r["dbn_select"]["accuracy_unflagged"])),
        *[
            (
                f"recall {c[:3]} (n)",
                lambda r, c=c: f"{_pct(r['dbn_select']['per_class_recall'][c])} ({r['dbn_select']['per_class_n'][c]})",
            )
            for c in CLASSES
        ],
        (
            "low_confidence / ood",
            lambda r: "{low_confidence} / {out_of_distribution}".format(**r["dbn_select"]["flag_reasons"]),
        ),
        (
            "multiple_cells / no_cell",
            lambda r: "{multiple_cells} / {no_cell}".format(**r["dbn_select"]["cell_count_flags"]),
        ),
        ("crop == cell", lambda r: f"{r['dbn_select']['crop_cell']} of {r['dbn_select']['n']}"),
        (
            "session.run ms (median, one image, 1 thr)",
            lambda r: (
                f"{r['session_run_ms']['median']:.2f}"
                + (" (2 passes: mirror)" if r["session_run_ms"].get("passes", 1) == 2 else "")
            ),
        ),
        (
            "  p90 / load avg",
            lambda r: f"{r['session_run_ms']['p90']:.2f} / {r['session_run_ms']['load_average_1min']}",
        ),
        ("screened out", lambda r: "; ".join(r["screened_out"]) or "no"),
    ]
    if any(r.get("perturbed_validation") for r in results):
        rows += perturbed_rows()
    lines = [
        "| figure | " + " | ".join(Path(r["run"]).name for r in results) + " |",
        "|---|" + "---|" * len(results),
    ]
    lines += [f"| {label} | " + " | ".join(cell(r) for r in results) + " |" for label, cell in rows[1:]]
    return "\n".join(lines)


def perturbed_rows() -> list[tuple]:
    """The --perturbed rows of the table: the mean accuracy over the perturbations, over the sets and per set, then
    each perturbation's accuracy per set (bccd val / pbc val / dbn-select), then each enlargement's accuracy on the
    images whose white cell stays in the kept window (and their share)."""
    from export.perturb import ENLARGEMENTS, PERTURBATIONS

    def cell(r, value):
        figures = r.get("perturbed_validation")
        return "-" if not figures else value(figures)

    names = list(PERTURBATIONS)
    sets = list(PERTURBED_PER_CLASS)

    def in_frame(figures: dict, name: str) -> str:
        parts = []
        for s in sets:
            kept = figures["by_set"][s].get("cell_in_frame", {}).get(name)
            accuracy = "-" if kept is None or kept["accuracy"] is None else f"{kept['accuracy']:.2f}"
            parts.append("-" if kept is None else f"{accuracy} ({kept['share']:.0%})")
        return " / ".join(parts)

    return [
        ("perturbed val: mean accuracy", lambda r: cell(r, lambda f: f"{f['mean']:.3f}")),
        (
            "  per set: " + " / ".join(sets),
            lambda r: cell(r, lambda f: " / ".join(f"{f['by_set'][name]['mean']:.3f}" for name in sets)),
        ),
        *[
            (
                f"  {name}",
                lambda r, name=name: cell(
                    r, lambda f: " / ".join(f"{f['by_set'][s]['accuracy'][name]:.2f}" for s in sets)
                ),
            )
            for name in names
        ],
        *[
            (f"  {name}, cell in frame (share)", lambda r, name=name: cell(r, lambda f: in_frame(f, name)))
            for name in ENLARGEMENTS
        ],
    ]


def size_choice(results: list[dict]) -> str | None:
    """The plan's 160-vs-224 rule, when exactly two input sizes are screened: the smaller wins unless the larger is
    better by more than LARGER_INPUT_MARGIN on dbn-select accuracy and on validation macro-F1."""
    sizes = sorted({r["input_size"] for r in results})
    if len(sizes) != 2:
        return None
    small = [r for r in results if r["input_size"] == sizes[0]]
    large = [r for r in results if r["input_size"] == sizes[1]]

    def mean(group, key):
        return float(np.mean([key(r) for r in group]))

    dbn_gain = mean(large, lambda r: r["dbn_select"]["accuracy"]) - mean(small, lambda r: r["dbn_select"]["accuracy"])
    f1_gain = mean(large, lambda r: r["validation"]["val_macro_f1"]) - mean(
        small, lambda r: r["validation"]["val_macro_f1"]
    )
    winner = sizes[1] if dbn_gain > LARGER_INPUT_MARGIN and f1_gain > LARGER_INPUT_MARGIN else sizes[0]
    return (
        f"{sizes[1]} vs {sizes[0]} px: dbn-select accuracy {dbn_gain:+.3f}, val macro-F1 {f1_gain:+.3f} -> {winner} px "
        f"(the larger input needs > {LARGER_INPUT_MARGIN:g} on both; docs/experiments.md, step 2)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m export.screen", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", type=Path, help="finished run folders (python -m export all)")
    parser.add_argument("--data", type=Path, default=DATA_ROOT, help="folder holding dbn/")
    parser.add_argument("--per-class", type=int, default=None, help="only the first N dbn-select images per class")
    parser.add_argument("--timing-runs", type=int, default=TIMING_RUNS, help="session.run calls timed per model")
    parser.add_argument(
        "--per-set-val",
        action="store_true",
        help="also score bccd val and pbc val apart, which the screen-out rule needs (a few minutes more)",
    )
    parser.add_argument(
        "--perturbed",
        action="store_true",
        help="also the validation images under every perturbation of the robustness table (a few minutes more)",
    )
    args = parser.parse_args(argv)
    results = []
    for run in args.runs:
        if not (run / RUN_MODEL / "hematovision.onnx").is_file():
            raise SystemExit(f"{run} is not converted: {run / RUN_MODEL / 'hematovision.onnx'} is missing")
        result = screen_run(run, args.data, args.per_class, args.timing_runs, args.per_set_val, args.perturbed)
        (run / SCREEN_FILE).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {run / SCREEN_FILE}", flush=True)
        results.append(result)
    print(table(results))
    choice = size_choice(results)
    if choice:
        print(choice)
    if any(r["session_run_ms"]["load_average_1min"] > 0.5 for r in results):
        print("note: the machine was busy while timing (load average above): session.run times are inflated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
