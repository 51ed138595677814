"""Localisation figures on the whole-field photos (../shared/data/fields): the fixed split, matching, evaluation.

python -m export.fields [--split report|tune|both] [--sets bccd,txl] [--versions blur,...] [--no-versions]
                        [--versions-split report|tune] [--no-timing] [--misses] [--causes] [--rev REV]
                        [--edge-cut count|ignore|ignore-touching] [--write-split] [--card]

- Three sets: fields/bccd (640x480 microscope-camera fields), fields/txl (Raabin-WBC, PBC and BCCD fields,
  re-annotated), fields/phone (416x416 phone photos through an eyepiece, porcine blood). Only WBC boxes are
  targets; the RBC boxes give the scale truth: the median width of a field's RBC boxes / 7.5 um
  (fields with >= MIN_RBC_BOXES of them).
- One fixed split by sha256 of the image bytes (export/fields_split.csv, committed): `tune` (~40%, where thresholds and
  parameters may be chosen) and `report` (~60%, figures only). Byte-identical images (fields/txl repeats 71 fields of
  fields/bccd) share a sha256, so they always fall on the same side. `also_in` names the other sets holding the same
  bytes (e.g. bccd, or pbc_test for the classifier's pbc test split).
- Matching: a predicted and a true box match one to one when each box's centre lies inside the other; among the valid
  pairs, greedily by centre distance (closest first).
- Robustness versions of each report field: rescaled (x0.4 and x2, boxes scaled), yellow and blue casts, a black
  eyepiece circle, rotated 90 degrees, Gaussian blur (radius 1.5), saturation x0.5 (as the robustness table's).
- The versions are made of the report split, or of the tune split with --split tune (--versions-split overrides).
- --causes: why each missed true box was missed (miss_causes); --rev: the localiser as it was at a git revision
  (bench.locate_equality.load_reference), to compare before and after a change on the same fields.
- --edge-cut ignore: the fields as they are, with slivers of cells the image's edge cuts (cut_by_edge) counted neither
  as cells nor as spurious boxes; ignore-touching: every cell whose box reaches the edge, in the truth or not -
  information for issue #17's question on edge-cut cells, never the card's figures.
- --card: the report split's figures (every set, every version) become the "localisation" section of the committed
  model card (functions/classifier/model/model_card.json and docs/model-card.md; export.card.write_localisation).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from export.data import DATA_ROOT, pbc_splits

SETS = ("bccd", "txl", "phone")
SPLIT_FILE = Path(__file__).resolve().parent / "fields_split.csv"
TUNE_FRACTION = 0.40
RBC_DIAMETER_UM = 7.5
MIN_RBC_BOXES = 5
SCALE_TOLERANCE = 0.15
YELLOW_CAST = (1.05, 1.0, 0.72)
BLUE_CAST = (0.8, 0.92, 1.08)
BLUR_RADIUS = 1.5
SATURATION_FACTOR = 0.5
EDGE_TOUCH = 2  # px: a box this close to the image's edge touches it
EDGE_CUT_SHARE = 0.5
EDGE_CUT_RULES = ("count", "ignore", "ignore-touching")
# rows of boxes.csv that repeat an earlier one exactly, per set: fields/txl's are in two PBC fields, both on the report
# split (test_4e2139d2: its one WBC box six times, read before as six cells, five of which could never be matched, and
# most RBC boxes twice; test_6a5b8c22: RBC boxes only); no other set has any
DUPLICATE_ROWS = {"txl": 36}
# WBC boxes that match an earlier box of their field by the matching rule below (each centre inside the other): one
# cell annotated twice with slightly different corners. fields/txl has two, both neutrophils on the report split
# (test_9a5a40ca, IoU 0.74; val_c7e344a1, IoU 0.67; checked by eye); no other set has any
SAME_CELL_BOXES = {"txl": 2}


@dataclass
class FieldImage:
    set: str
    image: str  # the path relative to fields/<set>/, as in boxes.csv
    sha256: str
    split: str = ""
    wbc: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    rbc: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    also_in: str = ""

    def path(self, root: Path) -> Path:
        return Path(root) / "fields" / self.set / self.image

    @property
    def px_per_um(self) -> float | None:
        """The scale truth: the median width of the annotated RBC boxes / 7.5 um (None with too few boxes)."""
        if len(self.rbc) < MIN_RBC_BOXES:
            return None
        return float(np.median(self.rbc[:, 2] - self.rbc[:, 0])) / RBC_DIAMETER_UM


def split_of(sha256: str) -> str:
    """tune or report, fixed by the image bytes' sha256 (so duplicates always share a side)."""
    return "tune" if int(sha256[:12], 16) / float(1 << 48) < TUNE_FRACTION else "report"


