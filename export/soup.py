"""python -m export.soup RUN RUN [RUN...] --work SOUP: the mean of several finished runs' weights, as a run of its own.

Runs of one recipe that differ only in their seed (and version) start from the same ImageNet weights and keep the
frozen layers and BatchNorm unchanged, so the mean of their weights is one model of the same size and speed that is
often better than each of them (Wortsman et al., "Model soups", ICML 2022; docs/experiments.md has the 1.2.0-era
trial). The soup folder is laid out like a training run, so `python -m export convert --work SOUP` and
`python -m export.screen SOUP` treat it as any candidate:
- recipe.json: the ingredients' recipe, its version given by --version;
- classifier.keras: the uniform mean of the ingredients' weights (the frozen ones are checked to be identical);
- train_report.json: validation figures (bccd val + pbc val, un-augmented, as training validates an epoch) of the soup
  and, measured in the same run, of each ingredient; "selected_epoch" is "soup";
- centroids.npy: the class centroids of the soup's pooled features (the out-of-distribution score), on every
  CENTROID_STRIDE-th training view of the first ingredient's seed (the views are regenerated: the training cache is
  not kept), where training used all of them.
Validation data only: it never reads a test set or dbn.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from export.data import CLASSES, DATA_ROOT, class_counts
from export.recipe import RUN_RECIPE_NAME, Recipe
from export.train import (
    class_centroids,
    log,
    model_input_of,
    save,
    training_data,
    training_view,
    training_views,
)

CENTROID_STRIDE = 4
PREDICT_BATCH = 64


def check_ingredients(recipes: list[Recipe]) -> None:
    """A soup needs one recipe: the ingredients may differ in their seed and version only."""
    first = {k: v for k, v in recipes[0].to_dict().items() if k not in ("seed", "version")}
    for recipe in recipes[1:]:
        other = {k: v for k, v in recipe.to_dict().items() if k not in ("seed", "version")}
        if other != first:
            differing = sorted(k for k in first.keys() | other.keys() if first.get(k) != other.get(k))
            raise SystemExit(f"the runs' recipes differ in {', '.join(differing)}: a soup needs one recipe")
    seeds = [r.seed for r in recipes]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"two runs share a seed ({seeds}): the soup would weigh one training twice")


def mean_weights(models) -> list[np.ndarray]:
    """The uniform mean of the models' weights; frozen tensors must be identical across them."""
    weight_lists = [model.get_weights() for model in models]
    frozen = {id(w) for w in models[0].non_trainable_weights}
    for index, variable in enumerate(models[0].weights):
        if id(variable) in frozen:
            spread = max(float(np.max(np.abs(w[index] - weight_lists[0][index]))) for w in weight_lists)
            if spread != 0.0:
                raise SystemExit(f"frozen weight {variable.path} differs between the runs (max {spread})")
    return [np.mean(tensors, axis=0) for tensors in zip(*weight_lists, strict=True)]


