"""Pixel augmentations for training views, on the uint8 [224, 224, 3] model input (numpy + Pillow).

White-blood cells have no orientation, so any of the 8 flips/quarter-turns is a legitimate view; a mild
colour jitter stands in for stain and scanner differences between labs.

pbc frames are square and centred on a large cell, while in a bccd frame (320x240, squeezed to 224x224
horizontally by 0.7) the cell is about 0.6x as big, off-centre and squeezed. `zoom_out` makes pbc views
look like that: shrink (anisotropically), then place at a random offset on the frame's background colour
(mirrored borders would copy the cell), so the bccd-like geometry is learned from pbc's many cells and not
only from bccd's few (16 monocytes).

pbc's colours differ from bccd's far more than `colour_jitter` covers (whole-frame mean RGB about (220, 188, 184)
with channel spreads (39, 47, 19), against bccd's (196, 185, 190) and (20, 29, 22)). `match_colour` gives a pbc
view the per-channel mean and spread of one bccd training frame (Reinhard-style transfer, in RGB), so the
granule and nucleus cues learned from pbc's many cells are also seen in bccd's colours.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

ZOOM_OUT_SCALE = (0.5, 0.85)  # cell size relative to the pbc frame
ZOOM_OUT_SQUEEZE = (0.7, 1.0)  # extra horizontal factor (bccd's 320 -> 224 squeeze is 0.7)


def dihedral(image: np.ndarray, k: int) -> np.ndarray:
    """k in 0..7: k % 4 quarter-turns, then a horizontal flip when k >= 4."""
    out = np.rot90(image, k % 4, axes=(0, 1))
    if k >= 4:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def colour_jitter(image: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    x = image.astype(np.float32)
    brightness = 1.0 + rng.uniform(-0.12, 0.12) * strength
    contrast = 1.0 + rng.uniform(-0.15, 0.15) * strength
    saturation = 1.0 + rng.uniform(-0.20, 0.20) * strength
    channel_gain = 1.0 + rng.uniform(-0.04, 0.04, size=3) * strength  # stain tint
    mean = x.mean()
    x = (x - mean) * contrast + mean
    grey = x.mean(axis=2, keepdims=True)
    x = (x - grey) * saturation + grey
    x = x * brightness * channel_gain
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def zoom_out(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shrink the frame (height by s, width by s * squeeze) and put it at a random place on its border colour."""
    size_y, size_x = image.shape[:2]
    scale = rng.uniform(*ZOOM_OUT_SCALE)
    new_y = max(1, round(size_y * scale))
    new_x = max(1, round(size_x * scale * rng.uniform(*ZOOM_OUT_SQUEEZE)))
    small = np.asarray(Image.fromarray(image).resize((new_x, new_y), Image.BILINEAR))
    top = int(rng.integers(size_y - new_y + 1))
    left = int(rng.integers(size_x - new_x + 1))
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    canvas = np.empty_like(image)
    canvas[...] = np.median(border, axis=0).astype(np.uint8)
    canvas[top : top + new_y, left : left + new_x] = small
    return canvas


DARK = 60  # a pixel whose R+G+B is below this is a black rotation corner of a bccd frame, not slide


def colour_stats(image: np.ndarray) -> np.ndarray:
    """Per-channel mean and standard deviation of the non-black pixels: [6] = (mean R, G, B, std R, G, B)."""
    all_pixels = image.reshape(-1, 3).astype(np.float32)
    slide = all_pixels[all_pixels.sum(axis=1) >= DARK]
    pixels = slide if len(slide) else all_pixels
    return np.concatenate([pixels.mean(axis=0), pixels.std(axis=0)])


def match_colour(image: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Shift and scale each channel so that the image's colour_stats become `target`."""
    own = colour_stats(image)
    x = image.astype(np.float32)
    x = (x - own[:3]) / np.maximum(own[3:], 1.0) * target[3:] + target[:3]
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def random_view(
    image: np.ndarray,
    rng: np.random.Generator,
    zoom_out_probability: float = 0.0,
    colour_targets: np.ndarray | None = None,
    colour_probability: float = 0.0,
) -> np.ndarray:
    """colour_targets: [n, 6] colour_stats of reference frames, one of which is matched with colour_probability.
    Without targets, or at probability 0, no random number is drawn for it: the views are those of the 1.2.0 recipe."""
    if rng.random() < zoom_out_probability:
        image = zoom_out(image, rng)
    if colour_targets is not None and colour_probability > 0 and rng.random() < colour_probability:
        image = match_colour(image, colour_targets[int(rng.integers(len(colour_targets)))])
    return colour_jitter(dihedral(image, int(rng.integers(8))), rng)


def mixup(
    features: np.ndarray, targets: np.ndarray, weights: np.ndarray, rng: np.random.Generator, alpha: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mixup (Zhang et al., ICLR 2018) of one batch, here on cached hidden features ("manifold mixup"):
    each example is blended with a random partner of the same batch, lambda ~ Beta(alpha, alpha) per example;
    its targets and sample weights are blended with the same lambda."""
    lam = rng.beta(alpha, alpha, size=len(features)).astype(np.float32)
    partner = rng.permutation(len(features))

    def blend(values: np.ndarray) -> np.ndarray:
        values = values.astype(np.float32)
        weight = lam.reshape((-1,) + (1,) * (values.ndim - 1))
        return weight * values + (1 - weight) * values[partner]

    return blend(features), blend(targets), blend(weights)