def _pbc_shas(root: Path) -> dict[str, str]:
    """{sha256: 'pbc_<split>'} for the classifier's pbc splits (export.data), to record which fields are also there."""
    manifest = Path(root) / "pbc" / "MANIFEST.csv"
    if not manifest.is_file():
        return {}
    with open(manifest, newline="") as handle:
        sha_of = {row["path"]: row["sha256"] for row in csv.DictReader(handle)}
    out = {}
    for split, samples in pbc_splits(Path(root) / "pbc").items():
        for sample in samples:
            sha = sha_of.get(sample.path.relative_to(Path(root) / "pbc").as_posix())
            if sha:
                out[sha] = f"pbc_{split}"
    return out


def load_fields(root: Path = DATA_ROOT, sets: Iterable[str] = SETS) -> list[FieldImage]:
    """Every field of the given sets with its WBC and RBC boxes, its sha256 (of the bytes) and its split.

    A row of boxes.csv repeated exactly (same image, label and corners) is read once, and of two WBC boxes that match
    each other (one cell boxed twice, SAME_CELL_BOXES) the first is kept: one cell cannot be counted twice, and a
    one-to-one match would count every copy after the first as a miss (DUPLICATE_ROWS)."""
    root = Path(root)
    fields: list[FieldImage] = []
    for name in sets:
        folder = root / "fields" / name
        boxes: dict[str, dict[str, list]] = {}
        with open(folder / "boxes.csv", newline="") as handle:
            for row in csv.DictReader(handle):
                box = [float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")]
                same_label = boxes.setdefault(row["image"], {}).setdefault(row["label"], [])
                if box not in same_label:  # a repeated row is one cell (DUPLICATE_ROWS)
                    same_label.append(box)
        with open(folder / "MANIFEST.csv", newline="") as handle:
            images = [row["path"] for row in csv.DictReader(handle)]
        for image in sorted(images):
            sha = hashlib.sha256((folder / image).read_bytes()).hexdigest()
            own = boxes.get(image, {})
            fields.append(
                FieldImage(
                    set=name,
                    image=image,
                    sha256=sha,
                    split=split_of(sha),
                    wbc=one_box_per_cell(np.asarray(own.get("WBC", []), dtype=np.float64).reshape(-1, 4)),
                    rbc=np.asarray(own.get("RBC", []), dtype=np.float64).reshape(-1, 4),
                )
            )
    sets_of: dict[str, list[str]] = {}
    for f in fields:
        sets_of.setdefault(f.sha256, []).append(f.set)
    pbc = _pbc_shas(root)
    for f in fields:
        others = [s for s in sets_of[f.sha256] if s != f.set] + ([pbc[f.sha256]] if f.sha256 in pbc else [])
        f.also_in = ";".join(others)
    return fields


def one_box_per_cell(boxes: np.ndarray) -> np.ndarray:
    """The boxes in order, without any that matches a kept one (match: each centre inside the other): one cell."""
    kept: list[np.ndarray] = []
    for box in boxes:
        if not match(box[None], np.asarray(kept).reshape(-1, 4)):
            kept.append(box)
    return np.asarray(kept, dtype=np.float64).reshape(-1, 4)


def write_split(fields: list[FieldImage], path: Path = SPLIT_FILE) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["set", "image", "sha256", "split", "also_in"])
        for f in fields:
            writer.writerow([f.set, f.image, f.sha256, f.split, f.also_in])