def validation_figures(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """As export.train.validate computes an epoch's figures (same metric code), on the full classifier's output."""
    from hematovision.logic.metrics import compute_metrics

    predicted = probabilities.argmax(axis=1)
    return {
        "val_accuracy": float(np.mean(predicted == labels)),
        "val_macro_f1": compute_metrics(labels, predicted, CLASSES)["macro_f1"],
        "val_loss": float(-np.mean(np.log(np.clip(probabilities[np.arange(len(labels)), labels], 1e-7, 1)))),
    }


def make_soup(runs: list[Path], work: Path, version: str, data_root: Path = DATA_ROOT) -> dict:
    import keras

    started = time.time()
    if work.exists() and any(work.iterdir()):
        raise SystemExit(f"{work} is not empty: a soup gets a fresh folder")
    recipes = [Recipe.load(run / RUN_RECIPE_NAME) for run in runs]
    check_ingredients(recipes)
    reports = [json.loads((run / "train_report.json").read_text()) for run in runs]
    smoke = reports[0]["smoke"]  # a soup of smoke runs (tests) validates on the smoke subset, as they did
    if any(report["smoke"] != smoke for report in reports):
        raise SystemExit("smoke runs and full runs do not mix in a soup")
    recipe = Recipe.from_dict({**recipes[0].to_dict(), "version": version})
    work.mkdir(parents=True, exist_ok=True)
    recipe.save(work / RUN_RECIPE_NAME)

    models = [keras.models.load_model(run / "classifier.keras") for run in runs]
    soup = keras.models.clone_model(models[0])
    soup.set_weights(mean_weights(models))
    log(f"soup of {len(models)} runs: {', '.join(str(run) for run in runs)}")

    data = training_data(data_root, smoke)
    labels = np.array([sample.label for sample in data.val])
    val_inputs = np.stack([model_input_of(sample, recipe) for sample in data.val]).astype(np.float32)
    log(f"{len(val_inputs)} validation inputs (bccd val + pbc val)")
    ingredients = []
    for run, run_recipe, report, model in zip(runs, recipes, reports, models, strict=True):
        figures = validation_figures(model.predict(val_inputs, batch_size=PREDICT_BATCH, verbose=0), labels)
        (recorded,) = [h for h in report["history"] if h["epoch"] == report["selected_epoch"]]
        ingredients.append(
            {
                "run": str(run),
                "version": run_recipe.version,
                "seed": run_recipe.seed,
                "selected_epoch": report["selected_epoch"],
                "recorded_val_macro_f1": recorded["val_macro_f1"],
                **figures,
            }
        )
        log(f"  {run}: val macro-F1 {figures['val_macro_f1']:.4f} (training recorded {recorded['val_macro_f1']:.4f})")
    soup_figures = validation_figures(soup.predict(val_inputs, batch_size=PREDICT_BATCH, verbose=0), labels)
    log(f"  soup: val macro-F1 {soup_figures['val_macro_f1']:.4f}, accuracy {soup_figures['val_accuracy']:.4f}")

    views = training_views(recipes[0], data)[::CENTROID_STRIDE]
    pooled_model = keras.Model(soup.inputs, soup.get_layer("pool").output)
    pooled = []
    for start in range(0, len(views), PREDICT_BATCH):
        batch = np.stack([training_view(*view, recipe) for view in views[start : start + PREDICT_BATCH]])
        pooled.append(pooled_model.predict_on_batch(batch.astype(np.float32)))
    view_labels = np.array([sample.label for sample, _ in views])
    log(f"class centroids from {len(views)} training views (every {CENTROID_STRIDE}th)")

    report = {
        "selected_epoch": "soup",
        "soup": {"ingredients": ingredients, "centroid_views": len(views), "centroid_stride": CENTROID_STRIDE},
        "train_counts": {name: class_counts(samples) for name, samples in data.train.items()},
        "val_counts": class_counts(data.val),
        "history": [{"epoch": "soup", **soup_figures}],
        "batchnorm_check": reports[0]["batchnorm_check"],
        "seconds": {
            "ingredients_total": round(sum(r["seconds"]["total"] for r in reports), 1),
            "soup": round(time.time() - started, 1),
            "total": round(sum(r["seconds"]["total"] for r in reports) + time.time() - started, 1),
        },
        "smoke": smoke,
        "versions": reports[0]["versions"],
    }
    save(work, soup, class_centroids(np.concatenate(pooled), view_labels), report)
    log(f"soup written to {work} in {time.time() - started:.0f} s")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m export.soup", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", type=Path, help="finished training run folders of one recipe")
    parser.add_argument("--work", type=Path, required=True, help="the soup's fresh run folder")
    parser.add_argument("--version", required=True, help="the soup's model version (its recipe.json)")
    parser.add_argument("--data", type=Path, default=DATA_ROOT, help="folder holding bccd/ and pbc/")
    args = parser.parse_args(argv)
    if len(args.runs) < 2:
        parser.error("a soup needs at least two runs")
    make_soup(args.runs, args.work, args.version, args.data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
