"""model_card.json (machine-readable, served by GET /v1/model) and docs/model-card.md with its figures."""

from __future__ import annotations

import datetime as dt
import json
import platform
from pathlib import Path

from export.data import BCCD_GROUPS_FILE, BCCD_VAL_FRACTION, CLASSES, class_counts, read_groups, split_digest
from export.fields import with_interval
from export.recipe import RUN_RECIPE_NAME, Recipe
from hematovision.logic.inference import sha256_file
from hematovision.logic.localiser import LOCALISER_VERSION
from hematovision.logic.metrics import wilson_interval

REPO = Path(__file__).resolve().parents[1]
# The committed model's card: `python -m export.fields --card` writes its localisation section (write_localisation),
# and a card written for a new model carries that section over while the localiser version is the same.
COMMITTED_CARD = REPO / "functions" / "classifier" / "model" / "model_card.json"
# Written by `make bench` (bench/quantize.py): the int8 variant measured against the committed model. Only read here.
INT8_REPORT = REPO / "bench" / "results" / "int8_report.json"
NAME = "hematovision-wbc"
INTENDED_USE = (
    "Decision support for trained laboratory staff: suggests which of four white-blood-cell types "
    "(eosinophil, lymphocyte, monocyte, neutrophil) a single-cell microscope photo of a stained peripheral "
    "blood smear shows. It is not a diagnosis and not a medical device; every result must be reviewed by a "
    "qualified professional, and results flagged 'uncertain' need manual review."
)
LIMITATIONS = [
    "Trained on two public sets only (bccd: ~350 original smears, heavily augmented; pbc: healthy donors, one "
    "hospital, one scanner); other stains, scanners and magnifications may degrade it.",
    "Only four classes: basophils, blasts, immature granulocytes and abnormal cells are not recognised and will be "
    "forced into one of the four (the uncertainty flag catches some, not all, of them).",
    "Validation data (bccd TRAIN smears held out whole, and pbc) is somewhat optimistic about new bccd cells: it "
    "shares the TRAIN set's augmentation pipeline, and its bccd smears were grouped by a colour clustering "
    "(export/groups.py), not by a recorded identity; compare the val and TEST rows of the metrics.",
    "bccd TEST holds augmentations of only a few dozen original cells (its 620 monocytes come from 4 cells), so its "
    "per-class figures are noisy; TEST_SIMPLE holds the 71 un-augmented originals.",
]


def crop_fields(recipe: Recipe) -> tuple[dict, dict | None]:
    """The card's crop contract read by the serving code (logic/inference.Model): the input fields "crop",
    "crop_um", "normalise" and "test_time" (absent = "none"), and the "localiser" section ({"version"}) of a
    crop == "cell" model; a frame model (1.2.0) gets none, since an absent crop means the frame."""
    options = {name: value for name in ("normalise", "test_time") if (value := getattr(recipe, name)) != "none"}
    if recipe.crop != "cell":
        return options, None
    return {"crop": "cell", "crop_um": float(recipe.crop_um), **options}, {"version": LOCALISER_VERSION}


def loading_card(recipe: Recipe) -> dict:
    """The least card the serving Model needs to load a model exported from `recipe` before its own card exists:
    name, classes and the crop contract, so that the serving Classifier crops as it will for the finished card."""
    input_fields, localiser = crop_fields(recipe)
    card = {"name": NAME, "classes": list(CLASSES), "input": input_fields}
    if localiser:
        card["localiser"] = localiser
    return card


