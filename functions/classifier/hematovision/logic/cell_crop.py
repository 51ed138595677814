"""The cell-centred, scale-normalised model input (from model 2.0), shared by training and serving (numpy + Pillow).

Given a decoded upright RGB image and the localiser's answer (logic/localiser.locate), each white cell becomes a
square crop centred on its box that covers a fixed physical size, `crop_um` micrometres on a side, resized to the
model's input. The ruler:
- "red_cells": the localiser measured the red cells (Localisation.ruler == "red_cells"), so the crop is
  crop_um x px_per_um pixels wide, and a cell keeps its true size (the main cue between lymphocytes and monocytes);
- "box": no red-cell ruler (a tight crop, a field without red cells): the crop is BOX_CROP times the cell's own box
  (its longer side), so the cell fills the crop as a typical cell does with the red-cell ruler.
Where the crop leaves the image it is padded with the image's median border colour (black vignette/rotation corners
left out of the median), never with mirrored pixels, which would copy the cell.

The training code (export/train.py) and the serving code call the same `crop_cells`, so a training crop and a served
crop of the same photo are the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from hematovision.logic.preprocessing import to_model_input

RESAMPLE = Image.Resampling.BILINEAR
# crop side / the cell box's longer side when there is no red-cell ruler. The localiser's box is the nucleus grown
# by a quarter red cell on each side, at least 1.6 red cells wide: on pbc and bccd with the red-cell ruler its
# median longer side is ~14 um (export/crops_check.py), and 14 x 1.6 ~ 22 um, the default crop_um.
BOX_CROP = 1.6
DARK_BORDER = 24  # border pixels whose brightest channel is below this are vignette or rotation fill, not background
# Photos whose model input is a crop (/v1/analyze; /v1/classify with a cell model) are decoded with both sides >= 2 x
# this (large JPEGs at a reduced DCT scale): a 12 MP photo comes at 2000x1500, where a white cell at 40x is still
# ~60 px wide, enough for the model's input. A photo with both sides under 4 x this (2048 px), every training image
# among them (320x240 to 640x480), is decoded at full size, as training decodes it.
DECODE_SIZE = 512
# The colour normalisation a card may ask for (card["input"]["normalise"]; absent = "none", model 1.2.0):
# "background" scales each channel of the model input so that its background, the 90th percentile of the channel
# (plasma and the pale centres of red cells, the most common bright pixels of a blood crop), becomes
# BACKGROUND_TARGET. A stain's or a camera's colour cast is mostly a gain per channel over the whole photo; dividing it
# out keeps a white cell's colour relative to its own background - the cue between an eosinophil's densely stained
# cytoplasm and a neutrophil's pale one, which a yellow or cyan background otherwise shifts.
NORMALISATIONS = ("none", "background")
BACKGROUND_PERCENTILE = 90
BACKGROUND_TARGET = 235.0
MAX_BACKGROUND_GAIN = 4.0  # a near-black input (not a smear) is not stretched into noise


@dataclass(frozen=True)
class CellCrop:
    pixels: np.ndarray  # uint8 [size, size, 3]
    box: tuple[int, int, int, int]  # the localiser's box, in the image's pixels
    centre: tuple[float, float]  # x, y of the crop's centre, in the image's pixels
    side: float  # the crop's side, in the image's pixels
    ruler: str  # "red_cells" or "box"


def as_pil(image) -> Image.Image:
    """An RGB Pillow image of a PIL image or an HxWx3 (or HxW) uint8 array."""
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] < 3:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {array.shape}")
    return Image.fromarray(np.ascontiguousarray(array[:, :, :3].astype(np.uint8)))


def border_colour(image) -> tuple[int, int, int]:
    """The median colour of the image's outermost rows and columns, black fill (vignette, rotation corners) left out
    unless the border is nothing else."""
    rgb = np.asarray(as_pil(image))
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]]).astype(np.int32)
    lit = border[border.max(axis=1) >= DARK_BORDER]
    chosen = lit if len(lit) >= 0.1 * len(border) else border
    return tuple(int(v) for v in np.median(chosen, axis=0))


def crop_side(box, px_per_um: float | None, ruler: str, crop_um: float) -> tuple[float, str]:
    """The crop's side in the image's pixels and the ruler that gave it."""
    if ruler == "red_cells" and px_per_um is not None and px_per_um > 0:
        return crop_um * px_per_um, "red_cells"
    return BOX_CROP * max(box[2] - box[0], box[3] - box[1], 1), "box"


def square_crop(image, centre: tuple[float, float], side: float, size: int, fill=None) -> np.ndarray:
    """The side x side square centred on `centre` (image pixels, sub-pixel), resized to size x size (bilinear, with
    Pillow's area-aware filter when reducing); the part outside the image is `fill` (default: its border colour)."""
    pil = as_pil(image)
    x0, y0 = centre[0] - side / 2, centre[1] - side / 2
    x1, y1 = x0 + side, y0 + side
    if x0 >= 0 and y0 >= 0 and x1 <= pil.width and y1 <= pil.height:
        return np.asarray(pil.resize((size, size), RESAMPLE, box=(x0, y0, x1, y1)), dtype=np.uint8)
    fill = border_colour(pil) if fill is None else tuple(int(v) for v in fill)
    canvas = Image.new("RGB", (size, size), fill)
    ix0, iy0 = max(0.0, x0), max(0.0, y0)
    ix1, iy1 = min(float(pil.width), x1), min(float(pil.height), y1)
    scale = size / side
    dx0, dy0 = round((ix0 - x0) * scale), round((iy0 - y0) * scale)
    dx1, dy1 = round((ix1 - x0) * scale), round((iy1 - y0) * scale)
    if dx1 > dx0 and dy1 > dy0:
        canvas.paste(pil.resize((dx1 - dx0, dy1 - dy0), RESAMPLE, box=(ix0, iy0, ix1, iy1)), (dx0, dy0))
    return np.asarray(canvas, dtype=np.uint8)


def crop_box(
    image, box, px_per_um: float | None, ruler: str, crop_um: float, size: int, scale: float = 1.0, fill=None
) -> CellCrop:
    """The crop of one box (see crop_cells); `fill`: the padding colour (default: the image's border colour)."""
    side, ruler = crop_side(box, px_per_um, ruler, crop_um)
    side *= scale
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    pixels = square_crop(image, centre, side, size, fill)
    return CellCrop(pixels, tuple(int(v) for v in box), centre, float(side), ruler)


def crop_cells(image, localisation, crop_um: float, size: int, scale: float = 1.0) -> list[CellCrop]:
    """One crop per box of `localisation` (a logic.localiser.Localisation of this very image), in its order (best
    score first). `scale` multiplies the crop's side (training-time scale jitter; 1 when serving)."""
    pil = as_pil(image)
    fill = border_colour(pil) if localisation.boxes else None
    return [
        crop_box(pil, box, localisation.px_per_um, localisation.ruler, crop_um, size, scale, fill)
        for box in localisation.boxes
    ]


@dataclass(frozen=True)
class ModelInput:
    pixels: np.ndarray  # uint8 [size, size, 3]
    crop: str  # "cell": the crop of the best-scoring cell; "frame": no cell found, the whole frame
    ruler: str  # the crop's ruler ("red_cells" or "box"), "none" for a frame
    cells: int  # how many cells the localiser found


def frame_input(image, size: int) -> np.ndarray:
    """The whole frame resized to size x size: the serving preprocessing's resize (model 1.2.0's input)."""
    return to_model_input(as_pil(image), size)


def model_input(image, localisation, crop_um: float, size: int, scale: float = 1.0) -> ModelInput:
    """One image's model input: its best-scoring cell's crop (the localiser lists boxes best first), or the whole
    frame when no cell is found."""
    if not localisation.boxes:
        return ModelInput(frame_input(image, size), "frame", "none", 0)
    first = crop_box(image, localisation.boxes[0], localisation.px_per_um, localisation.ruler, crop_um, size, scale)
    return ModelInput(first.pixels, "cell", first.ruler, len(localisation.boxes))


def balance_background(pixels: np.ndarray) -> np.ndarray:
    """The "background" normalisation of a uint8 HxWx3 model input (see NORMALISATIONS)."""
    rgb = pixels.astype(np.float32)
    level = np.percentile(rgb.reshape(-1, 3), BACKGROUND_PERCENTILE, axis=0)
    gains = np.minimum(BACKGROUND_TARGET / np.maximum(level, 1.0), MAX_BACKGROUND_GAIN)
    return np.clip(rgb * gains + 0.5, 0, 255).astype(np.uint8)


def normalise(pixels: np.ndarray, normalisation: str) -> np.ndarray:
    """A model input as the card's input.normalise asks (training and serving both call this last)."""
    if normalisation == "none":
        return pixels
    if normalisation == "background":
        return balance_background(pixels)
    raise ValueError(f"unknown normalisation {normalisation!r}; known: {', '.join(NORMALISATIONS)}")


def isotropic(image: Image.Image, width: int, height: int) -> tuple[Image.Image, float, float]:
    """The decoded photo at one scale on both axes, and the original pixels per decoded pixel on each axis.

    A large non-JPEG photo is box-reduced by an integer factor per axis (logic/preprocessing.py), which can squeeze
    it; the localiser and the crops need square pixels, so it is resized to the larger of the two factors."""
    sx, sy = width / image.width, height / image.height
    if max(sx, sy) > 1.02 * min(sx, sy):
        scale = max(sx, sy)
        image = image.resize((max(1, round(width / scale)), max(1, round(height / scale))), RESAMPLE)
        sx, sy = width / image.width, height / image.height
    return image, sx, sy
