"""fp32 vs int8 accuracy through the serving Classifier, run in the serving venv.

    python -m bench.evaluate_child --fp32 DIR --int8 DIR --data ROOT [--limit N] [--fp32-from-card] --result OUT

The same code path as `hematovision evaluate` and the model card (hematovision.logic.evaluation.classify_files:
files read in batches of 32 -> Classifier.classify; then compute_metrics) on each set: bccd TEST, bccd
TEST_SIMPLE and export/data.py's pbc test split. With --fp32-from-card the fp32 figures are the model card's
(computed by that same code on the same files; used only when the card's n matches the set), which halves the
time; otherwise fp32 is re-measured too, with the fraction of images on which both models give the same label.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench.common import log, write_result

SETS = ("bccd_test", "bccd_test_simple", "pbc_test")


def evaluation_sets(data_root: Path, limit: int | None) -> dict[str, list[tuple[Path, int]]]:
    from export.data import all_splits

    splits = all_splits(Path(data_root))
    chosen = {}
    for name in SETS:
        samples = sorted(splits[name], key=lambda s: str(s.path))
        if limit and len(samples) > limit:
            samples = [samples[(i * len(samples)) // limit] for i in range(limit)]
        chosen[name] = [(s.path, s.label) for s in samples]
    return chosen


def evaluate(classifier, samples: list[tuple[Path, int]]) -> tuple[dict, list[int | None]]:
    import numpy as np

    from hematovision.logic.evaluation import classify_files
    from hematovision.logic.metrics import compute_metrics

    y_true, y_pred, uncertain, predictions, errors = [], [], [], [], 0
    for (_, item), (_, label) in zip(classify_files(classifier, [p for p, _ in samples]), samples, strict=True):
        if item.ok:
            y_true.append(label)
            y_pred.append(item.verdict.label_index)
            uncertain.append(item.verdict.uncertain)
            predictions.append(item.verdict.label_index)
        else:
            errors += 1
            predictions.append(None)
    metrics = compute_metrics(
        np.array(y_true, dtype=np.int64),
        np.array(y_pred, dtype=np.int64),
        classifier.model.classes,
        uncertain=np.array(uncertain, dtype=bool),
    )
    metrics["errors"] = errors
    return metrics, predictions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fp32", type=Path, required=True)
    parser.add_argument("--int8", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0, help="at most this many images per set (0: all)")
    parser.add_argument("--fp32-from-card", action="store_true", help="take the fp32 figures from the model card")
    parser.add_argument("--result")
    args = parser.parse_args(argv)

    from export.data import CLASSES
    from hematovision.logic.classifier import Classifier
    from hematovision.logic.inference import Model

    models = {
        "fp32": Classifier(Model(args.fp32, intra_op_threads=args.threads)),
        "int8": Classifier(Model(args.int8, intra_op_threads=args.threads)),
    }
    if list(models["fp32"].model.classes) != list(CLASSES):
        raise SystemExit(f"model classes {models['fp32'].model.classes} differ from export/data.py's {CLASSES}")
    card_metrics = models["fp32"].model.card.get("metrics", {})
    result: dict = {}
    for name, samples in evaluation_sets(args.data, args.limit or None).items():
        entry: dict = {}
        predictions = {}
        card = card_metrics.get(name) or {}
        entry["card"] = {k: card.get(k) for k in ("accuracy", "macro_f1", "n", "uncertain_fraction")} if card else None
        for kind, classifier in models.items():
            if (
                kind == "fp32"
                and args.fp32_from_card
                and card.get("n") == len(samples)
                and card.get("accuracy") is not None
            ):
                entry[kind] = dict(entry["card"], source="model card")
                continue
            started = time.perf_counter()
            metrics, predictions[kind] = evaluate(classifier, samples)
            metrics["seconds"] = round(time.perf_counter() - started, 2)
            entry[kind] = {
                k: metrics[k]
                for k in ("accuracy", "macro_f1", "uncertain_fraction", "n", "errors", "seconds", "per_class")
            }
            entry[kind]["source"] = "measured"
        if "fp32" in predictions:
            pairs = zip(predictions["fp32"], predictions["int8"], strict=True)
            same = sum(1 for a, b in pairs if a is not None and a == b)
            entry["fp32"]["agreement"] = same / max(1, len(samples))
        result[name] = entry
        fp32, int8 = entry["fp32"], entry["int8"]
        log(
            f"int8 eval {name}: n={int8['n']} fp32 {fp32['accuracy']:.4f} ({fp32['source']}) "
            f"int8 {int8['accuracy']:.4f}"
        )
    write_result(args.result, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
