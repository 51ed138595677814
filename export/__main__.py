"""python -m export groups|train|convert|evaluate|all|promote — see README "Model".

train/all [--recipe FILE] [--work RUN] [--smoke]  train (then convert and evaluate) into a fresh run folder,
                                                  build/runs/<version>-<time> by default; nothing else is written
convert/evaluate --work RUN                       redo one step of a run
evaluate                                          re-evaluate the committed model and rewrite its card
promote RUN                                       ship a finished run of the committed recipe
groups                                            rebuild export/bccd_train_groups.csv
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from export.data import DATA_ROOT
from export.model import DEFAULT_WEIGHTS
from export.promote import ARTIFACTS, DOCS, MODEL_DIR, RUN_DOCS, RUN_MODEL
from export.recipe import RECIPE_FILE, REPO, Recipe

RUNS = REPO / "build" / "runs"


def fresh_run_folder(work: Path | None, recipe: Recipe, smoke: bool) -> Path:
    """The run's own folder: every run starts empty, so a folder always holds exactly one run."""
    name = f"{recipe.version}{'-smoke' if smoke else ''}-{time.strftime('%Y%m%d-%H%M%S')}"
    run = work or RUNS / name
    if run.exists() and any(run.iterdir()):
        raise SystemExit(f"{run} is not empty: each run gets a fresh folder (choose another --work)")
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("step", choices=["groups", "train", "convert", "evaluate", "all", "promote"])
    parser.add_argument("run", nargs="?", type=Path, help="promote: the run folder to ship")
    parser.add_argument("--recipe", type=Path, help="train/all: the recipe file (default export/recipe.json)")
    parser.add_argument("--work", type=Path, default=None, help="the run folder")
    parser.add_argument(
        "--smoke", action="store_true", help="train/all: the recipe on a few dozen images, 2 short epochs"
    )
    parser.add_argument("--data", type=Path, default=DATA_ROOT, help="folder holding bccd/ and pbc/")
    parser.add_argument(
        "--weights", default=str(DEFAULT_WEIGHTS), help='offline .npz, or "imagenet" to download (needs internet)'
    )
    args = parser.parse_args(argv)
    trains = args.step in ("train", "all")
    if (args.smoke or args.recipe) and not trains:
        parser.error("--recipe and --smoke only apply to train and all")
    if (args.step == "promote") != (args.run is not None):
        parser.error("promote takes the run folder (python -m export promote RUN), and only promote does")
    if args.step == "convert" and args.work is None:
        parser.error("convert needs --work RUN (the committed model is only written by promote)")

    if args.step == "groups":
        from export.groups import train_groups, write_groups

        write_groups(train_groups(args.data / "bccd"))
        return 0
    if args.step == "promote":
        from export.promote import PromotionRefused, promote

        try:
            written = promote(args.run)
        except PromotionRefused as refused:
            raise SystemExit(str(refused)) from None
        print(f"promoted {args.run}: wrote {len(written)} files", flush=True)
        return 0
    if args.step == "evaluate" and args.work is None:
        from export.evaluate import evaluate

        evaluate(ARTIFACTS, MODEL_DIR, args.data, args.weights, docs=DOCS)
        return 0

    run = args.work
    if trains:
        from export.train import train

        recipe = Recipe.load(args.recipe or RECIPE_FILE)
        recipe = recipe.smoke_sized() if args.smoke else recipe
        run = fresh_run_folder(args.work, recipe, args.smoke)
        print(f"run folder: {run}", flush=True)
        train(recipe, run, args.data, args.weights, smoke=args.smoke)
    if args.step in ("convert", "all"):
        from export.convert import convert

        convert(run, run / RUN_MODEL)
    if args.step in ("evaluate", "all"):
        from export.evaluate import evaluate

        evaluate(run, run / RUN_MODEL, args.data, args.weights, docs=run / RUN_DOCS)
    if args.step == "all":
        print(f"run finished: {run}; ship it with `python -m export promote {run}`", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