def read_split(path: Path = SPLIT_FILE) -> dict[tuple[str, str], tuple[str, str]]:
    """{(set, image): (sha256, split)} from the committed split file."""
    with open(path, newline="") as handle:
        return {(r["set"], r["image"]): (r["sha256"], r["split"]) for r in csv.DictReader(handle)}


def check_split(fields: list[FieldImage], path: Path = SPLIT_FILE) -> None:
    """The fields on disk are exactly the ones the committed split lists, with the same bytes and sides."""
    recorded = read_split(path)
    found = {(f.set, f.image): (f.sha256, f.split) for f in fields}
    sets = {f.set for f in fields}
    recorded = {k: v for k, v in recorded.items() if k[0] in sets}
    if recorded != found:
        differ = sorted(set(recorded.items()) ^ set(found.items()))[:5]
        raise ValueError(f"the fields differ from {path.name} (e.g. {differ}); rerun with --write-split if intended")


# ---------------------------------------------------------------------------------------------------------- matching
def centres(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)


def match(predicted: np.ndarray, truth: np.ndarray) -> list[tuple[int, int]]:
    """One-to-one pairs (i_pred, j_true) where each box's centre lies inside the other, closest centres first."""
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1, 4)
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, 4)
    if not len(predicted) or not len(truth):
        return []
    cp, ct = centres(predicted), centres(truth)

    def inside(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:  # [points, boxes]
        x, y = points[:, None, 0], points[:, None, 1]
        return (x >= boxes[None, :, 0]) & (x <= boxes[None, :, 2]) & (y >= boxes[None, :, 1]) & (y <= boxes[None, :, 3])

    valid = inside(ct, predicted).T & inside(cp, truth)  # [pred, true]
    distance = np.hypot(cp[:, None, 0] - ct[None, :, 0], cp[:, None, 1] - ct[None, :, 1])
    pairs, used_p, used_t = [], set(), set()
    for flat in np.argsort(np.where(valid, distance, np.inf), axis=None, kind="stable"):
        i, j = divmod(int(flat), len(truth))
        if not valid[i, j]:
            break
        if i not in used_p and j not in used_t:
            pairs.append((i, j))
            used_p.add(i)
            used_t.add(j)
    return pairs


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The 95% Wilson score interval of k successes in n trials ((nan, nan) for n = 0)."""
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


# -------------------------------------------------------------------------------------------------------- versions
def _scale_boxes(boxes: np.ndarray, sx: float, sy: float) -> np.ndarray:
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4) * np.array([sx, sy, sx, sy])


def rescale(image: Image.Image, wbc: np.ndarray, factor: float) -> tuple[Image.Image, np.ndarray]:
    w, h = image.size
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=None), _scale_boxes(wbc, size[0] / w, size[1] / h)


def tint(image: Image.Image, wbc: np.ndarray, gains: tuple[float, float, float]) -> tuple[Image.Image, np.ndarray]:
    rgb = np.asarray(image, dtype=np.float32) * np.asarray(gains, dtype=np.float32)
    return Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8)), wbc


def _inside_vignette(size: tuple[int, int], wbc: np.ndarray) -> np.ndarray:
    """Which true boxes the vignette keeps: those whose centre is inside its circle (2 px in from the edge)."""
    w, h = size
    c = centres(wbc)
    return np.hypot(c[:, 0] - w / 2, c[:, 1] - h / 2) <= min(w, h) / 2 - 2


def vignette(image: Image.Image, wbc: np.ndarray) -> tuple[Image.Image, np.ndarray]:
    """Black outside a centred circle whose diameter is the short side; WBCs whose centre is outside are dropped."""
    w, h = image.size
    r = min(w, h) / 2
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).ellipse([w / 2 - r, h / 2 - r, w / 2 + r, h / 2 + r], fill=255)
    out = Image.composite(image, Image.new("RGB", (w, h), (0, 0, 0)), mask)
    return out, np.asarray(wbc).reshape(-1, 4)[_inside_vignette((w, h), wbc)]


def cut_by_vignette(size: tuple[int, int], wbc: np.ndarray) -> np.ndarray:
    """The true boxes vignette drops that still show in part inside its circle: white cells the circle cuts."""
    w, h = size
    b = np.asarray(wbc, dtype=np.float64).reshape(-1, 4)
    # the box's point nearest the circle's centre
    near_x = np.clip(w / 2, b[:, 0], b[:, 2])
    near_y = np.clip(h / 2, b[:, 1], b[:, 3])
    shows = np.hypot(near_x - w / 2, near_y - h / 2) < min(w, h) / 2
    return b[shows & ~_inside_vignette(size, b)]


def _at_edge(size: tuple[int, int], b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which boxes reach the image's left or right edge, and which its top or bottom (within EDGE_TOUCH px)."""
    w, h = size
    return (b[:, 0] <= EDGE_TOUCH) | (b[:, 2] >= w - EDGE_TOUCH), (b[:, 1] <= EDGE_TOUCH) | (b[:, 3] >= h - EDGE_TOUCH)


def touching_edge(size: tuple[int, int], boxes: np.ndarray) -> np.ndarray:
    """Which boxes reach the image's edge (within EDGE_TOUCH px)."""
    at_x, at_y = _at_edge(size, np.asarray(boxes, dtype=np.float64).reshape(-1, 4))
    return at_x | at_y


def cut_by_edge(size: tuple[int, int], wbc: np.ndarray) -> np.ndarray:
    """Which true boxes are slivers of cells the image's edge cuts: a box touching the edge (within EDGE_TOUCH px) whose
    side across that edge is under EDGE_CUT_SHARE of its other side (less than about half the cell in view). fields/txl
    boxes such slivers, fields/bccd mostly leaves them out (issue #17's question 2); --edge-cut ignore reads the figures
    as if they did not count."""
    b = np.asarray(wbc, dtype=np.float64).reshape(-1, 4)
    at_x, at_y = _at_edge(size, b)
    bw, bh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    return (at_x & (bw < EDGE_CUT_SHARE * bh)) | (at_y & (bh < EDGE_CUT_SHARE * bw))


def rotate90(image: Image.Image, wbc: np.ndarray) -> tuple[Image.Image, np.ndarray]:
    """90 degrees counter-clockwise: (x, y) -> (y, W - x)."""
    w, _ = image.size
    b = np.asarray(wbc, dtype=np.float64).reshape(-1, 4)
    boxes = np.stack([b[:, 1], w - b[:, 2], b[:, 3], w - b[:, 0]], axis=1)
    return image.transpose(Image.Transpose.ROTATE_90), boxes


def blur(image: Image.Image, wbc: np.ndarray) -> tuple[Image.Image, np.ndarray]:
    return image.filter(ImageFilter.GaussianBlur(BLUR_RADIUS)), wbc


def desaturate(image: Image.Image, wbc: np.ndarray) -> tuple[Image.Image, np.ndarray]:
    """Saturation x SATURATION_FACTOR (Pillow's ImageEnhance.Color, as export/perturb.py's saturation row)."""
    return ImageEnhance.Color(image).enhance(SATURATION_FACTOR), wbc


VERSIONS: dict[str, Callable[[Image.Image, np.ndarray], tuple[Image.Image, np.ndarray]]] = {
    "scale_x0.4": lambda im, b: rescale(im, b, 0.4),
    "scale_x2": lambda im, b: rescale(im, b, 2.0),
    "yellow_cast": lambda im, b: tint(im, b, YELLOW_CAST),
    "blue_cast": lambda im, b: tint(im, b, BLUE_CAST),
    "vignette": vignette,
    "rotate90": rotate90,
    "blur": blur,
    "saturation_x0.5": desaturate,
}
# Ignored boxes (the "ignore regions" of detection benchmarks): cells a version hides in part, which a box may find or
# not without counting (docs/experiments.md, "The synthetic eyepiece circle"). Image size and true boxes before the
# version -> the ignored boxes, in the version's pixels.
IGNORED: dict[str, Callable[[tuple[int, int], np.ndarray], np.ndarray]] = {"vignette": cut_by_vignette}


# ------------------------------------------------------------------------------------------------------ evaluation
@dataclass
class Tally:
    fields: int = 0
    true: int = 0
    predicted: int = 0
    matched: int = 0
    scale_fields: int = 0
    scale_within: int = 0
    misses: list[str] = field(default_factory=list)  # images with a missed or a spurious box
    scale_ratios: list[float] = field(default_factory=list)  # estimated / true px per um, per field with a truth

    @property
    def recall(self) -> float:
        return self.matched / self.true if self.true else math.nan

    @property
    def precision(self) -> float:
        return self.matched / self.predicted if self.predicted else math.nan

    def row(self) -> dict:
        return {
            "fields": self.fields,
            "wbc": self.true,
            "predicted": self.predicted,
            "recall": self.recall,
            "recall_ci": wilson(self.matched, self.true),
            "precision": self.precision,
            "precision_ci": wilson(self.matched, self.predicted),
            "scale_fields": self.scale_fields,
            "scale_within": self.scale_within / self.scale_fields if self.scale_fields else math.nan,
            "scale_ci": wilson(self.scale_within, self.scale_fields),
            "scale_median_ratio": float(np.median(self.scale_ratios)) if self.scale_ratios else math.nan,
        }


def _locate_boxes(locate: Callable, image: Image.Image) -> tuple[np.ndarray, float | None]:
    result = locate(np.asarray(image.convert("RGB")))
    boxes = np.asarray([tuple(b) for b in result.boxes], dtype=np.float64).reshape(-1, 4)
    return boxes, result.px_per_um


def on_ignored(boxes: np.ndarray, pairs: list[tuple[int, int]], ignored: np.ndarray) -> list[int]:
    """The predicted boxes left unmatched whose centre lies inside an ignored box: neither matched nor spurious."""
    matched = {i for i, _ in pairs}
    c = centres(boxes)
    return [
        i
        for i in range(len(boxes))
        if i not in matched
        and any(x0 <= c[i, 0] <= x1 and y0 <= c[i, 1] <= y1 for x0, y0, x1, y1 in np.asarray(ignored).reshape(-1, 4))
    ]


def evaluate(
    locate: Callable,
    fields: list[FieldImage],
    root: Path = DATA_ROOT,
    version: str | None = None,
    edge_cut: str = "count",
) -> Tally:
    """Recall, precision and scale agreement of `locate` on the fields (optionally a robustness version of each; a
    box on a cell the version hides in part, IGNORED, is not counted). `edge_cut` (EDGE_CUT_RULES): "ignore", slivers
    of cells the image's edge cuts (cut_by_edge) count neither as cells nor, when a box finds them, as spurious boxes;
    "ignore-touching", every cell whose box reaches the edge counts neither way, found or not, boxed in the truth or
    not (the counting-chamber convention: only cells wholly in view)."""
    if edge_cut not in EDGE_CUT_RULES:
        raise ValueError(f"edge_cut: one of {EDGE_CUT_RULES}")
    if edge_cut != "count" and version is not None:
        raise ValueError("edge_cut other than 'count' reads the fields as they are, not a robustness version")
    tally = Tally()
    for f in fields:
        with Image.open(f.path(root)) as opened:
            image = opened.convert("RGB")
        truth = f.wbc
        ignored = np.zeros((0, 4))
        if edge_cut != "count":
            cut = (cut_by_edge if edge_cut == "ignore" else touching_edge)(image.size, truth)
            ignored, truth = truth[cut], truth[~cut]
        factor = 1.0
        if version is not None:
            if version in IGNORED:
                ignored = IGNORED[version](image.size, truth)
            image, truth = VERSIONS[version](image, truth)
            if version.startswith("scale_x"):
                factor = float(version[len("scale_x") :])
        boxes, px_per_um = _locate_boxes(locate, image)
        pairs = match(boxes, truth)
        left_out = set(on_ignored(boxes, pairs, ignored))
        if edge_cut == "ignore-touching":  # a box on a cell at the edge that the truth left unboxed
            matched = {i for i, _ in pairs}
            left_out |= {i for i in np.flatnonzero(touching_edge(image.size, boxes)) if i not in matched}
        counted = len(boxes) - len(left_out)
        tally.fields += 1
        tally.true += len(truth)
        tally.predicted += counted
        tally.matched += len(pairs)
        if len(pairs) != len(truth) or len(pairs) != counted:
            tally.misses.append(f"{f.set}/{f.image}")
        expected = f.px_per_um
        if expected is not None and f.set != "phone":
            tally.scale_fields += 1
            if px_per_um is not None:
                tally.scale_ratios.append(px_per_um / (expected * factor))
                if abs(tally.scale_ratios[-1] - 1) <= SCALE_TOLERANCE:
                    tally.scale_within += 1
    return tally


def miss_causes(localiser, fields: list[FieldImage], root: Path = DATA_ROOT) -> dict[str, int]:
    """Each true box, by what became of it: "matched"; "generation" (no candidate of the generator matches it one to
    one: thresholds, size bounds, scale); "scorer" (one does, but every such candidate scored under SCORE_MIN);
    "suppressed" (one scored above it, yet none of them ended matched: inside a kept box, or paired elsewhere).
    `localiser`: the logic.localiser module (or a revision of it)."""
    counts = dict.fromkeys(("matched", "generation", "scorer", "suppressed"), 0)
    for f in fields:
        with Image.open(f.path(root)) as opened:
            rgb = np.asarray(opened.convert("RGB"))
        if hasattr(localiser, "candidate_scores"):  # version 6 on: the logistic's and the network's mean
            prepared = localiser._working_copy(rgb)
            _, candidates, features, _ = localiser._features_and_boxes(rgb, prepared=prepared)
            scores = localiser.candidate_scores(prepared[1], candidates, features)
        else:
            _, candidates, features, _ = localiser._features_and_boxes(rgb)
            scores = localiser.score(features)
        kept = np.asarray([tuple(b) for b in localiser.locate(rgb).boxes], dtype=np.float64).reshape(-1, 4)
        matched = {j for _, j in match(kept, f.wbc)}
        for j, truth in enumerate(f.wbc):
            near = [i for i in range(len(candidates)) if match(candidates[i][None], truth[None])]
            if j in matched:
                counts["matched"] += 1
            elif not near:
                counts["generation"] += 1
            elif max(scores[i] for i in near) < localiser.SCORE_MIN:
                counts["scorer"] += 1
            else:
                counts["suppressed"] += 1
    return counts


def time_locate(locate: Callable, image: Image.Image, repeats: int = 15, pil: bool = False) -> float:
    """Median wall time in ms of locate on the image's pixels, or on the PIL image itself (warm: one call first)."""
    rgb = image.convert("RGB") if pil else np.ascontiguousarray(np.asarray(image.convert("RGB")))
    locate(rgb)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        locate(rgb)
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))