def preprocessing_text(recipe: Recipe) -> str:
    """How the serving code turns a photo into this model's input, in words."""
    from hematovision.logic.cell_crop import BACKGROUND_TARGET, BOX_CROP
    from hematovision.logic.localiser import RBC_DIAMETER_UM

    size = recipe.input_size
    decode = "decode (Pillow) -> apply EXIF orientation -> RGB (alpha composited on white) -> "
    mirror = (
        " -> the model's outputs averaged over the input and its left-right mirror (hematovision.logic.inference)"
        if recipe.test_time == "mirror"
        else ""
    )
    if recipe.crop != "cell":
        return (
            decode
            + f"resize to {size}x{size}, bilinear, aspect ratio not kept (hematovision.logic.preprocessing)"
            + mirror
        )
    return (
        decode + "locate the white cells (hematovision.logic.localiser) -> a square of "
        f"{recipe.crop_um:g} um centred on the best-scoring cell's box, measured with the red cells as the ruler "
        f"({RBC_DIAMETER_UM:g} um across), else {BOX_CROP:g} x the cell's box, padded with the image's border colour "
        "where it leaves the image "
        f"-> resize to {size}x{size}, bilinear (hematovision.logic.cell_crop.model_input); where no cell is found, "
        f"the whole frame resized to {size}x{size}"
        + (
            " -> each channel scaled so that its 90th percentile (the background) is "
            f"{BACKGROUND_TARGET:g} (hematovision.logic.cell_crop.balance_background)"
            if recipe.normalise == "background"
            else ""
        )
        + mirror
    )


def _json(value):
    return json.loads(json.dumps(value))


