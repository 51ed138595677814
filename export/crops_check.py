"""How the cell crops of model 2.0 (logic/cell_crop.py) come out on the training and validation data.

    .venv/bin/python -m export.crops_check [--per-set 200] [--crop-um 22] [--size 160] [--sheet build/crops_check.png]

For a fixed sample of each set (bccd train, bccd val, pbc train+val, dbn-select): the fraction of images where the
localiser finds exactly one white cell, none or several; the ruler of the first cell's crop; the localiser's
px_per_um (deciles); the first box's longer side in micrometres (red-cell ruler only: what crop_um must cover); and
how often the crop leaves the image (padded); and how often the first cell's centre lies outside the central half and
third of the image, which the robustness table's x2 and x3 enlargements keep (export/perturb.py: there the cell is cut
out of the photo, whatever the model). Prints a markdown table and writes a contact sheet of the crops, one
row block per set, to check that a cell has the same size in every lab. No TensorFlow: runs in either venv.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from export.data import CLASSES, DATA_ROOT, Sample, all_splits, dbn_splits
from export.perturb import ENLARGEMENTS, stays_in_frame
from hematovision.logic.cell_crop import model_input
from hematovision.logic.localiser import locate
from hematovision.logic.preprocessing import decode_image

SHEET_PER_SET = 24  # 6 of each class
MONOCYTE = CLASSES.index("MONOCYTE")
SHEET_COLUMNS = 12
CUT_OUT_ROWS = ("scale_x2", "scale_x3")  # the robustness table's enlargements whose central window may cut the cell out


def sample_sets(data_root: Path, per_set: int, seed: int = 0) -> dict[str, list[Sample]]:
    named = all_splits(data_root)
    sets = {
        "bccd_train": named["bccd_train"],
        "bccd_val": named["bccd_val"],
        "pbc_train+val": named["pbc_train"] + named["pbc_val"],
        "dbn_select": dbn_splits(Path(data_root) / "dbn")["select"],
    }
    rng = random.Random(seed)
    return {
        name: sorted(rng.sample(samples, min(per_set, len(samples))), key=lambda s: str(s.path))
        for name, samples in sets.items()
    }


def measure(samples: list[Sample], crop_um: float, size: int) -> dict:
    rows = []
    for sample in samples:
        image = decode_image(sample.path.read_bytes())
        found = locate(image)
        chosen = model_input(image, found, crop_um, size)
        row = {"cells": len(found.boxes), "ruler": found.ruler, "px_per_um": found.px_per_um, "input": chosen}
        if found.boxes:
            x0, y0, x1, y1 = found.boxes[0]
            side = max(x1 - x0, y1 - y0)
            row["box_um"] = side / found.px_per_um if found.ruler == "red_cells" else None
            half = crop_um * found.px_per_um / 2 if chosen.ruler == "red_cells" else side * 0.8
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            row["padded"] = cx - half < 0 or cy - half < 0 or cx + half > image.width or cy + half > image.height
            row["cut_out"] = [
                not stays_in_frame(image.width, image.height, found.boxes[0], ENLARGEMENTS[name])
                for name in CUT_OUT_ROWS
            ]
        rows.append(row)
    return {"rows": rows, "samples": samples}


def summary(name: str, result: dict) -> str:
    rows = result["rows"]
    n = len(rows)
    one = sum(r["cells"] == 1 for r in rows) / n
    none = sum(r["cells"] == 0 for r in rows) / n
    several = sum(r["cells"] > 1 for r in rows) / n
    red = sum(r["ruler"] == "red_cells" for r in rows) / n
    crop_box = sum(r["input"].ruler == "box" for r in rows) / n
    scale = np.array([r["px_per_um"] for r in rows if r["ruler"] == "red_cells"])
    box_um = np.array([r["box_um"] for r in rows if r.get("box_um") is not None])
    padded = [r["padded"] for r in rows if "padded" in r]
    deciles = "/".join(f"{v:.1f}" for v in np.percentile(scale, [10, 50, 90])) if len(scale) else "-"
    box = "/".join(f"{v:.1f}" for v in np.percentile(box_um, [50, 90, 99])) if len(box_um) else "-"
    mono_um = [r.get("box_um") for r, s in zip(rows, result["samples"], strict=True) if s.label == MONOCYTE]
    mono_um = [v for v in mono_um if v is not None]
    mono = "/".join(f"{v:.1f}" for v in np.percentile(mono_um, [50, 90])) + f" (n={len(mono_um)})" if mono_um else "-"
    cut = np.array([r["cut_out"] for r in rows if "cut_out" in r]).reshape(-1, len(CUT_OUT_ROWS))
    cut_out = " / ".join(f"{v:.2f}" for v in cut.mean(axis=0)) if len(cut) else "-"
    return (
        f"| {name} | {n} | {one:.2f} | {none:.2f} | {several:.2f} | {red:.2f} | {crop_box:.2f} | {deciles} | "
        f"{box} | {mono} | {np.mean(padded) if padded else 0:.2f} | {cut_out} |"
    )


HEADER = (
    "| set | n | one cell | none | several | red-cell ruler | crops by box | px/um p10/p50/p90 | "
    "box um p50/p90/p99 | monocyte box um p50/p90 | crop padded | cell cut out by x2 / x3 |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def contact_sheet(results: dict[str, dict], size: int, path: Path) -> None:
    tile = size + 4
    label_h = 18
    rows_per_set = -(-SHEET_PER_SET // SHEET_COLUMNS)
    sheet = Image.new("RGB", (SHEET_COLUMNS * tile, len(results) * (rows_per_set * tile + label_h)), "white")
    draw = ImageDraw.Draw(sheet)
    y = 0
    for name, result in results.items():
        draw.text((4, y + 3), f"{name} (crop: cell/frame, ruler: r=red cells, b=box)", fill="black")
        y += label_h
        pairs = list(zip(result["rows"], result["samples"], strict=True))
        per_class = SHEET_PER_SET // len(CLASSES)
        shown = [
            pair for label in range(len(CLASSES)) for pair in [p for p in pairs if p[1].label == label][:per_class]
        ]
        for i, (row, sample) in enumerate(shown):
            x0, y0 = (i % SHEET_COLUMNS) * tile, y + (i // SHEET_COLUMNS) * tile
            chosen = row["input"]
            sheet.paste(Image.fromarray(chosen.pixels), (x0 + 2, y0 + 2))
            tag = f"{sample.class_name[:3]} {'f' if chosen.crop == 'frame' else chosen.ruler[0]}{row['cells']}"
            draw.text((x0 + 4, y0 + 3), tag, fill="black")
        y += rows_per_set * tile
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA_ROOT)
    parser.add_argument("--per-set", type=int, default=200)
    parser.add_argument("--crop-um", type=float, default=22.0)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--sheet", type=Path, default=Path("build/crops_check.png"))
    args = parser.parse_args(argv)
    started = time.time()
    results = {
        name: measure(samples, args.crop_um, args.size)
        for name, samples in sample_sets(args.data, args.per_set).items()
    }
    print(f"crop_um {args.crop_um:g}, input {args.size} px; {time.time() - started:.0f} s\n")
    print(HEADER)
    for name, result in results.items():
        print(summary(name, result))
    contact_sheet(results, args.size, args.sheet)
    print(f"\ncontact sheet: {args.sheet}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