def with_interval(p: float, ci: tuple[float, float]) -> str:
    """A figure and its 95% interval as the tables print them (README, the model card): 0.977 [0.947-0.990]."""
    if math.isnan(p):
        return "      -       "
    return f"{p:.3f} [{ci[0]:.3f}-{ci[1]:.3f}]"


def format_row(name: str, row: dict) -> str:
    scale = "-"
    if not math.isnan(row["scale_within"]):
        scale = f"{row['scale_within']:.3f} (n={row['scale_fields']}, median ratio {row['scale_median_ratio']:.2f})"
    return (
        f"{name:<28} {row['fields']:>6} {row['wbc']:>5} {row['predicted']:>5}  "
        f"{with_interval(row['recall'], row['recall_ci'])}  {with_interval(row['precision'], row['precision_ci'])}  "
        f"{scale}"
    )


HEADER = (
    f"{'set/split/version':<28} {'fields':>6} {'wbc':>5} {'pred':>5}  {'recall [95% Wilson]':<21}  "
    f"{'precision [95% Wilson]':<21}  scale within +-15%"
)


# issue #17's bars, on the report split: recall and precision per set, the scale within +-15% on this share of the
# fields of the sets with a scale truth, and recall and precision on every robustness version
BARS = {"bccd": (0.97, 0.97), "txl": (0.97, 0.97), "phone": (0.93, 0.93)}
SCALE_BAR = 0.90
VERSION_BAR = 0.90


