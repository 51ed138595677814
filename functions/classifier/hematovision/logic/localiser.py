"""Find the white cells (WBC) in a whole-field smear photo and the photo's scale, from the stain (numpy + Pillow).

1. Work on a copy reduced to at most WORK_LONG_SIDE pixels on its long side (a large array is first strided, a
   large PIL image box-reduced by Pillow, so a 12 MP photo costs about what a 640x480 one does).
2. The background colour is the median of the brightest pixels; the black eyepiece circle (or letterbox) is the set of
   dark, large regions touching the border. A photo pasted on a plain canvas (shrunk onto its own canvas, an app's
   letterbox: one exact colour around it) is located alone, cut from the canvas, as if it came uncropped. Every
   pixel becomes an optical density relative to the background, OD = log(background / pixel) per channel, which
   cancels colour casts and exposure (they are per-channel gains).
3. The scale: the distance transform of the red-cell mask peaks at cell centres; the median peak (cells cut by the
   image's edge left out), scaled by SCALE_FIT for a bias that grows with the share of the field the red cells cover
   (overlapping cells in dense fields), is the red-cell diameter, hence px per um (7.5 um across); red cells under
   SCALE_FINE_BELOW px are measured again at a finer size (SCALE_FINE_TARGET). Where the red
   cells give no ruler (ruler "default"), the diameter used to look for nuclei is guessed from the largest nucleus
   (its area over NUCLEUS_RBC_AREA red cells') where that guess says the photo holds few red cells across
   (NUCLEUS_GUESS_MIN: a high magnification, a tight crop), else DEFAULT_RBC_PX_FRACTION of the long side; the crop
   is then sized by the cell's box (logic/cell_crop.py).
4. Candidates: the image is resampled so a red cell is about TARGET_RBC_PX across; for each threshold set of PASSES
   (and of EYEPIECE_PASSES inside an eyepiece's circle),
   nuclei are the pixels much darker than the red cells (green OD >= low x the red cells' level) and not reddish
   (red OD - blue OD >= chroma x the level; the second set admits magenta nuclei that are very dark), seeded by darker
   pixels; pieces within a lobe gap are merged; a merged group whose pixels form two clusters more than SPLIT_GAP
   red-cell diameters apart (2-means) is cut in two (two touching white cells); sizes are bounded relative to a red
   cell. The red cells' level comes from the 75th percentile of the field, so a white cell filling the frame does
   not become the reference. Inside an eyepiece's circle, a scale larger than the eyepiece allows (EYEPIECE_RBC:
   touching red cells) adds a second candidate pass at that bound when the field's texture agrees (EYEPIECE_DOG),
   else at the red-cell diameter the largest nucleus implies (red cells packed in bands: the bands carry the texture).
5. Scoring: each candidate gets FEATURES (size, darkness, hue, shape, its ring, the vignette nearby, its colour
   relative to the field's other candidates, ...) and a logistic-regression probability (MODEL_*, fitted by
   export/localiser_train.py on the tune split's candidates, as they are and in every robustness version); its patch
   (candidate_patches) gets a small network's probability (CANDIDATE_NET, export/candidate_net.py, same candidates).
   The score is their mean (served_score). Candidates scoring >= SCORE_MIN are kept, best first, unless their
   centre lies in a box already kept (lobes, other passes).
6. Each white cell's box is centred on its nucleus, at least BOX_RBC red-cell diameters wide, in original pixels.
7. A photo with no candidate kept (none found, or all scored under SCORE_MIN) may be one white cell filling the frame
   (_one_cell, ONE_CELL_AREA): then one box around its nucleus, and the scale guessed from the nucleus (ruler
   "default").
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageFilter

# The version of locate()'s answers. A model trained on cell crops records it in its card (card["localiser"]
# ["version"]) and is refused at load by logic/inference.py when it differs: the model learned this localiser's boxes
# and scale. Bump it with any change that moves a box or px_per_um on the classifier's images (bccd, pbc, dbn, the
# classify path); a change that moves boxes only elsewhere (the eyepiece pass: photos inside an eyepiece's circle)
# keeps it when `python -m bench.locate_equality --classifier-sets` finds those images' answers unchanged.
LOCALISER_VERSION = "10"
RBC_DIAMETER_UM = 7.5
WORK_LONG_SIDE = 400
TARGET_RBC_PX = 16.0
MIN_SIDE = 16  # smaller images hold no cell we could find: an empty answer
DARK_FRACTION = 0.30  # a vignette pixel: brightest channel below this fraction of the background's
PADDING_AREA = 0.05  # a canvas around the photo covers at least this share of the image ...
PADDING_INSIDE = 0.02  # ... and at most this share of the photo's bounding box (a flat plasma is not a canvas)
PADDING_MIN_SIDE = 0.3  # ... and the photo spans at least this share of each side
NUCLEUS_LOW = 1.4  # nucleus pixels: green OD >= this x the cells' median green OD ...
NUCLEUS_HIGH = 1.8  # ... in components holding a pixel >= this
NUCLEUS_CHROMA = 0.3  # red OD - blue OD >= this x the cells' median green OD (purple/blue, not red or grey)
LOBE_GAP = 0.35  # merge nucleus pieces closer than this many red-cell diameters
MIN_NUCLEUS_AREA = 0.20  # a nucleus covers at least this fraction of a red cell's area (platelets: ~0.1)
MAX_NUCLEUS_AREA = 6.0  # larger dark regions are clumps or stain debris
SPLIT_AREA = 0.8  # a nucleus group this large (x a red cell's area) may be two white cells ...
SPLIT_GAP = 1.7  # ... when its pixels form two clusters this many red-cell diameters apart (tune: 1.3-1.7 alike)
SPLIT_SHARE = 0.25  # ... each holding at least this share of the pixels
BOX_RBC = 1.6  # the box is at least this many red-cell diameters wide (tune split: 1.6 beat 1.9)
BOX_MARGIN = 0.25  # and the nucleus' box grown by this many red-cell diameters on each side
DEFAULT_RBC_PX_FRACTION = 1 / 40  # with no usable red cells: a red cell is this fraction of the long side
NUCLEUS_RBC_AREA = 1.8  # ... or the largest nucleus' area / this (exp of the median log_area: 0.5-0.64) ...
NUCLEUS_GUESS_MIN = 1 / 8  # ... where that makes a red cell this share of the long side or more (few cells in view)
# A photo with no nucleus candidate may be one white cell filling the frame (a high magnification, a tight crop): the
# red-cell level is then the cell's own, and no pixel is that much darker. It is one cell when the largest region of
# dark (green OD >= ONE_CELL_PIXEL_OD), not reddish (red OD > blue OD) pixels covers ONE_CELL_AREA of the photo or
# more and its mean green OD is ONE_CELL_OD or more: a nucleus (pbc val enlarged x3: 1.7-2.0), not red cells
# (dbn-select and bccd val enlarged x2 / x3 with the white cell cut out of the photo: 0.2-0.75; 10th-90th
# percentiles).
ONE_CELL_AREA = 0.08
ONE_CELL_PIXEL_OD = 0.8
ONE_CELL_OD = 1.2
# its box: the nucleus' box grown by this x its longer side on each side (inside the photo), so that the box-ruled
# crop (logic/cell_crop.BOX_CROP) holds the cell at about half its side, as the red-cell ruler's crops do
ONE_CELL_MARGIN = 0.3
# red-cell diameter = the typical distance-transform peak x exp(a + b x the share of the field the red cells cover):
# (a, b) fitted on the tune split by `python -m export.localiser_train --fit-scale`
SCALE_FIT = (1.251, -0.6131)
SCALE_LONG_SIDE = 256  # the distance transform's working size
# Where it finds red cells under SCALE_FINE_BELOW px across (phone photos: 7-17 px), the transform runs again on the
# green density resized so that they are about SCALE_FINE_TARGET px (at most SCALE_FINE_MAX x the working copy): peaks a
# few whole pixels deep made the scale jump with a JPEG re-save. bccd / txl red cells, which SCALE_FIT was fitted on,
# are 34-80 px at SCALE_LONG_SIDE (docs/experiments.md, "the scale re-measured at a finer size").
SCALE_FINE_BELOW = 16.0
SCALE_FINE_TARGET = 24.0
SCALE_FINE_MAX = 3.0
LEVEL_CUT = 0.3  # the nucleus thresholds' red-cell level: the mode of the green OD above this x its 75th percentile,
# taken at the centre of the histogram's top (the run of smoothed bins >= LEVEL_PLATEAU x the peak around it): on a
# flat top the highest bin is a toss-up that a JPEG re-save or a 12 MP photo's resampling turns (docs/experiments.md)
LEVEL_PLATEAU = 0.8
RING = 0.5  # the ring feature's margin around a nucleus, in red-cell diameters
# A photo through an eyepiece: the vignette's inner edge is a circle (its edge pixels' median distance to the fitted
# circle within EYEPIECE_FIT of its radius; the black corners of a rotated or shifted crop, a letterbox, are no circle).
# The eyepiece shows a fixed field (~20 mm field number / a <= 100x objective: >= ~200 um across), so a red cell spans
# at most ~0.04 of the circle; EYEPIECE_RBC allows about twice that (tune split, phone recall / precision: 0.864 /
# 0.918 at 0.05, 0.877 / 0.928 at 0.06, 0.883 / 0.929 at 0.07). Touching red cells (phone photos of thick areas) fool
# the distance transform into a diameter several times too large, which puts every white cell's nucleus under the
# size bound. Above the bound, a second candidate pass runs at the bound when the field's texture agrees: a difference
# of Gaussians tuned to a red cell of the bound's size carries at least EYEPIECE_DOG x the energy of one tuned to the
# estimate (export.fields' synthetic circle around a 100x bccd field mostly fails it: without the test, its tune
# precision falls from 0.940 to 0.66). Where the test fails, the second pass runs at the diameter the largest nucleus
# implies (_nucleus_diameter) when that is under EYEPIECE_NUCLEUS x the estimate and within the bound itself: red cells
# packed in bands measure the bands, not the cells, in the distance transform and in the texture alike (phone tune: 21
# of the generator's 23 misses were the scale's), while nuclei that also say the cells are large (a 100x field in a
# tight circle) leave the estimate standing (docs/experiments.md, "the nucleus ruler where the red cells' scale exceeds
# the eyepiece's bound"). px_per_um stays the estimate's.
EYEPIECE_FIT = 0.02
EYEPIECE_RBC = 0.07
EYEPIECE_DOG = 0.6
EYEPIECE_NUCLEUS = 0.8
DOG_SPREAD = 1.25  # the difference of Gaussians: sigma / DOG_SPREAD minus sigma x DOG_SPREAD
SCORE_MIN = 0.55  # a candidate is a white cell when its score reaches this (tune split out of fold, plain and
# versions: export.candidate_net cv on the served generator)
# the candidate scorer (export/localiser_train.py fits it on the tune split's candidates; it prints these)
EXPAND_CLIP = 4.0
MODEL_MEAN = np.array(
    [
        -0.15902,
        2.9742,
        0.66688,
        0.84209,
        0.19052,
        0.47225,
        0.32056,
        0.83105,
        1.04,
        0.81121,
        0.028737,
        2.3653,
        1.4627,
        0.68941,
        0.67222,
        -0.014369,
        0.013972,
        0.0080671,
    ]
)
MODEL_SCALE = np.array(
    [
        0.81824,
        1.1958,
        0.28531,
        0.58971,
        0.15848,
        0.18202,
        0.15002,
        0.16016,
        1.6355,
        0.21035,
        0.086947,
        0.7677,
        1.1299,
        3.1088,
        0.29964,
        0.33821,
        0.10455,
        0.10573,
    ]
)
MODEL_WEIGHTS = np.array(
    [
        0.48691,
        3.2547,
        -0.18723,
        -4.0484,
        -2.8677,
        2.2373,
        0.35891,
        0.84259,
        1.6479,
        1.125,
        -1.7714,
        -0.696,
        0.21848,
        7.4857,
        -0.15396,
        -0.56385,
        -1.4398,
        -0.011282,
        -0.21917,
        -0.15555,
        -0.182,
        0.2717,
        0.016642,
        0.092397,
        -0.045497,
        0.014686,
        -0.2365,
        -0.060345,
        0.096437,
        0.10586,
        0.62911,
        2.0423,
        0.15211,
        -0.16845,
        0.20438,
        -0.33904,
    ]
)
MODEL_BIAS = 1.0115


@dataclass
class Localisation:
    """White-cell boxes (xmin, ymin, xmax, ymax) in the pixels of the image given, with a score each, and the scale."""

    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    px_per_um: float | None = None
    ruler: str = "none"  # "red_cells": estimated from the red cells; "default": from the largest nucleus or the size
    red_cell_cover: float | None = None  # with the red-cell ruler: the share of the field its cell mask covers
    width: int = 0
    height: int = 0


# ------------------------------------------------------------------------------------------------------ labelling
@dataclass
class Runs:
    """Horizontal runs of a mask (row, start, end exclusive) and the 8-connected component of each."""

    row: np.ndarray
    start: np.ndarray
    end: np.ndarray
    component: np.ndarray
    count: int
    shape: tuple[int, int] = (0, 0)  # the mask's (height, width)
    _box: np.ndarray | None = field(default=None, repr=False, compare=False)  # bbox(), computed once

    def sum_per_component(self, values: np.ndarray) -> np.ndarray:
        """Sum of a per-pixel array over each component's pixels."""
        return self.sum_prefix(_row_prefix(values))

    def sum_prefix(self, cum: np.ndarray, at: np.ndarray | None = None) -> np.ndarray:
        """sum_per_component of the values whose _row_prefix is cum (one prefix serves several labellings); `at`:
        cum holds only some rows, row r at cum[at[r]] (a row's running sum does not depend on the other rows)."""
        rows = self.row if at is None else at[self.row]
        per_run = cum[rows, self.end] - cum[rows, self.start]
        return np.bincount(self.component, weights=per_run, minlength=self.count)

    def area(self) -> np.ndarray:
        return np.bincount(self.component, weights=self.end - self.start, minlength=self.count)

    def touching_border(self) -> np.ndarray:
        """Per component: True where it reaches the mask's edge."""
        box = self.bbox()
        h, w = self.shape
        return (box[:, 0] == 0) | (box[:, 1] == 0) | (box[:, 2] == w) | (box[:, 3] == h)

    def bbox(self) -> np.ndarray:
        """[count, 4] xmin, ymin, xmax, ymax (exclusive) per component (computed once; read-only)."""
        if self._box is not None:
            return self._box
        out = np.empty((self.count, 4), dtype=np.int64)
        out[:, :2] = np.iinfo(np.int64).max
        out[:, 2:] = -1
        np.minimum.at(out[:, 0], self.component, self.start)
        np.minimum.at(out[:, 1], self.component, self.row)
        np.maximum.at(out[:, 2], self.component, self.end)
        np.maximum.at(out[:, 3], self.component, self.row + 1)
        out.flags.writeable = False
        self._box = out
        return out

    def paint(self, shape: tuple[int, int], values: np.ndarray) -> np.ndarray:
        """An image holding values[component] on each component's pixels and 0 elsewhere."""
        h, w = shape
        out = np.zeros((h, w + 1), dtype=np.float64)
        v = np.asarray(values, dtype=np.float64)[self.component]
        # the (row, start) and (row, end) cells are all distinct (runs are maximal: a run ends before the next one
        # starts), so a buffered += adds exactly what np.add.at would, without its per-element cost
        out[self.row, self.start] += v
        out[self.row, self.end] += -v
        return np.cumsum(out, axis=1)[:, :w]

    def mask(self, keep: np.ndarray) -> np.ndarray:
        """The pixels of the components where keep is True: paint(shape, keep) > 0, in integers."""
        return self.paint_mask(keep[self.component])

    def paint_mask(self, runs: np.ndarray) -> np.ndarray:
        """The pixels of the runs where `runs` is True (a boolean per run), set by their flat indices: the chosen
        runs (a vignette, a few holes) cover a fraction of the image, where a running sum would pass over all of it."""
        h, w = self.shape
        out = np.zeros(h * w, dtype=bool)
        first = self.row[runs] * w + self.start[runs]
        lengths = self.end[runs] - self.start[runs]
        total = int(lengths.sum())
        if total:
            # pixel j of a run is its first pixel + j; its position in the concatenated list is its run's offset + j
            offsets = np.cumsum(lengths) - lengths
            out[np.repeat(first - offsets, lengths) + np.arange(total)] = True
        return out.reshape(h, w)