def write_card(
    out: Path,
    work: Path,
    data_root: Path,
    weights,
    named: dict,
    thresholds: dict,
    parity: dict,
    metrics: dict,
    non_blood: dict,
    seconds: float | None = None,
    load_average: float | None = None,
    robustness: dict | None = None,
    flagged: dict | None = None,
) -> dict:
    """The card of the model in `out`, trained in `work`: its version and recipe come from the run's recorded
    recipe (work/recipe.json), its training figures from work/train_report.json."""
    import onnx
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    onnx_path = out / "hematovision.onnx"
    train_report = json.loads((work / "train_report.json").read_text())
    recipe = Recipe.load(work / RUN_RECIPE_NAME)
    size = recipe.input_size
    weights_path = Path(weights) if weights and weights != "imagenet" else None
    input_fields, localiser = crop_fields(recipe)
    card = {
        "name": NAME,
        "version": recipe.version + ("-smoke" if train_report["smoke"] else ""),
        "sha256": sha256_file(onnx_path),
        "onnx_file": onnx_path.name,
        "onnx_bytes": onnx_path.stat().st_size,
        "classes": list(CLASSES),
        "input": {
            "name": "image",
            "dtype": "uint8",
            "shape": [None, size, size, 3],
            "colour": "RGB",
            "preprocessing": preprocessing_text(recipe),
            "scaling": "inside the graph: x / 127.5 - 1 (MobileNetV2)",
            **input_fields,
        },
        **({"localiser": localiser} if localiser else {}),
        "outputs": {
            "probabilities": "float32 [N, 4], softmax, class order as 'classes'",
            "cam": f"float32 [N, {size // 32}, {size // 32}, 4], class activation maps (classifier weights at each "
            "position of the last feature map)",
            "ood_similarity": "float32 [N], cosine similarity of the pooled features to the nearest training class "
            "centroid",
        },
        "uncertainty": thresholds,
        "metrics": _json(metrics),
        "non_blood_images": _json(non_blood),
        **({"flagged_summary": _json(flagged)} if flagged is not None else {}),
        **({"robustness": _json(robustness)} if robustness is not None else {}),
        **({"localisation": localisation} if (localisation := committed_localisation()) is not None else {}),
        "parity": _json(parity),
        "architecture": "MobileNetV2 1.0/224 (ImageNet) -> global average pooling -> dropout -> Dense(4) softmax",
        "training": {
            **recipe.card_training(train_report["selected_epoch"]),
            "train_counts": train_report["train_counts"],
            "validation_counts": train_report["val_counts"],
            "history": train_report["history"],
            "batchnorm_check": train_report["batchnorm_check"],
            "seconds": train_report["seconds"],
        },
        "data": {
            "bccd": {
                "manifest_sha256": sha256_file(Path(data_root) / "bccd" / "MANIFEST.csv"),
                "source": "Kaggle 'Blood Cell Images' dataset2-master (github.com/dhruvp/wbc-classification @ "
                "0b22eb2); smears from BCCD (MIT)",
            },
            "pbc": {
                "manifest_sha256": sha256_file(Path(data_root) / "pbc" / "MANIFEST.csv"),
                "source": "Acevedo et al. 2020, Data in Brief 30:105474 (CC BY 4.0), half of the 4-class images",
            },
            "splits": {
                name: {
                    "n": len(samples),
                    "counts": class_counts(samples),
                    "files_sha256": split_digest(samples, Path(data_root)),
                }
                for name, samples in sorted(named.items())
            },
            "split_rule": "bccd: TRAIN split into train/val by original smear: images are grouped by original with a "
            "colour-histogram clustering (export/groups.py; the _<i>_ in the file names is a shuffled batch "
            f"position, not the original), and {BCCD_VAL_FRACTION:.0%} of the groups of each class, ordered by "
            "sha256 of 'bccd/<group>', go to val; TEST and TEST_SIMPLE as given. pbc: 70/15/15 train/val/test "
            "by sha256 of 'pbc/<file name>' (export/data.py).",
            "bccd_train_groups": {
                "file": f"export/{BCCD_GROUPS_FILE.name}",
                "sha256": sha256_file(BCCD_GROUPS_FILE),
                "groups": len(set(read_groups().values())),
            },
        },
        "base_weights": {
            "source": "Google TF2 MobileNetV2 1.0/224 ImageNet (int8 PTQ .tflite from "
            "github.com/google-coral/test_data, Apache-2.0), dequantized to float32 and keyed by Keras layer name"
            if weights_path
            else "keras.applications 'imagenet'",
            "file": weights_path.name if weights_path else "imagenet",
            "sha256": sha256_file(weights_path) if weights_path else None,
        },
        "tools": {
            "tensorflow": tf.__version__,
            "keras": train_report["versions"]["keras"],
            "tf2onnx": tf2onnx.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "python": platform.python_version(),
        },
        "reproduce": "make train (= python -m export all --work build/runs/make-train-<UTC time>: train, convert, "
        "evaluate into a fresh run folder; then python -m export promote <run folder>); make evaluate (= python -m "
        "export evaluate) re-runs only the evaluation of the committed model and rewrites this card; hematovision "
        "evaluate <DIR> --json re-measures one folder",
        "created_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "evaluation_seconds": seconds,
        **({"evaluation_load_average": load_average} if load_average is not None else {}),
        "intended_use": INTENDED_USE,
        "not_a_diagnosis": True,
        "limitations": LIMITATIONS,
        "citation": "Cite Acevedo et al. 2020 for pbc; credit BCCD (Shenggan/BCCD_Dataset) for bccd.",
    }
    (out / "model_card.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def committed_localisation(path: Path = COMMITTED_CARD) -> dict | None:
    """The committed card's localisation figures, if they were measured with this code's localiser version (the
    localiser is the service's, not the model's: a new model keeps them, a new localiser needs them re-measured)."""
    if not path.is_file():
        return None
    section = json.loads(path.read_text()).get("localisation")
    if section is None or section.get("localiser_version") != LOCALISER_VERSION:
        return None
    return section


def write_localisation(section: dict, path: Path = COMMITTED_CARD, docs: Path = REPO / "docs") -> dict:
    """Put the localisation section (export.fields.card_section) into the card at `path`, after its robustness
    section, and re-render docs/model-card.md from it (its plots stay as they are: no figure of them moves)."""
    card = json.loads(path.read_text())
    card.pop("localisation", None)
    keys = list(card)
    at = keys.index("robustness") + 1 if "robustness" in keys else len(keys)
    card = {**{k: card[k] for k in keys[:at]}, "localisation": section, **{k: card[k] for k in keys[at:]}}
    path.write_text(json.dumps(card, indent=2) + "\n")
    (docs / "model-card.md").write_text(markdown(card))
    return card


def write_markdown(card: dict, docs: Path) -> None:
    figures = docs / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    plot_confusion_matrices(card, figures / "confusion-matrices.png")
    plot_training_curve(card, figures / "training-curve.png")
    (docs / "model-card.md").write_text(markdown(card))


def int8_section(card: dict, report_path: Path = INT8_REPORT) -> list[str]:
    """The int8 variant's figures from `make bench`, when they were measured on this very model."""
    if not report_path.is_file():
        return []
    report = json.loads(report_path.read_text())
    if report.get("fp32_sha256") != card["sha256"]:
        return []
    lines = [
        "## Int8 variant (not shipped)",
        "",
        f"Static quantization ({report['recipe']}), calibrated on {report['calibration_images']} training images; "
        f"{report['int8_bytes'] / 1e6:.2f} MB. Measured by `make bench` on {report['date']} "
        "([docs/benchmarks.md](benchmarks.md), section Int8).",
        "",
        "| set | n | fp32 accuracy | int8 accuracy | fp32 flagged | int8 flagged |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in report["sets"].items():
        lines.append(
            f"| {name} | {row['n']} | {row['fp32_accuracy']:.4f} | {row['int8_accuracy']:.4f} | "
            f"{row['fp32_uncertain']:.3f} | {row['int8_uncertain']:.3f} |"
        )
    speed = ", ".join(f"{threads} thread(s) {value:.2f}x" for threads, value in report["handler_speedup"].items())
    lines += ["", f"Handler speed of int8 relative to fp32 (batch 1): {speed}. {report['verdict']}", ""]
    return lines


def precision_note(metrics: dict) -> list[str]:
    """How much evidence each accuracy holds: a 95% interval where the images are independent cells."""
    intervals = []
    for key, label in (("bccd_test_simple", "bccd TEST_SIMPLE"), ("pbc_test", "pbc test")):
        n = metrics[key]["n"]
        correct = sum(row[i] for i, row in enumerate(metrics[key]["confusion_matrix"]))
        low, high = wilson_interval(correct, n)
        intervals.append(f"{label} {metrics[key]['accuracy']:.3f} [{low:.3f}, {high:.3f}] ({n} cells)")
    return [
        "How precise these accuracies are: TEST_SIMPLE and the pbc sets hold one image per cell, so a 95% "
        f"(Wilson) interval applies: {'; '.join(intervals)}. bccd TEST and bccd val are augmented views of few "
        "cells (TEST: the 71 TEST_SIMPLE cells, 620 views of 4 monocytes; val: whole held-out TRAIN smears), "
        "so their n overstates the evidence: a difference of one or two points there can be a single cell."
    ]


def evaluation_time(card: dict) -> str:
    """How long this card's evaluation took, with the machine's load (1-minute average, the higher of start and end)
    beside it: on a busy machine the minutes overstate the cost."""
    seconds, load = card.get("evaluation_seconds"), card.get("evaluation_load_average")
    if seconds is None or load is None:
        return "no retraining"
    return f"{seconds / 60:.0f} minutes on 2 cores at load average {load:g} when this card was written, no retraining"


def flagged_lines(card: dict) -> list[str]:
    """The issue's two flag bars: in-distribution test sets and non-blood images, by the model's own rule."""
    summary = card.get("flagged_summary")
    if summary is None:
        return []
    sets = ", ".join(f"{name} {value:.1%}" for name, value in summary["in_distribution"].items())
    return [
        f"Flagged by {summary['rule']}: in-distribution test sets {sets} (highest "
        f"{summary['in_distribution_max']:.1%}); non-blood images {summary['non_blood']:.1%}.",
        "",
    ]


ROBUSTNESS_SETS = {"bccd_test_simple": "bccd TEST_SIMPLE", "pbc_test": "pbc test", "dbn_report": "dbn-report"}


def robustness_lines(card: dict) -> list[str]:
    """The robustness table: per perturbation and set, accuracy · flagged fraction · accuracy if not flagged."""
    robust = card.get("robustness")
    if robust is None:
        return []
    sets = [name for name in ROBUSTNESS_SETS if name in robust["sets"]]
    header = " | ".join(f"{ROBUSTNESS_SETS[name]} (n={robust['sets'][name]['n']})" for name in sets)
    lines = [
        "## Robustness (perturbed images through the serving code)",
        "",
        f"{robust['what'][0].upper()}{robust['what'][1:]}. Each cell: accuracy · flagged uncertain · accuracy if not "
        "flagged.",
        "",
        f"| perturbation | {header} |",
        "|---|" + "---|" * len(sets),
    ]
    for name, row in robust["rows"].items():
        cells = []
        for set_name in sets:
            r = row[set_name]
            unflagged = "—" if r["accuracy_unflagged"] is None else f"{r['accuracy_unflagged']:.3f}"
            cells.append(f"{r['accuracy']:.3f} · {r['flagged_fraction']:.0%} · {unflagged}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return [*lines, ""]


LOCALISATION_SETS = {
    "bccd": "fields/bccd (640×480 microscope camera)",
    "txl": "fields/txl (Raabin, PBC, BCCD)",
    "phone": "fields/phone (phone through the eyepiece, 416×416)",
}


def localisation_lines(card: dict) -> list[str]:
    """The whole-field localiser's figures (export.fields.card_section) and which of issue #17's bars they meet."""
    loc = card.get("localisation")
    if loc is None:
        return []
    lines = [
        "## Whole-field localisation (`POST /v1/analyze`)",
        "",
        f"The service's localiser (`logic/localiser.py`, version {loc['localiser_version']}; not part of this model) "
        f"finds the white cells that `/v1/analyze` classifies. Measured by `{loc['reproduce']}` (`make "
        f"evaluate-fields`, about 6 minutes) on {loc['what']}.",
        "",
        "| set | fields | WBC | recall | precision | scale within ±15% |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in loc["sets"].items():
        scale = "—" if row["scale_within"] is None else f"{row['scale_within']:.3f} (n={row['scale_fields']})"
        lines.append(
            f"| {LOCALISATION_SETS.get(name, name)} | {row['fields']} | {row['wbc']} | "
            f"{with_interval(row['recall'], row['recall_ci'])} | "
            f"{with_interval(row['precision'], row['precision_ci'])} | {scale} |"
        )
    names = list(loc["sets"])
    lines += [
        "",
        "Robustness versions of the same fields (recall / precision):",
        "",
        "| version | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for version, by_set in loc["versions"].items():
        cells = [f"{by_set[n]['recall']:.3f} / {by_set[n]['precision']:.3f}" for n in names]
        lines.append(f"| {version} | " + " | ".join(cells) + " |")
    bars = loc["bars"]
    short = [
        f"{name} {what} {value:.3f} < {bar}"
        for name, row in loc["sets"].items()
        for what, bar in zip(("recall", "precision"), bars["sets"][name], strict=True)
        if (value := row[what]) < bar
    ]
    short += [
        f"{name} scale within ±15% {row['scale_within']:.3f} < {bars['scale_within']}"
        for name, row in loc["sets"].items()
        if row["scale_within"] is not None and row["scale_within"] < bars["scale_within"]
    ]
    versions_short = sorted(
        {
            f"{name} {version}"
            for version, by_set in loc["versions"].items()
            for name, row in by_set.items()
            if min(row["recall"], row["precision"]) < bars["versions"]
        }
    )
    if versions_short:
        short.append(f"recall or precision < {bars['versions']} on " + ", ".join(versions_short))
    per_set = ", ".join(f"{name} {' / '.join(map(str, bar))}" for name, bar in bars["sets"].items())
    lines += [
        "",
        f"Issue #17's bars: recall / precision {per_set}; the scale within ±15% on {bars['scale_within']:.0%} of the "
        f"fields; recall and precision >= {bars['versions']} in every version. "
        + ("All met." if not short else "Not met: " + "; ".join(short) + "."),
        "",
    ]
    return lines


def calibration_lines(uncertainty: dict) -> list[str]:
    c = uncertainty.get("calibration")
    if c is None:
        return []
    unflagged = c["perturbed_accuracy_unflagged"]
    return [
        f"- on the calibration images: clean {c['clean_flagged_fraction']:.1%} of {c['clean_n']} flagged; perturbed "
        f"{c['perturbed_flagged_fraction']:.1%} of {c['perturbed_n']} flagged, "
        + ("none unflagged" if unflagged is None else f"{unflagged:.3f} right when not flagged")
        + f" (target met: {c['target_met']})",
    ]


def markdown(card: dict) -> str:
    m = card["metrics"]
    u = card["uncertainty"]
    names = {
        "bccd_test": "bccd TEST",
        "bccd_test_simple": "bccd TEST_SIMPLE",
        "pbc_test": "pbc test (own split)",
        "bccd_val": "bccd val (from TRAIN)",
        "pbc_val": "pbc val",
        "dbn_select": "dbn-select (third lab" + (", calibration)" if "dbn_select" in u.get("chosen_on", []) else ")"),
        "dbn_report": "dbn-report (third lab)",
    }
    lines = [
        f"# Model card — {card['name']} {card['version']}",
        "",
        "> " + card["intended_use"],
        "",
        "Generated by `make train` (`python -m export all` in a run folder, then `python -m export promote`) with "
        "[`functions/classifier/model/model_card.json`](../functions/classifier/model/model_card.json); "
        "do not edit by hand.",
        "",
        "## Metrics (exported ONNX model through the serving preprocessing)",
        "",
        "| set | n | accuracy | macro-F1 | "
        + " | ".join(f"recall {c[:3]}" for c in card["classes"])
        + " | flagged uncertain | accuracy if not flagged |",
        "|---|---|---|---|" + "---|" * len(card["classes"]) + "---|---|",
    ]
    for key, label in names.items():
        if key not in m:  # a card written before the third lab's rows
            continue
        s = m[key]
        recalls = " | ".join(f"{s['per_class'][c]['recall']:.3f}" for c in card["classes"])
        certain = "—" if s.get("accuracy_when_certain") is None else f"{s['accuracy_when_certain']:.4f}"
        lines.append(
            f"| {label} | {s['n']} | {s['accuracy']:.4f} | {s['macro_f1']:.4f} | {recalls} | "
            f"{s['uncertain_fraction']:.3f} | {certain} |"
        )
    lines += ["", *precision_note(m)]
    nb = card["non_blood_images"]
    lines += [
        "",
        f"Non-blood images ({nb['what']}): {nb['flagged_uncertain_fraction']:.1%} of {nb['n']} flagged uncertain"
        + (f"; not flagged: {', '.join(nb['not_flagged'])}." if nb["not_flagged"] else "."),
        "",
        *flagged_lines(card),
        "Re-measure the bccd rows with the CLI, e.g. `hematovision evaluate ../shared/data/bccd/TEST --json` "
        "(TEST_SIMPLE likewise); every row, the pbc and dbn splits, the robustness table and the parity check with "
        f"`make evaluate` (`python -m export evaluate`, {evaluation_time(card)}).",
        "",
        "![confusion matrices](figures/confusion-matrices.png)",
        "",
        *robustness_lines(card),
        "## Uncertainty",
        "",
        u["rule"],
        "",
        f"- confidence_threshold = {u['confidence_threshold']}",
        f"- ood_similarity_threshold = {u['ood_similarity_threshold']}",
        *calibration_lines(u),
        "",
        "## Training",
        "",
        f"- {card['architecture']}",
        f"- frozen: {card['training']['frozen']}",
        f"- trained: {card['training']['trained']}",
        f"- {card['training']['optimizer']}; {card['training']['loss']}",
        f"- augmentation: {card['training']['augmentation']}",
        f"- {card['training']['epochs']} epochs, batch {card['training']['batch_size']}; "
        f"selected epoch {card['training']['selected_epoch']} ({card['training']['selection_rule']})",
        f"- BatchNorm check: {card['training']['batchnorm_check']['layer']} moving-mean drift "
        f"{card['training']['batchnorm_check']['max_moving_mean_drift']}",
        f"- time on this 2-core machine: feature cache {card['training']['seconds']['feature_cache']} s, "
        f"training total {card['training']['seconds']['total']} s",
        "",
        "![training curve](figures/training-curve.png)",
        "",
        "## Data",
        "",
        card["data"]["split_rule"],
        "",
    ]
    if "bccd_train_groups" in card["data"]:
        groups = card["data"]["bccd_train_groups"]
        lines += [
            f"bccd TRAIN groups: {groups['groups']} original smears, `{groups['file']}` (sha256 "
            f"{groups['sha256'][:12]}…; rebuilt by `python -m export groups`).",
            "",
        ]
    lines += [
        "| split | n | " + " | ".join(c[:3] for c in card["classes"]) + " |",
        "|---|---|" + "---|" * len(card["classes"]),
    ]
    for name, split in card["data"]["splits"].items():
        lines.append(
            f"| {name} | {split['n']} | " + " | ".join(str(split["counts"][c]) for c in card["classes"]) + " |"
        )
    p = card["parity"]
    lines += [
        "",
        "## Export",
        "",
        f"ONNX opset via tf2onnx {card['tools']['tf2onnx']}; {card['onnx_bytes'] / 1e6:.2f} MB; "
        f"sha256 `{card['sha256']}`.",
        f"Parity ONNX vs Keras on every evaluation image: max |Δprobability| = {p['max_abs_probability_diff']:.2e} "
        f"(tolerance {p['tolerance']:g}), identical argmax: {p['argmax_identical']}.",
        "",
        *int8_section(card),
        *localisation_lines(card),
        "## Limitations",
        "",
        *[f"- {x}" for x in card["limitations"]],
        "",
        "## Provenance",
        "",
        f"- base weights: {card['base_weights']['source']} (`{card['base_weights']['file']}`, "
        f"sha256 `{card['base_weights']['sha256']}`)",
        f"- data manifests: bccd `{card['data']['bccd']['manifest_sha256']}`, "
        f"pbc `{card['data']['pbc']['manifest_sha256']}`",
        "- tools: " + ", ".join(f"{k} {v}" for k, v in card["tools"].items()),
        f"- created {card['created_at']}",
        "",
        card["citation"],
        "",
    ]
    return "\n".join(lines)


def plot_confusion_matrices(card: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    sets = [("bccd_test", "bccd TEST"), ("bccd_test_simple", "bccd TEST_SIMPLE"), ("pbc_test", "pbc test")]
    fig, axes = plt.subplots(1, len(sets), figsize=(12, 4), dpi=80)
    short = [c[:4] for c in card["classes"]]
    for ax, (key, title) in zip(axes, sets, strict=True):
        matrix = np.array(card["metrics"][key]["confusion_matrix"])
        ax.imshow(matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1)
        for i in range(len(short)):
            for j in range(len(short)):
                ax.text(
                    j,
                    i,
                    str(matrix[i, j]),
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if matrix[i, j] > matrix[i].sum() / 2 else "black",
                )
        ax.set_xticks(range(len(short)), short)
        ax.set_yticks(range(len(short)), short)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{title} (acc {card['metrics'][key]['accuracy']:.3f})")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_training_curve(card: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2), dpi=80)
    # the epochs' entries; a soup's or a step average's entry has no epoch of its own and no training loss
    history = [h for h in card["training"]["history"] if isinstance(h["epoch"], int)]
    epochs = [h["epoch"] for h in history]
    left.plot(epochs, [h["loss"] for h in history], marker="o", label="train (label-smoothed)")
    left.plot(epochs, [h["val_loss"] for h in history], marker="o", label="validation")
    right.plot(epochs, [h["accuracy"] for h in history], marker="o", label="train accuracy")
    right.plot(epochs, [h["val_accuracy"] for h in history], marker="o", label="val accuracy")
    right.plot(epochs, [h["val_macro_f1"] for h in history], marker="o", label="val macro-F1")
    for entry in card["training"]["history"]:
        if entry["epoch"] == "average":
            right.axhline(entry["val_macro_f1"], linestyle="--", color="grey", label="val macro-F1, step average")
    left.set_xlabel("epoch")
    left.set_title("cross-entropy")
    left.legend()
    right.set_xlabel("epoch")
    right.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
