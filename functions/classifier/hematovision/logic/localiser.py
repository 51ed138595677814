"""Find the white cells (WBC) in a whole-field smear photo and the photo's scale, from the stain alone (numpy + Pillow).

1. Work on a copy reduced to at most WORK_LONG_SIDE pixels on its long side.
2. The background colour is the median of the brightest pixels; the black eyepiece circle (or letterbox) is the set of
   dark, large regions touching the border. Every pixel becomes an optical density relative to the background,
   OD = log(background / pixel) per channel, which cancels colour casts and exposure (they are per-channel gains).
3. The scale: red cells are the most frequent blobs. The scale of the strongest difference-of-Gaussian blob
   responses of the green OD (median over the blobs) gives the red-cell diameter, hence px per um (7.5 um across).
4. The image is resampled so a red cell is about TARGET_RBC_PX across; nuclei are the pixels much darker than the
   red cells (green OD >= NUCLEUS_LOW x the cells' median) and not reddish (red OD well above blue OD), seeded by
   darker pixels; nucleus lobes within LOBE_GAP red-cell diameters are merged; platelets and specks are rejected by
   their area relative to a red cell.
5. Each white cell's box is centred on its nucleus, at least BOX_RBC red-cell diameters wide, in original pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFilter

RBC_DIAMETER_UM = 7.5
WORK_LONG_SIDE = 400
TARGET_RBC_PX = 16.0
MIN_SIDE = 16  # smaller images hold no cell we could find: an empty answer
DARK_FRACTION = 0.30  # a vignette pixel: brightest channel below this fraction of the background's
NUCLEUS_LOW = 1.4  # nucleus pixels: green OD >= this x the cells' median green OD ...
NUCLEUS_HIGH = 1.8  # ... in components holding a pixel >= this
NUCLEUS_CHROMA = 0.3  # red OD - blue OD >= this x the cells' median green OD (purple/blue, not red or grey)
LOBE_GAP = 0.35  # merge nucleus pieces closer than this many red-cell diameters
MIN_NUCLEUS_AREA = 0.20  # a nucleus covers at least this fraction of a red cell's area (platelets: ~0.1)
MAX_NUCLEUS_AREA = 6.0  # larger dark regions are clumps or stain debris
BOX_RBC = 1.6  # the box is at least this many red-cell diameters wide (tune split: 1.6 beat 1.9)
BOX_MARGIN = 0.25  # and the nucleus' box grown by this many red-cell diameters on each side
DEFAULT_RBC_PX_FRACTION = 1 / 40  # with no usable red cells: a red cell is this fraction of the long side
SCALE_CALIBRATION = 2.53  # red-cell diameter = this x the typical distance-transform peak (tune split)
SCALE_LONG_SIDE = 256  # the autocorrelation's working size


@dataclass
class Localisation:
    """White-cell boxes (xmin, ymin, xmax, ymax) in the pixels of the image given, with a score each, and the scale."""

    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    px_per_um: float | None = None
    ruler: str = "none"  # "red_cells": estimated from the red cells; "default": a guess from the image size
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

    def sum_per_component(self, values: np.ndarray) -> np.ndarray:
        """Sum of a per-pixel array over each component's pixels."""
        cum = np.zeros((values.shape[0], values.shape[1] + 1), dtype=np.float64)
        np.cumsum(values, axis=1, out=cum[:, 1:])
        per_run = cum[self.row, self.end] - cum[self.row, self.start]
        return np.bincount(self.component, weights=per_run, minlength=self.count)

    def area(self) -> np.ndarray:
        return np.bincount(self.component, weights=self.end - self.start, minlength=self.count)

    def bbox(self) -> np.ndarray:
        """[count, 4] xmin, ymin, xmax, ymax (exclusive) per component."""
        out = np.empty((self.count, 4), dtype=np.int64)
        out[:, :2] = np.iinfo(np.int64).max
        out[:, 2:] = -1
        np.minimum.at(out[:, 0], self.component, self.start)
        np.minimum.at(out[:, 1], self.component, self.row)
        np.maximum.at(out[:, 2], self.component, self.end)
        np.maximum.at(out[:, 3], self.component, self.row + 1)
        return out

    def paint(self, shape: tuple[int, int], values: np.ndarray) -> np.ndarray:
        """An image holding values[component] on each component's pixels and 0 elsewhere."""
        h, w = shape
        out = np.zeros((h, w + 1), dtype=np.float64)
        v = np.asarray(values, dtype=np.float64)[self.component]
        np.add.at(out, (self.row, self.start), v)
        np.add.at(out, (self.row, self.end), -v)
        return np.cumsum(out, axis=1)[:, :w]