def json_figure(value):
    """A figure as JSON holds it: NaN (no truth to measure against) becomes None."""
    if isinstance(value, tuple | list):
        return [json_figure(v) for v in value]
    return None if isinstance(value, float) and math.isnan(value) else value


def card_section(rows: dict[str, dict], version_rows: dict[str, dict[str, dict]]) -> dict:
    """The model card's "localisation" section: the report split's Tally.row() of each set, and recall / precision /
    scale within +-15% of each robustness version, with the localiser version they were measured with."""
    from hematovision.logic.localiser import LOCALISER_VERSION

    return {
        "localiser_version": LOCALISER_VERSION,
        "split": "report",
        "what": (
            "the report split of export/fields_split.csv (../shared/data/fields, deduplicated by sha256; every "
            "threshold and the scorer's weights were chosen on the tune split); a predicted and a true box match one "
            "to one when each box's centre lies inside the other; a row repeated in a set's boxes.csv, or two WBC "
            "boxes that match each other, count as one cell; scale: px_per_um within +-15% of the median width of "
            "the field's red-cell boxes / 7.5 um; 95% Wilson intervals; the vignette version drops the true boxes "
            "whose centre its circle hides, and a box on the visible part of such a cut cell is ignored (neither "
            "matched nor spurious)"
        ),
        "reproduce": "python -m export.fields --split report --card",
        "bars": {"sets": {k: list(v) for k, v in BARS.items()}, "scale_within": SCALE_BAR, "versions": VERSION_BAR},
        "sets": {name: {k: json_figure(v) for k, v in row.items()} for name, row in rows.items()},
        "versions": {
            version: {
                name: {k: json_figure(row[k]) for k in ("recall", "precision", "scale_within")}
                for name, row in by_set.items()
            }
            for version, by_set in version_rows.items()
        },
    }


