"""python -m export groups|train|convert|evaluate|all [--smoke] [--out DIR] — see README "Model"."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "functions" / "classifier"))  # the serving package's preprocessing

from export.data import DATA_ROOT  # noqa: E402
from export.model import DEFAULT_WEIGHTS  # noqa: E402
from export.train import FROZEN_BLOCKS, PEAK_LR  # noqa: E402

MODEL_DIR = REPO / "functions" / "classifier" / "model"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__)
    parser.add_argument(
        "step",
        choices=["groups", "train", "convert", "evaluate", "all"],
        help="groups: rebuild export/bccd_train_groups.csv (which TRAIN images share an original smear)",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="a few dozen images, two short epochs: checks the pipeline end to end"
    )
    parser.add_argument("--data", type=Path, default=DATA_ROOT, help="folder holding bccd/ and pbc/")
    parser.add_argument(
        "--weights", default=str(DEFAULT_WEIGHTS), help='offline .npz, or "imagenet" to download (needs internet)'
    )
    parser.add_argument(
        "--work", type=Path, default=None, help="training outputs (default export/artifacts, or build/smoke)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where hematovision.onnx + model_card.json go "
        "(default functions/classifier/model; with --smoke, build/smoke/model)",
    )
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument(
        "--seed", type=int, default=20261126, help="training seed (initialisation, shuffling, augmentation)"
    )
    parser.add_argument("--pbc-views", type=int, default=2, help="augmented views per pbc training image")
    parser.add_argument(
        "--bccd-per-epoch",
        type=int,
        default=None,
        help="bccd views per class per epoch, a fresh random subset each epoch (default: all)",
    )
    parser.add_argument(
        "--frozen-blocks",
        type=int,
        default=FROZEN_BLOCKS,
        help="MobileNetV2 blocks kept frozen (a block with a residual add: 2, 4, 5, 7, ...); the rest is fine-tuned",
    )
    parser.add_argument(
        "--average-last-epochs",
        type=int,
        nargs="*",
        default=[],
        help="also consider the mean weights of the last k epochs, for each k given (selection on validation)",
    )
    parser.add_argument("--peak-lr", type=float, default=PEAK_LR, help="peak learning rate of the cosine schedule")
    parser.add_argument(
        "--pbc-bccd-colour",
        type=float,
        default=0.0,
        help="probability that a pbc training view gets the colours of a random bccd training frame (default 0)",
    )
    parser.add_argument(
        "--soup-seeds",
        type=int,
        nargs="*",
        default=[],
        help="more seeds trained the same way; the mean of all seeds' best weights (a model soup) is a candidate too",
    )
    parser.add_argument(
        "--mixup", type=float, default=0.0, help="mixup alpha for the cached training features (default 0: no mixup)"
    )
    args = parser.parse_args(argv)

    # Full runs keep their Keras model, centroids and reports in export/artifacts (committed), so convert and
    # evaluate can be re-run, and the benchmarks can load the Keras model, without retraining.
    work = args.work or (REPO / "build" / "smoke" if args.smoke else REPO / "export" / "artifacts")
    out = args.out or (work / "model" if args.smoke else MODEL_DIR)
    if args.step == "groups":
        from export.groups import train_groups, write_groups

        write_groups(train_groups(args.data / "bccd"))
        return 0
    if args.step in ("train", "all"):
        from export.train import train

        train(
            work,
            args.data,
            args.weights,
            smoke=args.smoke,
            epochs=args.epochs,
            seed=args.seed,
            pbc_views=args.pbc_views,
            bccd_per_epoch=args.bccd_per_epoch,
            frozen_blocks=args.frozen_blocks,
            average_last_epochs=tuple(args.average_last_epochs),
            pbc_bccd_colour=args.pbc_bccd_colour,
            peak_lr=args.peak_lr,
            soup_seeds=tuple(args.soup_seeds),
            mixup_alpha=args.mixup,
        )
    if args.step in ("convert", "all"):
        from export.convert import convert

        convert(work, out)
    if args.step in ("evaluate", "all"):
        from export.evaluate import evaluate

        evaluate(work, out, args.data, args.weights, smoke=args.smoke)
    return 0


if __name__ == "__main__":
    sys.exit(main())