def _row_prefix(values: np.ndarray, dtype=np.float64) -> np.ndarray:
    """[h, w + 1]: 0, then the running sum of each row of values. Integer values (pixel counts, coordinates) may be
    summed as integers (dtype int32: several times faster than float64 along a row): every difference, hence every
    per-component sum, is then the same integer the float64 sums held exactly."""
    cum = np.zeros((values.shape[0], values.shape[1] + 1), dtype=dtype)
    np.cumsum(values, axis=1, dtype=dtype, out=cum[:, 1:])
    return cum


def label(mask: np.ndarray) -> Runs:
    """8-connected components of a boolean mask, by runs and a vectorised union-find (no scipy)."""
    h, w = mask.shape
    padded = np.zeros((h, w + 2), dtype=bool)
    padded[:, 1:-1] = mask
    # the changes along each row, in reading order: every row starts and ends unset, so they alternate start, end
    edges = np.flatnonzero(padded[:, 1:] != padded[:, :-1])
    row = edges[0::2] // (w + 1)
    start = edges[0::2] - row * (w + 1)
    end = edges[1::2] - row * (w + 1)
    n = len(row)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Runs(empty, empty, empty, empty, 0, (h, w))
    stride = w + 2
    start_key = row * stride + start
    end_key = row * stride + end
    # runs of row r+1 touch runs of row r whose end >= start - 0 and start <= end (8-connectivity, end exclusive)
    below = row > 0
    b_idx = np.nonzero(below)[0]
    lo = np.searchsorted(end_key, (row[b_idx] - 1) * stride + start[b_idx], side="left")
    hi = np.searchsorted(start_key, (row[b_idx] - 1) * stride + end[b_idx], side="right")
    counts = np.maximum(hi - lo, 0)
    parent = np.arange(n)
    if counts.sum():
        b = np.repeat(b_idx, counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        a = np.repeat(lo, counts) + offsets
        while True:
            pa, pb = parent[a], parent[b]
            differ = pa != pb
            if not differ.any():
                break
            small, large = np.minimum(pa, pb)[differ], np.maximum(pa, pb)[differ]
            np.minimum.at(parent, large, small)
            while True:
                jumped = parent[parent]
                if (jumped == parent).all():
                    break
                parent = jumped
    # every run now points at its component's root (the smallest run index in it, a fixed point of parent); the
    # component number is the root's rank among the roots, as np.unique(parent, return_inverse=True) numbers them
    is_root = parent == np.arange(n)
    rank = np.cumsum(is_root) - 1
    return Runs(row, start, end, rank[parent], int(rank[-1]) + 1, (h, w))


# --------------------------------------------------------------------------------------------------- image helpers
def _as_rgb(image) -> np.ndarray:
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    rgb = np.asarray(image)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    if rgb.ndim != 3 or rgb.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an HxWx3 RGB image, got shape {rgb.shape}")
    if rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    rgb = rgb[:, :, :3]
    if rgb.dtype != np.uint8:
        if np.issubdtype(rgb.dtype, np.floating) and rgb.size and float(np.nanmax(rgb)) <= 1.0:
            rgb = rgb * 255.0
        rgb = np.clip(np.nan_to_num(rgb.astype(np.float64)), 0, 255).astype(np.uint8)
    return rgb


def _resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    if image.size == size:
        return image
    if size[0] < image.size[0] / 2:
        return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return image.resize(size, Image.Resampling.BILINEAR)


def _draft(image: Image.Image) -> tuple[Image.Image, tuple[int, int]]:
    """A large photo box-reduced (Pillow's reduce, in C) to about twice the work size, and its original size.

    The caller's image is left as it is (no draft mode: it may be cropped at full resolution afterwards)."""
    width, height = image.size
    k = int(max(width, height) // (2 * WORK_LONG_SIDE))
    if k >= 2:
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image = image.reduce(k)
    return image, (width, height)


def _work_copy(rgb, size: tuple[int, int]) -> tuple[np.ndarray, Image.Image]:
    """rgb (an array or an RGB PIL image) resized to size, as an array and as the RGB PIL image it was read from (the
    same pixels: the later resizes start from it without a copy back); a large one is first subsampled by striding
    to about twice the size (cheap)."""
    height, width = (rgb.height, rgb.width) if isinstance(rgb, Image.Image) else rgb.shape[:2]
    k = int(min(width / size[0], height / size[1]) // 2)
    if k >= 2:
        rgb = np.asarray(rgb)[k // 2 :: k, k // 2 :: k]
    if not isinstance(rgb, Image.Image):
        rgb = Image.fromarray(np.ascontiguousarray(rgb))
    image = _resize(rgb, size)
    return np.asarray(image), image


def _blur(plane: np.ndarray, sigma: float, scale: float) -> np.ndarray:
    """Gaussian blur of a float plane via Pillow's 8-bit blur (plane * scale must fit 0..255)."""
    img = Image.fromarray(np.clip(plane * scale + 0.5, 0, 255).astype(np.uint8))
    return np.asarray(img.filter(ImageFilter.GaussianBlur(sigma)), dtype=np.float32) / scale


# Up to this radius, Pillow's BoxBlur(radius) of a 0/255 mask is > 0 exactly where a (2 radius + 1) square around the
# pixel (clipped to the image) holds a mask pixel: one mask pixel alone still leaves >= 1 after both rounded passes.
# tests/unit/test_localiser_exact.py holds it to Pillow on random masks, radii 1-7; the localiser uses radii 1-4 (a
# nucleus gap of at most 0.35 x 16 px red cells, a vignette margin of 1% of at most 400 px).
EXACT_DILATE_RADIUS = 7


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """The mask grown by a square of side 2 radius + 1 (what BoxBlur(radius) > 0 gives), as shifted ORs."""
    if radius <= 0:
        return mask
    if radius > EXACT_DILATE_RADIUS:
        img = Image.fromarray(mask.astype(np.uint8) * 255)
        return np.asarray(img.filter(ImageFilter.BoxBlur(radius))) > 0
    rows = mask.copy()
    for shift in range(1, min(radius, mask.shape[1] - 1) + 1):
        rows[:, shift:] |= mask[:, :-shift]
        rows[:, :-shift] |= mask[:, shift:]
    out = rows.copy()
    for shift in range(1, min(radius, mask.shape[0] - 1) + 1):
        out[shift:] |= rows[:-shift]
        out[:-shift] |= rows[shift:]
    return out


LUM_VALUES = np.arange(3 * 255 + 1, dtype=np.int32)  # every sum of three uint8 channels


def _background(rgb: np.ndarray) -> np.ndarray:
    """The background colour: the median of the brightest 5% of pixels (the plasma between cells)."""
    rgb = rgb[::2, ::2]  # every 4th pixel is plenty for a median
    lum = rgb[:, :, 0].astype(np.int32) + rgb[:, :, 1] + rgb[:, :, 2]  # rgb.sum(axis=2, dtype=np.int32), faster
    # np.percentile(lum, 95) from the count of each of the 766 sums (DensityCounts: the same float64, no sort)
    cut = DensityCounts.of(LUM_VALUES, np.bincount(lum.ravel(), minlength=len(LUM_VALUES))).percentile(95)
    bright = rgb[lum >= cut]
    return np.maximum(np.median(bright, axis=0).astype(np.float32), 8.0)


def _packed(rgb: np.ndarray) -> np.ndarray:
    """Each pixel's colour as one integer (0xRRGGBB)."""
    return (rgb[:, :, 0].astype(np.int32) << 16) | (rgb[:, :, 1].astype(np.int32) << 8) | rgb[:, :, 2]


def _brightest_channel(packed: np.ndarray) -> np.ndarray:
    """The largest channel of each _packed colour."""
    return np.maximum(np.maximum(packed >> 16, (packed >> 8) & 255), packed & 255)


def _photo_on_canvas(rgb: np.ndarray, bg: np.ndarray) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """The box (left, top, right, bottom) of a photo pasted onto a plain canvas (a photo shrunk onto its own canvas,
    an app's letterbox) and the canvas' colours (packed), or None. The canvas: regions touching the border whose every
    pixel has the colour of its 8 neighbours (so each is one colour), not dark (a dark one is the vignette's), with the
    rim of that colour next to the photo. A camera's plasma always has some noise (150 images of each classifier and
    field set: such regions cover at most 3.5%, in 7 of 1,200); a synthetic field's flat plasma runs between its
    cells, so the canvas must lie around the photo's box, not inside it (PADDING_*)."""
    h, w = rgb.shape[:2]
    edge = _packed(np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])[None])[0]
    dark = DARK_FRACTION * float(bg.max())
    light = edge[_brightest_channel(edge) >= dark]
    if light.size == 0 or np.unique(light, return_counts=True)[1].max() < PADDING_AREA * len(edge):
        return None  # no light colour holds a share of the border: the common case, at the cost of one sort
    colour = _packed(rgb)
    around = np.pad(colour, 1, mode="edge")
    flat = np.ones((h, w), dtype=bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            if dy != 1 or dx != 1:
                flat &= around[dy : dy + h, dx : dx + w] == colour
    runs = label(flat)
    touches = runs.touching_border()
    first_run = np.zeros(runs.count, dtype=np.int64)
    first_run[runs.component[::-1]] = np.arange(len(runs.component))[::-1]
    colours = colour[runs.row[first_run], runs.start[first_run]]
    keep = touches & (runs.area() > PADDING_AREA * h * w) & (_brightest_channel(colours) >= dark)
    if not keep.any():
        return None
    canvas = _dilate(runs.mask(keep), 1) & np.isin(colour, colours[keep])
    rows, cols = np.nonzero(~canvas.all(axis=1))[0], np.nonzero(~canvas.all(axis=0))[0]
    if rows.size == 0:
        return None  # one colour and nothing else
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    inside = float(canvas[top:bottom, left:right].mean())
    if (bottom - top) < PADDING_MIN_SIDE * h or (right - left) < PADDING_MIN_SIDE * w or inside > PADDING_INSIDE:
        return None
    if (bottom - top) * (right - left) > (1 - PADDING_AREA) * h * w:
        return None
    return (left, top, right, bottom), colours[keep]


def _vignette(rgb: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """Dark regions touching the border and larger than 0.5% of the image: the eyepiece circle or a letterbox."""
    brightest = np.maximum(np.maximum(rgb[:, :, 0], rgb[:, :, 1]), rgb[:, :, 2])  # rgb.max(axis=2), faster
    dark = brightest < DARK_FRACTION * float(bg.max())
    if not dark.any():
        return dark
    runs = label(dark)
    h, w = dark.shape
    touches = runs.touching_border()
    keep = touches & (runs.area() > 0.005 * h * w)
    if not keep.any():
        return np.zeros_like(dark)
    return _dilate(runs.mask(keep), max(2, round(0.01 * max(h, w))))


def _otsu(values: np.ndarray) -> float:
    hist, edges = np.histogram(values, bins=128)
    centre = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(hist).astype(np.float64)
    mean = np.cumsum(hist * centre)
    total, total_mean = weight[-1], mean[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total_mean * weight - mean * total) ** 2 / (weight * (total - weight))
    return float(centre[int(np.nanargmax(between))]) if np.isfinite(between).any() else float(np.median(values))


def _cell_level(
    levels: DensityCounts, percentile: float = 95.0, cut: float = 0.25, plateau: float | None = None
) -> float:
    """The red cells' typical green OD: the mode of the green OD among the pixels clearly above the background.

    "Clearly above": above `cut` x the `percentile`-th percentile. With a large white cell filling the frame, the
    95th percentile lies on its nucleus and the red cells fall under the cut: the nucleus thresholds use the 75th.
    `plateau`: the centre of the run of smoothed bins >= plateau x the highest around it, instead of the highest bin.
    `levels`: the sampled pixels' green OD as counts of its distinct values (DensityCounts); each step below is the
    numpy call on the pixels it replaces (np.percentile, the mask, np.histogram), on the distinct values.
    """
    reference = float(levels.percentile(percentile))
    above = levels.values > max(0.06, cut * reference)  # the comparison `od_g > ...` made on every pixel
    cells = levels.subset(above)
    if cells.total < 16:
        return max(float(levels.percentile(95)), 0.05)
    top = float(cells.percentile(98)) + 1e-6
    # np.histogram bins each value alone (the same arithmetic per element), so the counts weigh the distinct values
    hist, edges = np.histogram(cells.values, bins=48, range=(0.0, top), weights=cells.counts)
    smooth = np.convolve(hist, np.ones(5) / 5, mode="same")
    peak = int(np.argmax(smooth))
    first = last = peak
    if plateau is not None:
        while first > 0 and smooth[first - 1] >= plateau * smooth[peak]:
            first -= 1
        while last < len(smooth) - 1 and smooth[last + 1] >= plateau * smooth[peak]:
            last += 1
    return max(float((edges[first] + edges[last + 1]) / 2), 0.05)


@dataclass(frozen=True)
class DensityCounts:
    """A sample of a quantity with few distinct values (a density looked up in a 256-entry table by a uint8 level, or
    a sum of three uint8 levels) as its distinct values in ascending order and how many samples hold each (> 0).

    percentile(q) is np.percentile(sample, q) bit for bit, without sorting the sample: the order statistics come from
    the running counts, and the interpolation repeats numpy's "linear" method step by step in the values' dtype
    (tests/unit/test_localiser_counts.py holds it to np.percentile on random samples)."""

    values: np.ndarray
    counts: np.ndarray  # int64, each > 0
    cumulative: np.ndarray  # running sum of counts

    @classmethod
    def of(cls, table: np.ndarray, counts: np.ndarray) -> DensityCounts:
        """table[i] held by counts[i] samples (np.bincount of the levels the sample was looked up with)."""
        order = np.argsort(table, kind="stable")
        values, counts = table[order], counts[order]
        held = counts > 0
        values, counts = values[held], counts[held].astype(np.int64)
        return cls(values, counts, np.cumsum(counts))

    @property
    def total(self) -> int:
        return int(self.cumulative[-1]) if len(self.cumulative) else 0

    def subset(self, keep: np.ndarray) -> DensityCounts:
        counts = self.counts[keep]
        return DensityCounts(self.values[keep], counts, np.cumsum(counts))

    def _order_statistic(self, k: int):
        """The k-th smallest sample (0-based; -1: the largest), a numpy scalar of the values' dtype."""
        if k < 0:
            return self.values[-1]
        return self.values[int(np.searchsorted(self.cumulative, k, side="right"))]

    def percentile(self, q: float):
        """np.percentile(sample, q) for a Python int or float q (numpy's "linear" method, its weak-scalar path)."""
        n = self.total
        if n == 0:
            return np.percentile(np.zeros(0, dtype=self.values.dtype), q)  # numpy's own error for an empty sample
        virtual = (n - 1) * (q / 100)  # numpy: (n - 1) * true_divide(q, 100), in float64
        previous = math.floor(virtual)
        if virtual >= n - 1:  # numpy takes the last element for both neighbours, and gamma from that index (-1)
            previous = following = -1
        else:
            following = previous + 1
        gamma = float(virtual - previous)
        a, b = self._order_statistic(previous), self._order_statistic(following)
        # numpy's _lerp on scalars: a + (b - a) t, or b - (b - a)(1 - t) where t >= 0.5, in numpy scalar arithmetic
        diff = b - a
        return b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma


LOG_LEVELS = np.log(np.arange(256, dtype=np.float32) + 1.0)


def _od_table(bg: np.ndarray, c: int) -> np.ndarray:
    return np.maximum(np.float32(np.log(bg[c] + 1.0)) - LOG_LEVELS, 0.0).astype(np.float32)


def _optical_density(rgb: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """max(0, log((bg + 1) / (pixel + 1))) per channel, by a 256-entry table per channel (float32)."""
    out = np.empty(rgb.shape, dtype=np.float32)
    for c in range(3):
        out[:, :, c] = _od_table(bg, c)[rgb[:, :, c]]
    return out


def _green_density(rgb: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """_optical_density(rgb, bg)[:, :, 1] alone (the only channel the levels and the scale use)."""
    return _od_table(bg, 1)[rgb[:, :, 1]]


def _erosion_depth(cells: np.ndarray) -> np.ndarray:
    """uint8: at each pixel, how many successive erosions it survives, plus one (0 off the mask; at most 255 steps):
    the octagonal distance to the nearest pixel off the mask or the image (within ~8% of Euclidean).

    The erosions alternate a 3x3 square (even steps) and a cross (odd steps). The image's edge counts as off the
    mask: the mask sits inside a ring of unset pixels, and both elements hold the four direct neighbours, so a pixel
    next to the ring goes at the first step (tests/unit/test_localiser_exact.py: the same depths as eroding the bare
    mask and unsetting its edge after each step)."""
    h, w = cells.shape
    # Flat buffers of the ringed mask, row after row (stride w + 2): a pixel's neighbours are at -1, +1 (left, right)
    # and -stride, +stride (up, down), so every step is a few operations on contiguous 1-D slices (about 2.5x faster
    # than on 2-D slices). Only flat indices [lo, hi) are ever written: rows 1..h less the first and last ring cell.
    # The ring cells inside that range are computed too, from a term that holds the cell itself (unset), so they
    # stay unset, and a left/right neighbour across a row's end is a ring cell.
    stride = w + 2
    size = (h + 2) * stride
    mask = np.zeros(size, dtype=bool)
    mask.reshape(h + 2, stride)[1:-1, 1:-1] = cells
    out = np.zeros_like(mask)  # the two masks take turns
    vertical = np.empty(h * stride, dtype=bool)  # rows 1..h
    distance = np.zeros(size, dtype=np.uint8)  # at most 255 steps: fits, and adds faster than int32
    lo, hi = stride + 1, (h + 1) * stride - 1
    inner = slice(lo, hi)
    step = 0
    while step < 255 and mask.any():
        distance += mask.view(np.uint8)
        written = out[inner]
        if step % 2 == 0:  # the square: the vertical minimum, then its horizontal minimum
            np.logical_and(mask[stride : (h + 1) * stride], mask[: h * stride], out=vertical)
            vertical &= mask[2 * stride :]
            np.logical_and(vertical[1:-1], vertical[:-2], out=written)
            written &= vertical[2:]
        else:  # the cross: the pixel and its four direct neighbours
            np.logical_and(mask[inner], mask[lo - 1 : hi - 1], out=written)
            written &= mask[lo + 1 : hi + 1]
            written &= mask[lo - stride : hi - stride]
            written &= mask[lo + stride : hi + stride]
        mask, out = out, mask
        step += 1
    return distance.reshape(h + 2, stride)[1:-1, 1:-1]


def _max3(plane: np.ndarray) -> np.ndarray:
    """Pillow's ImageFilter.MaxFilter(3) (the edge pixels repeated outward, so an edge pixel's maximum is over its
    neighbours inside the image), as two separable passes of maxima."""
    rows = plane.copy()
    np.maximum(rows[:, 1:], plane[:, :-1], out=rows[:, 1:])
    np.maximum(rows[:, :-1], plane[:, 1:], out=rows[:, :-1])
    out = rows.copy()
    np.maximum(out[1:], rows[:-1], out=out[1:])
    np.maximum(out[:-1], rows[1:], out=out[:-1])
    return out


def _rbc_diameter(od_g: np.ndarray, valid: np.ndarray, level: float) -> tuple[float, float] | None:
    """Red-cell diameter in pixels from the distance transform of the cell mask (central pallor filled), and the
    share of the field the mask covers.

    The cell mask holds the pixels above half the red cells' green OD; enclosed background pieces smaller than half
    the median cell piece are pallor and get filled. The distance transform's local maxima sit at cell centres; a
    maximum as deep as its distance to the image's edge belongs to a cell the edge cuts (its depth measures the cut,
    not the cell) and is left out. The median of the others above 40% of the largest, scaled by SCALE_FIT (the peaks'
    bias grows with the cover: overlapping cells), is the diameter.
    """
    cells = valid & (od_g > 0.5 * level)
    if cells.sum() < 16:
        return None
    coverage = float(cells.sum()) / max(float(valid.sum()), 1.0)
    back = label(~cells)
    touches = back.touching_border()
    pieces = label(cells).area()
    # the pieces' areas are whole pixel counts: their median as integers is the same float64 (the mean of the middle
    # two in float64), without np.median's NaN check on floats (which imports numpy.ma on a cold start's first call)
    typical = float(np.median(pieces[pieces >= 4].astype(np.int64))) if (pieces >= 4).any() else 16.0
    holes = ~touches & (back.area() < 0.5 * typical)
    if holes.any():
        cells = cells | back.mask(holes)
    distance = _erosion_depth(cells)
    ys, xs = np.nonzero((_max3(distance) == distance) & (distance >= 2))
    h, w = distance.shape
    to_edge = np.minimum(np.minimum(ys + 1, h - ys), np.minimum(xs + 1, w - xs))
    values = distance[ys, xs].astype(np.int32)
    values = values[values < to_edge]
    if values.size < 3:
        return None
    peak = float(np.median(values[values >= 0.4 * values.max()]))
    return peak * math.exp(SCALE_FIT[0] + SCALE_FIT[1] * coverage), coverage


def _nucleus_diameter(work: np.ndarray, valid: np.ndarray, bg, nucleus_level: float, start: float) -> float | None:
    """A red cell's diameter guessed from the largest white-cell nucleus (working-copy pixels), for photos whose red
    cells give no ruler: too few whole ones in view (a tight crop, a high magnification), or a false one (red cells
    packed in bands inside an eyepiece's circle; there `start` is the eyepiece's bound). The nucleus mask is the
    first pass's (PASSES[0]) on the working copy itself (the default guess `start`, at most WORK_LONG_SIDE / 40, is
    under TARGET_RBC_PX: the candidates' nucleus scale is the working copy too); its lobes are grouped at the guessed
    diameter, twice, starting from `start`. A nucleus covers about NUCLEUS_RBC_AREA red cells' area (the median on
    bccd and pbc at their own red-cell ruler)."""
    chroma_min, low_min, high_min, gap, _ = PASSES[0]
    od = _optical_density(work, bg)
    low, high = _nucleus_masks(od, valid, nucleus_level, od[:, :, 0] - od[:, :, 2], chroma_min, low_min, high_min)
    if not high.any():
        return None
    diameter = start
    for _ in range(2):
        grouped = label(_dilate(low, max(1, round(gap * diameter / 2))))
        area = grouped.sum_per_component(low)
        seeded = grouped.sum_per_component(high) > 0
        if not seeded.any():
            return None
        diameter = math.sqrt(float(area[seeded].max()) / (NUCLEUS_RBC_AREA * math.pi / 4))
    return diameter


def _eyepiece_diameter(valid: np.ndarray) -> float | None:
    """The diameter of the eyepiece's circle when the vignette's inner edge is one, else None: an algebraic
    least-squares circle through the valid pixels next to the vignette, kept when it is centred in the image, at most
    twice its long side across, and the pixels' median distance to it is within EYEPIECE_FIT of its radius."""
    vignette = ~valid
    edge = np.zeros_like(valid)
    edge[1:] |= valid[1:] & vignette[:-1]
    edge[:-1] |= valid[:-1] & vignette[1:]
    edge[:, 1:] |= valid[:, 1:] & vignette[:, :-1]
    edge[:, :-1] |= valid[:, :-1] & vignette[:, 1:]
    ys, xs = np.nonzero(edge)
    if len(xs) < 20:
        return None
    x, y = xs.astype(np.float64), ys.astype(np.float64)
    # x^2 + y^2 + a x + b y + c = 0: the centre is (-a / 2, -b / 2)
    (a, b, c), *_ = np.linalg.lstsq(np.stack([x, y, np.ones_like(x)], axis=1), -(x * x + y * y), rcond=None)
    cx, cy = -a / 2, -b / 2
    radius = math.sqrt(max(cx * cx + cy * cy - c, 0.0))
    h, w = valid.shape
    # a straight edge (a letterbox) fits a huge circle far off the image as closely: the circle must be centred in
    # the image and not much larger than it
    if not (0 <= cx < w and 0 <= cy < h) or not 0 < radius <= max(h, w):
        return None
    if _median_of_floats(np.abs(np.hypot(x - cx, y - cy) - radius)) > EYEPIECE_FIT * radius:
        return None
    return 2 * radius


def _median_of_floats(values: np.ndarray) -> float:
    """np.median's arithmetic (the middle element, or the mean of the middle two) without its NaN check on floats,
    which imports numpy.ma on a cold start's first call (~30-80 ms); the values here are finite."""
    middle = values.size // 2
    if values.size % 2:
        return float(np.partition(values, middle)[middle])
    return float(np.mean(np.partition(values, [middle - 1, middle])[middle - 1 : middle + 1]))


def _dog_energy(plane: np.ndarray, valid: np.ndarray, diameter: float, top: float) -> float:
    """The mean squared difference of Gaussians tuned to discs of this diameter (sigma = diameter / 2 sqrt 2) over
    the valid pixels; `top` maps the plane onto the 8-bit blur's range."""
    sigma = diameter / (2 * math.sqrt(2))
    response = _blur(plane, sigma / DOG_SPREAD, 255 / top) - _blur(plane, sigma * DOG_SPREAD, 255 / top)
    return float(np.mean(response[valid] ** 2))


# ----------------------------------------------------------------------------------------------------------- locate
FEATURES = (
    "log_area",  # log(nucleus area / red-cell area)
    "dark",  # mean green OD over the nucleus / the red cells' green OD
    "peak",  # 95th-percentile-like: share of the nucleus above NUCLEUS_HIGH
    "chroma",  # mean (red OD - blue OD) / the red cells' green OD
    "blue_share",  # mean blue OD / mean green OD
    "red_share",  # mean red OD / mean green OD
    "fill",  # area / bounding-box area
    "aspect",  # short / long side of the bounding box
    "ring",  # mean green OD in the box around the nucleus, nucleus excluded / the red cells' green OD
    "rel_dark",  # dark / the darkest candidate's dark in the field
    "vignette",  # share of the surrounding box that is vignette
    "count",  # log(1 + candidates in the field)
    "pass",  # which threshold set of PASSES found it
    # field-relative colour (version 2): a desaturated or paler photo moves every candidate's colour alike
    "rel_chroma",  # chroma / the field's largest candidate chroma
    "rel_blue",  # blue_share / the field's largest candidate blue_share
    "chroma_vs_median",  # chroma - the field's median candidate chroma
    "blue_vs_median",  # blue_share - the field's median candidate blue_share
    "red_vs_median",  # red_share - the field's median candidate red_share
)
FIELD_RELATIVE = {  # feature: (the feature it is made of, over the largest or minus the median of the field's)
    "rel_dark": ("dark", "ratio_to_largest"),
    "rel_chroma": ("chroma", "ratio_to_largest"),
    "rel_blue": ("blue_share", "ratio_to_largest"),
    "chroma_vs_median": ("chroma", "minus_median"),
    "blue_vs_median": ("blue_share", "minus_median"),
    "red_vs_median": ("red_share", "minus_median"),
}
# the candidate generator's threshold sets: (chroma, low, high) as in NUCLEUS_*, the lobe gap (LOBE_GAP), the set's id
PASSES = ((0.3, 1.4, 1.8, 0.35, 0), (-0.3, 1.8, 2.4, 0.35, 1), (0.3, 1.6, 2.2, 0.15, 2))
# and inside an eyepiece's circle one more, for the greyer nuclei of a phone's blurred or washed-out photo (a microscope
# camera's frames, which fill the sensor, would pay for it in precision: docs/experiments.md, arms P4D / P4E)
EYEPIECE_PASSES = ((0.15, 1.3, 1.6, 0.35, 3),)


def _no_candidates(result: Localisation, cell_level: float = 0.0):
    """_features_and_boxes' answer with no candidate: the result as it stands, no box, no FEATURES row."""
    return result, np.zeros((0, 4)), np.zeros((0, len(FEATURES))), cell_level


def _canvas_rows(strip: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Per row of an RGB strip: True where every pixel is one of the canvas' colours."""
    return np.isin(_packed(strip), colours).all(axis=1)


def _photo_alone(source, photo, colours: np.ndarray, factor_x: float, factor_y: float, result: Localisation):
    """_features_and_boxes of the photo inside a canvas, located as if it came uncropped: `photo` is its box in the
    working copy; at full resolution, the box (grown by a working pixel) loses its edge rows and columns of the canvas'
    colours, looked for only in strips along its sides (a 12 MP photo is not read whole). Boxes in the source's
    pixels, its size kept."""
    left, top = max(0, math.floor((photo[0] - 1) / factor_x)), max(0, math.floor((photo[1] - 1) / factor_y))
    right = min(result.width, math.ceil((photo[2] + 1) / factor_x))
    bottom = min(result.height, math.ceil((photo[3] + 1) / factor_y))
    if isinstance(source, Image.Image):
        source = source if source.mode == "RGB" else source.convert("RGB")

        def region(x0: int, y0: int, x1: int, y1: int):
            return source.crop((x0, y0, x1, y1))
    else:
        array = np.asarray(source)

        def region(x0: int, y0: int, x1: int, y1: int):
            return array[y0:y1, x0:x1]

    def pixels(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        return _as_rgb(region(x0, y0, x1, y1))

    # the photo's true edge lies within two working pixels of the grown box's
    margin_x, margin_y = math.ceil(2 / factor_x) + 1, math.ceil(2 / factor_y) + 1
    width, height = right - left, bottom - top
    if width <= 2 * margin_x or height <= 2 * margin_y:
        return _no_candidates(result)
    top_rows = _canvas_rows(pixels(left, top, right, top + margin_y), colours)
    bottom_rows = _canvas_rows(pixels(left, bottom - margin_y, right, bottom), colours)
    left_cols = _canvas_rows(pixels(left, top, left + margin_x, bottom).transpose(1, 0, 2), colours)
    right_cols = _canvas_rows(pixels(right - margin_x, top, right, bottom).transpose(1, 0, 2), colours)
    # the canvas' rows at each side: those before its first photo row (all of the strip if it holds none)
    cut_top = int(np.argmin(top_rows)) if not top_rows.all() else margin_y
    cut_bottom = int(np.argmin(bottom_rows[::-1])) if not bottom_rows.all() else margin_y
    cut_left = int(np.argmin(left_cols)) if not left_cols.all() else margin_x
    cut_right = int(np.argmin(right_cols[::-1])) if not right_cols.all() else margin_x
    left, top, right, bottom = left + cut_left, top + cut_top, right - cut_right, bottom - cut_bottom
    alone, boxes, features, cell_level = _features_and_boxes(region(left, top, right, bottom), find_canvas=False)
    result.px_per_um, result.ruler = alone.px_per_um, alone.ruler  # a crop keeps the pixels' size
    result.red_cell_cover = alone.red_cell_cover
    return result, boxes + np.array([left, top, left, top], dtype=boxes.dtype), features, cell_level


@dataclass
class _WorkingCopy:
    """A photo reduced to at most WORK_LONG_SIDE on its long side, with its background colour."""

    work: np.ndarray
    work_image: Image.Image  # the same pixels as `work`
    factor_x: float  # working pixels per original pixel
    factor_y: float
    bg: np.ndarray


def _working_copy(image) -> tuple[Localisation, _WorkingCopy | None]:
    """An empty answer of the photo's size (uint8 HxWx3 RGB array, or a PIL image) and its working copy; no copy when
    the photo is too small to hold a cell (MIN_SIDE)."""
    original_size = None
    if isinstance(image, Image.Image):
        image, original_size = _draft(image)
        # an RGB PIL image stays one (resized as it is): the same pixels as its array, without the copies
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        shape = (rgb.height, rgb.width)
    else:
        rgb = _as_rgb(image)
        shape = rgb.shape[:2]
    height, width = shape
    if original_size is not None:
        width, height = original_size
    result = Localisation(width=width, height=height)
    if min(height, width) < MIN_SIDE or min(shape) < MIN_SIDE:
        return result, None
    factor = min(1.0, WORK_LONG_SIDE / max(width, height))
    work, work_image = _work_copy(rgb, (max(1, round(width * factor)), max(1, round(height * factor))))
    factor_x, factor_y = work.shape[1] / width, work.shape[0] / height
    return result, _WorkingCopy(work, work_image, factor_x, factor_y, _background(work))


PATCH_SIDE = 32  # a candidate's patch for the candidate network (export/candidate_net.py), in pixels a side
PATCH_TOP = 1.25  # a patch holds colour / the background colour, clipped to this and scaled to [0, 1]


def candidate_patches(copy: _WorkingCopy, boxes: np.ndarray) -> np.ndarray:
    """Each candidate box (original pixels) cut from the working copy (what a 12 MP photo has at hand), resized to
    PATCH_SIDE a side and divided by the background colour, so that a colour cast cancels: float32 [N, side, side, 3]
    in [0, 1]. The candidate network is trained on exactly these patches (export/candidate_net.py)."""
    out = np.empty((len(boxes), PATCH_SIDE, PATCH_SIDE, 3), dtype=np.float32)
    for i, (x0, y0, x1, y1) in enumerate(np.asarray(boxes, dtype=np.float64).reshape(-1, 4)):
        left, top = x0 * copy.factor_x, y0 * copy.factor_y
        box = (left, top, max(x1 * copy.factor_x, left + 1.0), max(y1 * copy.factor_y, top + 1.0))
        patch = copy.work_image.resize((PATCH_SIDE, PATCH_SIDE), Image.Resampling.BILINEAR, box=box)
        out[i] = np.asarray(patch, dtype=np.float32)
    return np.minimum(out / copy.bg, PATCH_TOP) / PATCH_TOP


# The candidate network: a CNN trained from scratch on the tune split's candidate patches (export/candidate_net.py;
# no weight shared with the classifier), the four quarter turns averaged inside the graph. Its bytes are pinned: the
# localiser's figures were measured with exactly this file.
CANDIDATE_NET = Path(__file__).with_name("candidate_net.onnx")
CANDIDATE_NET_SHA256 = "9af919f6a8b32c283e6395cc3fb7c2c6e9aa36a0a0dabb49774ac62017bca95f"


@functools.cache
def candidate_network() -> ort.InferenceSession:
    """The candidate network's session, made once per process (1 thread: a few patches a photo). Refused when the file
    is not the one the localiser was measured with."""
    data = CANDIDATE_NET.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != CANDIDATE_NET_SHA256:
        raise RuntimeError(f"{CANDIDATE_NET.name}: sha256 {digest} is not the localiser's {CANDIDATE_NET_SHA256}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def network_probability(patches: np.ndarray) -> np.ndarray:
    """The candidate network's white-cell probability of each patch (candidate_patches)."""
    if not len(patches):
        return np.zeros(0)
    return candidate_network().run(["probability"], {"patches": patches})[0].astype(np.float64)


def served_score(logistic: np.ndarray, network: np.ndarray) -> np.ndarray:
    """The served candidate score from the logistic's and the network's probabilities: their mean (equal weights
    measured best, docs/experiments.md arm W). Training and evaluation code score with this too."""
    return (logistic + network) / 2


def candidate_scores(copy: _WorkingCopy, boxes: np.ndarray, features: np.ndarray) -> np.ndarray:
    """Each candidate's served_score. The network runs only on candidates whose logistic probability lets the score
    reach SCORE_MIN (the others' stays under it whatever the network says; their network probability is taken as 0),
    which spares most patches of a crowded field."""
    logistic = score(features)
    network = np.zeros_like(logistic)
    reachable = np.flatnonzero(served_score(logistic, np.ones_like(logistic)) >= SCORE_MIN)
    if len(reachable):
        network[reachable] = network_probability(candidate_patches(copy, boxes[reachable]))
    return served_score(logistic, network)


def _features_and_boxes(
    image, find_canvas: bool = True, prepared: tuple[Localisation, _WorkingCopy | None] | None = None
) -> tuple[Localisation, np.ndarray, np.ndarray, float]:
    """The scale, and every nucleus candidate's box (original pixels) and FEATURES row (the candidate generator).
    A photo pasted on a plain canvas is located alone (_photo_on_canvas, _photo_alone). `prepared`: the image's
    _working_copy when the caller has it already."""
    result, copy = prepared if prepared is not None else _working_copy(image)
    if copy is None:
        return _no_candidates(result)
    work, work_image, bg = copy.work, copy.work_image, copy.bg
    factor_x, factor_y = copy.factor_x, copy.factor_y
    factor = math.sqrt(factor_x * factor_y)
    width, height = result.width, result.height

    canvas = _photo_on_canvas(work, bg) if find_canvas else None
    if canvas is not None:
        return _photo_alone(image, *canvas, factor_x, factor_y, result)
    vignette = _vignette(work, bg)
    valid = ~vignette
    if valid.sum() < 0.05 * valid.size:
        return _no_candidates(result)
    scale_factor = min(1.0, SCALE_LONG_SIDE / max(work.shape[:2]))
    # the green density of the working copy itself: only for the scale, when the copy is not reduced for it
    od_g = _green_density(work, bg) if scale_factor >= 1.0 else None
    # every 4th pixel: the levels are histogram modes. The green OD is a table of the green level, so the sample is
    # held as the count of each level (np.bincount) and the levels are computed on the 256 values, not the pixels
    sample = np.bincount(work[::2, ::2, 1][valid[::2, ::2]], minlength=256)
    levels = DensityCounts.of(_od_table(bg, 1), sample)
    cell_level = _cell_level(levels)  # the scale's (SCALE_FIT was fitted with it)
    nucleus_level = _cell_level(levels, 75.0, LEVEL_CUT, LEVEL_PLATEAU)
    whole = bool(valid.all())  # no vignette: every nearest-neighbour resize of the mask is all set
    valid_image = None if whole else Image.fromarray(valid.astype(np.uint8) * 255)

    def valid_at(size: tuple[int, int]) -> np.ndarray:
        if valid_image is None:
            return np.ones((size[1], size[0]), dtype=bool)
        return np.asarray(valid_image.resize(size, Image.Resampling.NEAREST)) > 0

    if scale_factor < 1.0:
        size = (max(1, round(work.shape[1] * scale_factor)), max(1, round(work.shape[0] * scale_factor)))
        # the green channel resized alone: Pillow resamples each channel with the same fixed-point arithmetic
        green = work_image.getchannel(1)
        od_small = _od_table(bg, 1)[np.asarray(_resize(green, size))]
        valid_scale = valid_at(size)
        scale_factor = math.sqrt(size[0] / work.shape[1] * size[1] / work.shape[0])
    else:
        od_small, valid_scale = od_g, valid
    measured = _rbc_diameter(od_small, valid_scale, cell_level)
    if measured is not None and measured[0] < SCALE_FINE_BELOW:
        # small red cells (a phone photo through an eyepiece): the peaks are a few whole pixels deep, so the scale
        # jumps by a third with a re-save; measured again where they are as large as SCALE_FIT was fitted on
        zoom = min(SCALE_FINE_TARGET / (measured[0] / scale_factor), SCALE_FINE_MAX)
        size = (max(1, round(work.shape[1] * zoom)), max(1, round(work.shape[0] * zoom)))
        fine = _od_table(bg, 1)[np.asarray(_resize(work_image.getchannel(1), size))]
        again = _rbc_diameter(fine, valid_at(size), cell_level)
        if again is not None:
            measured, scale_factor = again, math.sqrt(size[0] / work.shape[1] * size[1] / work.shape[0])
    diameter = None if measured is None else measured[0] / scale_factor
    if diameter is None or not (3.0 <= diameter <= min(work.shape[:2]) / 2):
        diameter = max(work.shape[:2]) * DEFAULT_RBC_PX_FRACTION
        from_nucleus = _nucleus_diameter(work, valid, bg, nucleus_level, diameter)
        if from_nucleus is not None and from_nucleus >= NUCLEUS_GUESS_MIN * max(work.shape[:2]):
            diameter = from_nucleus  # a high magnification: too few red cells in view to measure them
        result.ruler = "default"
    else:
        result.ruler = "red_cells"
        result.red_cell_cover = measured[1]
    result.px_per_um = diameter / factor / RBC_DIAMETER_UM
    diameters = [diameter]
    circle = None if whole else _eyepiece_diameter(valid)
    if circle is not None and diameter > EYEPIECE_RBC * circle:
        bound = EYEPIECE_RBC * circle
        plane = od_g if od_g is not None else _green_density(work, bg)
        top = float(np.percentile(plane[valid], 99)) + 1e-6
        if _dog_energy(plane, valid, bound, top) >= EYEPIECE_DOG * _dog_energy(plane, valid, diameter, top):
            diameters.append(bound)
        else:  # red cells packed in bands: the bands carry the texture; the nuclei give the scale
            from_nucleus = _nucleus_diameter(work, valid, bg, nucleus_level, bound)
            if from_nucleus is not None and 3.0 <= from_nucleus <= min(EYEPIECE_NUCLEUS * diameter, bound):
                diameters.append(from_nucleus)
    passes = PASSES if circle is None else PASSES + EYEPIECE_PASSES
    found = [
        _candidates(work, work_image, valid, valid_at, bg, nucleus_level, d, factor_x, factor_y, passes)
        for d in diameters
    ]
    found = [f for f in found if f is not None]
    if not found:
        return _no_candidates(result, cell_level)
    cx, cy, half_w, half_h, to_x, to_y, features = (np.concatenate(parts) for parts in zip(*found, strict=True))
    _field_relative(features)
    features[:, FEATURES.index("count")] = math.log1p(len(cx))
    boxes = np.stack(
        [
            np.maximum(0, np.floor((cx + 0.5 - half_w) * to_x)),
            np.maximum(0, np.floor((cy + 0.5 - half_h) * to_y)),
            np.minimum(width, np.ceil((cx + 0.5 + half_w) * to_x)),
            np.minimum(height, np.ceil((cy + 0.5 + half_h) * to_y)),
        ],
        axis=1,
    )
    return result, boxes, features, cell_level


def _field_relative(features: np.ndarray) -> None:
    """Set the FIELD_RELATIVE columns of one field's candidates (every candidate of every pass and diameter)."""
    for name, (of, how) in FIELD_RELATIVE.items():
        values = features[:, FEATURES.index(of)]
        if how == "ratio_to_largest":
            features[:, FEATURES.index(name)] = values / max(float(values.max()), 1e-3)
        else:
            features[:, FEATURES.index(name)] = values - _median_of_floats(values)


def _candidates(work, work_image, valid, valid_at, bg, nucleus_level, diameter, factor_x, factor_y, passes):
    """The nucleus candidates at one red-cell diameter (working-copy pixels) of the threshold sets `passes`: centres
    and half box sizes (at the nucleus scale), the factors back to original pixels (per candidate), FEATURES rows; None
    when there are none."""
    # the nucleus scale: a red cell about TARGET_RBC_PX across (never above the working copy's resolution)
    zoom = min(1.0, TARGET_RBC_PX / diameter)
    if zoom < 1.0:
        size = (max(8, round(work.shape[1] * zoom)), max(8, round(work.shape[0] * zoom)))
        zoom_x, zoom_y = size[0] / work.shape[1], size[1] / work.shape[0]
        small = np.asarray(_resize(work_image, size))
        valid_small = valid_at(size)
    else:
        zoom_x = zoom_y = 1.0
        small, valid_small = work, valid
    d = diameter * math.sqrt(zoom_x * zoom_y)
    od = _optical_density(small, bg)
    shared = {
        "x": np.arange(od.shape[1], dtype=np.int32),
        "vignette": _column_prefix(~valid_small, np.int32),
        "chroma": od[:, :, 0] - od[:, :, 2],  # the same in every pass
    }
    found = [_nuclei(od, valid_small, nucleus_level, d, shared, *thresholds) for thresholds in passes]
    found = [f for f in found if f is not None]
    if not found:
        return None
    cx, cy, bw, bh, features = (np.concatenate(parts) for parts in zip(*found, strict=True))
    half_w = np.maximum(BOX_RBC * d / 2, bw / 2 + BOX_MARGIN * d)
    half_h = np.maximum(BOX_RBC * d / 2, bh / 2 + BOX_MARGIN * d)
    to_x, to_y = np.full(len(cx), 1.0 / (factor_x * zoom_x)), np.full(len(cx), 1.0 / (factor_y * zoom_y))
    return cx, cy, half_w, half_h, to_x, to_y, features


def _nucleus_masks(od, valid, cell_level, chroma, chroma_min, low_min, high_min) -> tuple[np.ndarray, np.ndarray]:
    """One threshold set's nucleus pixels (not reddish, darker than the red cells by low_min) and its seeds (darker
    still, by high_min); `chroma` is red OD - blue OD."""
    low = valid & (chroma >= chroma_min * cell_level) & (od[:, :, 1] >= low_min * cell_level)
    return low, low & (od[:, :, 1] >= high_min * cell_level)


def _nuclei(od, valid, cell_level, d, shared, chroma_min, low_min, high_min, gap, pass_id):
    """Nucleus candidates of one threshold set: centres, box sizes and FEATURES rows (None when there are none)."""
    od_r, od_g, od_b = od[:, :, 0], od[:, :, 1], od[:, :, 2]
    low, high = _nucleus_masks(od, valid, cell_level, shared["chroma"], chroma_min, low_min, high_min)
    if not high.any():
        return None
    joined = _dilate(low, max(1, round(gap * d / 2))) if gap > 0 else low
    grouped = label(joined)
    # the row prefix sums serve both labellings (before and after a split cut) and the features; only the rows that
    # hold a run (of either labelling: a cut only removes pixels) are summed
    h, w = low.shape
    rows = np.flatnonzero(joined.any(axis=1))
    at = np.zeros(h, dtype=np.intp)
    at[rows] = np.arange(len(rows))
    low_rows = low[rows]
    cum_low, cum_high = _row_prefix(low_rows, np.int32), _row_prefix(high[rows], np.int32)
    area = grouped.sum_prefix(cum_low, at)
    seeded = grouped.sum_prefix(cum_high, at) > 0
    rbc_area = math.pi * d * d / 4
    keep = seeded & (area >= MIN_NUCLEUS_AREA * rbc_area) & (area <= MAX_NUCLEUS_AREA * rbc_area)
    large = seeded & (area >= SPLIT_AREA * rbc_area) & (area <= 2 * MAX_NUCLEUS_AREA * rbc_area)
    if not (keep | large).any():
        return None
    cut = _split_cut(grouped, low, large, d)
    if cut is not None:  # two touching white cells: the group is cut along the line between its two clusters
        grouped = label(joined & ~cut)
        area = grouped.sum_prefix(cum_low, at)
        seeded = grouped.sum_prefix(cum_high, at) > 0
        keep = seeded & (area >= MIN_NUCLEUS_AREA * rbc_area) & (area <= MAX_NUCLEUS_AREA * rbc_area)
    if not keep.any():
        return None
    idx = np.nonzero(keep)[0]
    safe = np.maximum(area, 1)
    # a run lies in one row, so its y sum is its row x its nucleus pixels: the integers the float64 prefix sums of
    # y x the nucleus mask held exactly (the same per-run values, summed in the same order)
    run_rows = at[grouped.row]
    low_per_run = cum_low[run_rows, grouped.end] - cum_low[run_rows, grouped.start]
    per = {
        "x": grouped.sum_prefix(_row_prefix(low_rows * shared["x"], np.int32), at),
        "y": np.bincount(grouped.component, weights=grouped.row * low_per_run, minlength=grouped.count),
        # float32 densities on the nucleus, 0 elsewhere, summed in float64 (exactly as od * a float64 weight was)
        "g": grouped.sum_prefix(_row_prefix(od_g[rows] * low_rows), at),
        "r": grouped.sum_prefix(_row_prefix(od_r[rows] * low_rows), at),
        "b": grouped.sum_prefix(_row_prefix(od_b[rows] * low_rows), at),
        "high": grouped.sum_prefix(cum_high, at),
    }
    bbox = grouped.bbox()[idx]
    a = area[idx]
    cx, cy = per["x"][idx] / safe[idx], per["y"][idx] / safe[idx]
    g = per["g"][idx] / safe[idx]
    dark = g / cell_level
    # the ring: the box grown by RING red-cell diameters around the nucleus' box, nucleus pixels excluded
    grow = RING * d
    x0 = np.clip(np.floor(bbox[:, 0] - grow), 0, w).astype(np.int64)
    y0 = np.clip(np.floor(bbox[:, 1] - grow), 0, h).astype(np.int64)
    x1 = np.clip(np.ceil(bbox[:, 2] + grow), 0, w).astype(np.int64)
    y1 = np.clip(np.ceil(bbox[:, 3] + grow), 0, h).astype(np.int64)
    ring_n = _box_sums(_column_prefix(~low, np.int32), x0, y0, x1, y1).astype(np.float64)
    ring = _box_sums(_column_prefix(od_g * ~low), x0, y0, x1, y1) / np.maximum(ring_n, 1) / cell_level
    vig = _box_sums(shared["vignette"], x0, y0, x1, y1).astype(np.float64) / np.maximum((x1 - x0) * (y1 - y0), 1)
    bw, bh = bbox[:, 2] - bbox[:, 0], bbox[:, 3] - bbox[:, 1]
    features = np.stack(
        [
            np.log(a / rbc_area),
            dark,
            per["high"][idx] / a,
            (per["r"][idx] - per["b"][idx]) / a / cell_level,
            per["b"][idx] / np.maximum(per["g"][idx], 1e-6),
            per["r"][idx] / np.maximum(per["g"][idx], 1e-6),
            a / (bw * bh),
            np.minimum(bw, bh) / np.maximum(bw, bh),
            ring,
            np.zeros(len(idx)),  # rel_dark, set by the caller (FIELD_RELATIVE)
            vig,
            np.zeros(len(idx)),  # count, set by the caller
            np.full(len(idx), float(pass_id)),
            *np.zeros((len(FEATURES) - 1 - FEATURES.index("pass"), len(idx))),  # field-relative colours: the caller's
        ],
        axis=1,
    )
    return cx, cy, bw, bh, features


def _split_cut(grouped: Runs, low: np.ndarray, large: np.ndarray, d: float) -> np.ndarray | None:
    """A mask of cut lines across the large groups whose nucleus pixels form two clusters (2-means along the
    principal axis) with centres >= SPLIT_GAP red-cell diameters apart, each >= SPLIT_SHARE of the pixels: two
    adjacent white cells merged by the lobe gap. None when no group splits."""
    if not large.any():
        return None
    h, w = low.shape
    box = grouped.bbox()
    cut = np.zeros((h, w), dtype=bool)
    for k in np.nonzero(large)[0]:
        x0, y0, x1, y1 = (int(v) for v in box[k])
        own = _own(grouped, k, x0, y0, x1, y1)
        ys, xs = np.nonzero(own & low[y0:y1, x0:x1])
        if len(xs) < 8:
            continue
        pts = np.stack([xs + x0, ys + y0], axis=1).astype(np.float64)
        # the points are whole pixels, so every sum of their coordinates is an exact integer in float64 and a mean
        # (sum / count) is bit for bit pts[...].mean(axis=0) in any summation order; the squared distances are
        # summed x then y as .sum(axis=1) sums the two columns
        px, py = pts[:, 0].copy(), pts[:, 1].copy()
        n, total = len(px), np.array([px.sum(), py.sum()])
        centre = total / n
        # A cut needs two sides of shares p and 1 - p >= SPLIT_SHARE (<= 0.5) whose means a, b are >= SPLIT_GAP d
        # apart. Whatever split the 2-means ends on, n p (1 - p) |a - b|^2 is the between-sides part of the points'
        # scatter about their centre, so a group whose scatter is under n SPLIT_SHARE (1 - SPLIT_SHARE) (SPLIT_GAP
        # d)^2 cannot be cut and is passed over before the eigenvectors (most groups; a 2% margin covers rounding,
        # so the cuts are exactly those the full search makes: tests/unit/test_localiser_split.py)
        scatter = float(((px - centre[0]) ** 2).sum() + ((py - centre[1]) ** 2).sum())
        if scatter < 0.98 * n * SPLIT_SHARE * (1 - SPLIT_SHARE) * (SPLIT_GAP * d) ** 2:
            continue
        _, vectors = np.linalg.eigh(_cov((pts - centre).T))
        side = (pts - centre) @ vectors[:, -1] > 0

        for _ in range(6):
            if side.all() or not side.any():
                break
            a, b = _side_means(px, py, total, side)
            moved = (px - b[0]) ** 2 + (py - b[1]) ** 2 < (px - a[0]) ** 2 + (py - a[1]) ** 2
            if np.array_equal(moved, side):
                break  # a fixed point: the remaining iterations would compute these very means and sides again
            side = moved
        if side.all() or not side.any():
            continue
        a, b = _side_means(px, py, total, side)
        gap = float(np.hypot(*(b - a)))
        if gap < SPLIT_GAP * d or min(side.mean(), 1 - side.mean()) < SPLIT_SHARE:
            continue
        u = (b - a) / gap
        gy, gx = np.mgrid[y0:y1, x0:x1]
        along = (gx - (a[0] + b[0]) / 2) * u[0] + (gy - (a[1] + b[1]) / 2) * u[1]
        cut[y0:y1, x0:x1] |= own & (np.abs(along) <= 1.0)
    return cut if cut.any() else None


def _cov(m: np.ndarray) -> np.ndarray:
    """np.cov(m) of a real 2 x N array (rows: variables), numpy's own steps without its argument handling (a third of
    the time on small arrays; tests/unit/test_localiser_exact.py holds it to np.cov bit for bit)."""
    x = np.array(m, ndmin=2, dtype=np.float64)
    x -= x.mean(axis=1)[:, None]
    c = np.dot(x, x.T.conj())
    c *= np.true_divide(1, x.shape[1] - 1)
    return c.squeeze()


def _side_means(px: np.ndarray, py: np.ndarray, total: np.ndarray, side: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean point off and on `side` (whole-pixel coordinates: exact sums, see _split_cut)."""
    count = int(np.count_nonzero(side))
    inside = np.array([px[side].sum(), py[side].sum()])
    return (total - inside) / (len(px) - count), inside / count


def _own(grouped: Runs, k: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """Component k's pixels inside its bounding box (x0, y0, x1, y1): the box of a label image == k + 1."""
    runs = grouped.component == k
    out = np.zeros((y1 - y0, x1 - x0 + 1), dtype=np.int8)
    out[grouped.row[runs] - y0, grouped.start[runs] - x0] = 1
    out[grouped.row[runs] - y0, grouped.end[runs] - x0] = -1  # distinct cells (see Runs.paint)
    return np.cumsum(out, axis=1, dtype=np.int8)[:, :-1] > 0


def _column_prefix(plane: np.ndarray, dtype=np.float64) -> np.ndarray:
    """[h + 1, w]: 0, then the running sum down each column (dtype int32 for a mask: exact counts, the numbers float64
    held, faster)."""
    out = np.zeros((plane.shape[0] + 1, plane.shape[1]), dtype=dtype)
    np.cumsum(plane, axis=0, dtype=dtype, out=out[1:])
    return out


def _box_sums(columns: np.ndarray, x0, y0, x1, y1) -> np.ndarray:
    """The plane's sum over each box [x0, x1) x [y0, y1), from its _column_prefix: the summed-area table's corners,
    I[y1, x1] - I[y0, x1] - I[y1, x0] + I[y0, x0], with only the table's rows y0 and y1 summed along (each row of
    the table is the running sum of one row of the column prefix, whatever the other rows)."""

    def rows(y: np.ndarray) -> np.ndarray:
        out = np.zeros((len(y), columns.shape[1] + 1), dtype=columns.dtype)
        np.cumsum(columns[y], axis=1, dtype=columns.dtype, out=out[:, 1:])
        return out

    top, bottom, k = rows(y0), rows(y1), np.arange(len(x0))
    return bottom[k, x1] - top[k, x1] - bottom[k, x0] + top[k, x0]


def expand(z: np.ndarray) -> np.ndarray:
    """The scorer's inputs: the standardised features and their squares (clipped, so outliers stay bounded)."""
    z = np.clip(z, -EXPAND_CLIP, EXPAND_CLIP)
    return np.concatenate([z, z * z], axis=1)


def score(features: np.ndarray) -> np.ndarray:
    """The candidates' white-cell probability: logistic regression on expand(standardised FEATURES) (tune split)."""
    if not len(features):
        return np.zeros(0)
    z = expand((features - MODEL_MEAN) / MODEL_SCALE)
    return 1.0 / (1.0 + np.exp(-np.clip(z @ MODEL_WEIGHTS + MODEL_BIAS, -30, 30)))


def _one_cell(copy: _WorkingCopy | None, result: Localisation) -> bool:
    """Where no nucleus candidate was kept in the photo (its _working_copy): if it is one white cell (see
    ONE_CELL_AREA), its box goes into result (score SCORE_MIN, the bar it is kept at) and the scale becomes the
    largest-nucleus guess (ruler "default"). True when it was."""
    if copy is None:
        return False
    work, bg, factor_x, factor_y = copy.work, copy.bg, copy.factor_x, copy.factor_y
    width, height = result.width, result.height
    valid = ~_vignette(work, bg)
    if valid.sum() < 0.05 * valid.size:
        return False
    od = _optical_density(work, bg)
    green = od[:, :, 1]
    dark = valid & (green >= ONE_CELL_PIXEL_OD) & (od[:, :, 0] > od[:, :, 2])
    runs = label(dark)
    if not runs.count:
        return False
    areas = runs.area()
    k = int(np.argmax(areas))
    if areas[k] < ONE_CELL_AREA * valid.sum() or green[runs.mask(np.arange(runs.count) == k)].mean() < ONE_CELL_OD:
        return False
    x0, y0, x1, y1 = (float(v) for v in runs.bbox()[k])
    grow = ONE_CELL_MARGIN * max(x1 - x0, y1 - y0)
    result.boxes.append(
        (
            max(0, math.floor((x0 - grow) / factor_x)),
            max(0, math.floor((y0 - grow) / factor_y)),
            min(width, math.ceil((x1 + grow) / factor_x)),
            min(height, math.ceil((y1 + grow) / factor_y)),
        )
    )
    result.scores.append(SCORE_MIN)
    diameter = math.sqrt(float(areas[k]) / (NUCLEUS_RBC_AREA * math.pi / 4))
    result.px_per_um = diameter / math.sqrt(factor_x * factor_y) / RBC_DIAMETER_UM
    result.ruler, result.red_cell_cover = "default", None
    return True


def locate(image) -> Localisation:
    """White-cell boxes and the scale of a whole-field photo (uint8 HxWx3 RGB array, or a PIL image)."""
    prepared = _working_copy(image)  # built once: _one_cell and the candidates' patches read it too
    result, boxes, features, _ = _features_and_boxes(image, prepared=prepared)
    p = candidate_scores(prepared[1], boxes, features)
    for i in np.argsort(-p, kind="stable"):
        if p[i] < SCORE_MIN:
            break
        box = tuple(int(v) for v in boxes[i])
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        if any(k[0] <= cx <= k[2] and k[1] <= cy <= k[3] for k in result.boxes):
            continue  # a lobe or a piece of a cell already boxed
        result.boxes.append(box)
        result.scores.append(float(p[i]))
    if not result.boxes:
        # no candidate, or a cell filling the frame (a 100x objective, a tight crop), whose nucleus candidates the
        # network never saw at that size and rejects: the photo may still be that one cell
        _one_cell(prepared[1], result)
    return result