def unique(fields: list[FieldImage]) -> list[FieldImage]:
    """Each image once (the first set that holds it, in SETS order)."""
    seen, out = set(), []
    for f in fields:
        if f.sha256 not in seen:
            seen.add(f.sha256)
            out.append(f)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.fields", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA_ROOT, help="folder holding fields/")
    parser.add_argument("--split", choices=["report", "tune", "both"], default="both")
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated sets (default: all)")
    parser.add_argument("--versions", default=",".join(VERSIONS), help="comma-separated robustness versions")
    parser.add_argument("--no-versions", action="store_true", help="skip the robustness versions")
    parser.add_argument(
        "--versions-split",
        choices=["report", "tune"],
        help="the split the versions are made of (default: tune with --split tune, else report)",
    )
    parser.add_argument("--no-timing", action="store_true", help="skip the timings")
    parser.add_argument("--misses", action="store_true", help="list the fields with a missed or spurious box")
    parser.add_argument("--causes", action="store_true", help="count the missed true boxes by cause (miss_causes)")
    parser.add_argument("--rev", help="evaluate logic/localiser.py as it was at this git revision")
    parser.add_argument(
        "--edge-cut",
        choices=EDGE_CUT_RULES,
        default="count",
        help="ignore: slivers of cells the image's edge cuts (cut_by_edge) count neither way; ignore-touching: every "
        "cell whose box reaches the edge (fields as they are only)",
    )
    parser.add_argument("--write-split", action="store_true", help=f"(re)write {SPLIT_FILE.name} and exit")
    parser.add_argument(
        "--card", action="store_true", help="write the report split's figures into the committed model card"
    )
    args = parser.parse_args(argv)
    if args.versions_split is None:  # a tune run never prints report figures unasked
        args.versions_split = "tune" if args.split == "tune" else "report"
    if args.card and (
        args.split == "tune"
        or args.rev
        or args.edge_cut != "count"
        or args.no_versions
        or args.versions_split != "report"
        or set(args.sets.split(",")) != set(SETS)
        or set(args.versions.split(",")) != set(VERSIONS)
    ):
        parser.error("--card needs the report split of every set and every version, with this checkout's localiser")
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    fields = load_fields(args.data)
    if args.write_split:
        write_split(fields)
        print(f"wrote {SPLIT_FILE} ({len(fields)} fields)")
        return 0
    if args.rev:
        from bench.locate_equality import load_reference

        localiser = load_reference(args.rev)
    else:
        from hematovision.logic import localiser
    locate = localiser.locate

    check_split(fields)
    splits = ["tune", "report"] if args.split == "both" else [args.split]
    sets = [s for s in args.sets.split(",") if s]
    versions = [v for v in args.versions.split(",") if v]
    unknown = sorted(set(sets) - set(SETS)) + sorted(set(versions) - set(VERSIONS))
    if unknown:
        parser.error(f"unknown sets or versions: {unknown}")
    suffix = {"count": "", "ignore": " edge slivers out", "ignore-touching": " edge cells out"}[args.edge_cut]
    if args.edge_cut != "count" and not args.no_versions:
        print(f"(--edge-cut {args.edge_cut}: the robustness versions below count every cell)")
    print(HEADER)
    rows, version_rows = {}, {}
    for split in splits:
        for name in sets:
            chosen = [f for f in fields if f.set == name and f.split == split]
            tally = evaluate(locate, chosen, args.data, edge_cut=args.edge_cut)
            row = tally.row()
            print(format_row(f"{name}/{split}{suffix}", row), flush=True)
            if split == "report":
                rows[name] = row
            if args.misses:
                print("   misses:", " ".join(tally.misses))
            if args.causes:
                causes = miss_causes(localiser, chosen, args.data)
                print("   true boxes by cause:", ", ".join(f"{k} {v}" for k, v in causes.items()), flush=True)
        chosen = unique([f for f in fields if f.split == split and f.set in sets])
        tally = evaluate(locate, chosen, args.data, edge_cut=args.edge_cut)
        print(format_row(f"all/{split} (unique images){suffix}", tally.row()), flush=True)
    if not args.no_versions:
        for version in versions:
            for name in sets:
                chosen = [f for f in fields if f.set == name and f.split == args.versions_split]
                tally = evaluate(locate, chosen, args.data, version)
                print(format_row(f"{name}/{args.versions_split}/{version}", tally.row()), flush=True)
                version_rows.setdefault(version, {})[name] = tally.row()
    if args.card:
        from export.card import COMMITTED_CARD, write_localisation

        write_localisation(card_section(rows, version_rows))
        print(f"wrote the localisation section of {COMMITTED_CARD} and docs/model-card.md")
    if not args.no_timing:
        sample = next(f for f in fields if f.set == "bccd")
        with Image.open(sample.path(args.data)) as opened:
            image = opened.convert("RGB")
        big = image.resize((4000, 3000), Image.Resampling.BILINEAR)
        print(
            f"time per field, median of 15 warm calls, 1 thread: 640x480 {time_locate(locate, image):.1f} ms, ", end=""
        )
        print(f"4000x3000 {time_locate(locate, big):.1f} ms (array), {time_locate(locate, big, pil=True):.1f} ms (PIL)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