def label(mask: np.ndarray) -> Runs:
    """8-connected components of a boolean mask, by runs and a vectorised union-find (no scipy)."""
    h, w = mask.shape
    padded = np.zeros((h, w + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    step = np.diff(padded, axis=1)
    row, start = np.nonzero(step == 1)
    _, end = np.nonzero(step == -1)
    n = len(row)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Runs(empty, empty, empty, empty, 0)
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
                if np.array_equal(jumped, parent):
                    break
                parent = jumped
    roots, component = np.unique(parent, return_inverse=True)
    return Runs(row, start, end, component.reshape(-1), len(roots))


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


def _blur(plane: np.ndarray, sigma: float, scale: float) -> np.ndarray:
    """Gaussian blur of a float plane via Pillow's 8-bit blur (plane * scale must fit 0..255)."""
    img = Image.fromarray(np.clip(plane * scale + 0.5, 0, 255).astype(np.uint8))
    return np.asarray(img.filter(ImageFilter.GaussianBlur(sigma)), dtype=np.float32) / scale


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    if radius <= 0:
        return mask
    img = Image.fromarray(mask.astype(np.uint8) * 255)
    return np.asarray(img.filter(ImageFilter.BoxBlur(radius))) > 0


def _background(rgb: np.ndarray) -> np.ndarray:
    """The background colour: the median of the brightest 5% of pixels (the plasma between cells)."""
    lum = rgb.sum(axis=2, dtype=np.int32)
    cut = np.percentile(lum, 95)
    bright = rgb[lum >= cut]
    return np.maximum(np.median(bright, axis=0).astype(np.float32), 8.0)


def _vignette(rgb: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """Dark regions touching the border and larger than 0.5% of the image: the eyepiece circle or a letterbox."""
    dark = rgb.max(axis=2) < DARK_FRACTION * float(bg.max())
    if not dark.any():
        return dark
    runs = label(dark)
    box = runs.bbox()
    h, w = dark.shape
    touches = (box[:, 0] == 0) | (box[:, 1] == 0) | (box[:, 2] == w) | (box[:, 3] == h)
    keep = touches & (runs.area() > 0.005 * h * w)
    if not keep.any():
        return np.zeros_like(dark)
    return _dilate(runs.paint(dark.shape, keep.astype(np.float64)) > 0, max(2, round(0.01 * max(h, w))))


def _otsu(values: np.ndarray) -> float:
    hist, edges = np.histogram(values, bins=128)
    centre = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(hist).astype(np.float64)
    mean = np.cumsum(hist * centre)
    total, total_mean = weight[-1], mean[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total_mean * weight - mean * total) ** 2 / (weight * (total - weight))
    return float(centre[int(np.nanargmax(between))]) if np.isfinite(between).any() else float(np.median(values))


def _cell_level(od_g: np.ndarray) -> float:
    """The red cells' typical green OD: the mode of the green OD among the pixels clearly above the background."""
    p95 = float(np.percentile(od_g, 95))
    cells = od_g[od_g > max(0.06, 0.25 * p95)]
    if cells.size < 16:
        return max(p95, 0.05)
    hist, edges = np.histogram(cells, bins=48, range=(0.0, float(np.percentile(cells, 98)) + 1e-6))
    smooth = np.convolve(hist, np.ones(5) / 5, mode="same")
    peak = int(np.argmax(smooth))
    return max(float((edges[peak] + edges[peak + 1]) / 2), 0.05)


def _optical_density(rgb: np.ndarray, bg: np.ndarray) -> np.ndarray:
    return np.maximum(np.log(bg + 1.0) - np.log(rgb.astype(np.float32) + 1.0), 0.0)


def _erode(mask: np.ndarray, step: int) -> np.ndarray:
    """One erosion, alternately by a 3x3 square and a cross (an octagonal distance, within ~8% of Euclidean)."""
    out = mask.copy()
    out[1:] &= mask[:-1]
    out[:-1] &= mask[1:]
    if step % 2 == 0:  # the square: rows first, then columns of the row-eroded mask
        rows = out.copy()
        out[:, 1:] &= rows[:, :-1]
        out[:, :-1] &= rows[:, 1:]
    else:
        out[:, 1:] &= mask[:, :-1]
        out[:, :-1] &= mask[:, 1:]
    out[0, :] = out[-1, :] = False
    out[:, 0] = out[:, -1] = False
    return out


def _rbc_diameter(od_g: np.ndarray, valid: np.ndarray, level: float) -> float | None:
    """Red-cell diameter in pixels from the distance transform of the cell mask (central pallor filled).

    The cell mask holds the pixels above half the red cells' green OD; enclosed background pieces smaller than half
    the median cell piece are pallor and get filled. The distance transform's local maxima sit at cell centres; the
    median of the maxima above 40% of the largest, times SCALE_CALIBRATION, is the diameter (tune split).
    """
    h, w = od_g.shape
    cells = valid & (od_g > 0.5 * level)
    if cells.sum() < 16:
        return None
    back = label(~cells)
    box = back.bbox()
    touches = (box[:, 0] == 0) | (box[:, 1] == 0) | (box[:, 2] == w) | (box[:, 3] == h)
    pieces = label(cells).area()
    typical = float(np.median(pieces[pieces >= 4])) if (pieces >= 4).any() else 16.0
    holes = ~touches & (back.area() < 0.5 * typical)
    if holes.any():
        cells = cells | (back.paint(cells.shape, holes.astype(np.float64)) > 0)
    distance = np.zeros(cells.shape, dtype=np.int32)
    mask, step = cells, 0
    while mask.any() and step < 255:
        distance += mask
        mask = _erode(mask, step)
        step += 1
    image = Image.fromarray(np.minimum(distance, 255).astype(np.uint8))
    peaks = (np.asarray(image.filter(ImageFilter.MaxFilter(3))) == distance) & (distance >= 2)
    values = distance[peaks]
    if values.size < 3:
        return None
    return SCALE_CALIBRATION * float(np.median(values[values >= 0.4 * values.max()]))


# ----------------------------------------------------------------------------------------------------------- locate
def locate(image) -> Localisation:
    """White-cell boxes and the scale of a whole-field photo (uint8 HxWx3 RGB array, or a PIL image)."""
    rgb = _as_rgb(image)
    height, width = rgb.shape[:2]
    result = Localisation(width=width, height=height)
    if min(height, width) < MIN_SIDE:
        return result
    original = Image.fromarray(np.ascontiguousarray(rgb))
    long_side = max(width, height)
    factor = min(1.0, WORK_LONG_SIDE / long_side)
    work = np.asarray(_resize(original, (max(1, round(width * factor)), max(1, round(height * factor)))))

    bg = _background(work)
    vignette = _vignette(work, bg)
    valid = ~vignette
    if valid.sum() < 0.05 * valid.size:
        return result
    od = _optical_density(work, bg)
    od_g = od[:, :, 1]
    cell_level = _cell_level(od_g[valid])
    scale_factor = min(1.0, SCALE_LONG_SIDE / max(work.shape[:2]))
    if scale_factor < 1.0:
        size = (max(1, round(work.shape[1] * scale_factor)), max(1, round(work.shape[0] * scale_factor)))
        od_small = _optical_density(np.asarray(_resize(Image.fromarray(work), size)), bg)[:, :, 1]
        valid_scale = (
            np.asarray(Image.fromarray(valid.astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST)) > 0
        )
        scale_factor = math.sqrt(size[0] / work.shape[1] * size[1] / work.shape[0])
    else:
        od_small, valid_scale = od_g, valid
    diameter = _rbc_diameter(od_small, valid_scale, cell_level)
    if diameter is not None:
        diameter /= scale_factor
    if diameter is None or not (3.0 <= diameter <= min(work.shape[:2]) / 2):
        diameter = long_side * factor * DEFAULT_RBC_PX_FRACTION
        result.ruler = "default"
    else:
        result.ruler = "red_cells"
    result.px_per_um = diameter / factor / RBC_DIAMETER_UM

    # the nucleus scale: a red cell about TARGET_RBC_PX across (never above the working copy's resolution)
    zoom = min(1.0, TARGET_RBC_PX / diameter)
    if zoom < 1.0:
        size = (max(8, round(work.shape[1] * zoom)), max(8, round(work.shape[0] * zoom)))
        zoom_x, zoom_y = size[0] / work.shape[1], size[1] / work.shape[0]
        small = np.asarray(_resize(Image.fromarray(work), size))
        valid_small = (
            np.asarray(Image.fromarray(valid.astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST)) > 0
        )
    else:
        zoom_x = zoom_y = 1.0
        small, valid_small = work, valid
    d = diameter * math.sqrt(zoom_x * zoom_y)
    od = _optical_density(small, bg)
    od_r, od_g, od_b = od[:, :, 0], od[:, :, 1], od[:, :, 2]
    chroma = (od_r - od_b) >= NUCLEUS_CHROMA * cell_level
    low = valid_small & chroma & (od_g >= NUCLEUS_LOW * cell_level)
    high = low & (od_g >= NUCLEUS_HIGH * cell_level)
    if not high.any():
        return result
    grouped = label(_dilate(low, max(1, round(LOBE_GAP * d / 2))))
    nucleus_area = grouped.sum_per_component(low)
    seeded = grouped.sum_per_component(high) > 0
    rbc_area = math.pi * d * d / 4
    keep = seeded & (nucleus_area >= MIN_NUCLEUS_AREA * rbc_area) & (nucleus_area <= MAX_NUCLEUS_AREA * rbc_area)
    if not keep.any():
        return result
    ys, xs = np.mgrid[0 : low.shape[0], 0 : low.shape[1]]
    weight = low.astype(np.float64)
    cx = grouped.sum_per_component(xs * weight) / np.maximum(nucleus_area, 1)
    cy = grouped.sum_per_component(ys * weight) / np.maximum(nucleus_area, 1)
    bbox = grouped.bbox()
    to_x = 1.0 / (factor * zoom_x)
    to_y = 1.0 / (factor * zoom_y)
    for i in np.nonzero(keep)[0]:
        half_w = max(BOX_RBC * d / 2, (bbox[i, 2] - bbox[i, 0]) / 2 + BOX_MARGIN * d)
        half_h = max(BOX_RBC * d / 2, (bbox[i, 3] - bbox[i, 1]) / 2 + BOX_MARGIN * d)
        x0 = max(0, math.floor((cx[i] + 0.5 - half_w) * to_x))
        y0 = max(0, math.floor((cy[i] + 0.5 - half_h) * to_y))
        x1 = min(width, math.ceil((cx[i] + 0.5 + half_w) * to_x))
        y1 = min(height, math.ceil((cy[i] + 0.5 + half_h) * to_y))
        result.boxes.append((int(x0), int(y0), int(x1), int(y1)))
        result.scores.append(float(min(1.0, nucleus_area[i] / rbc_area)))
    return result
