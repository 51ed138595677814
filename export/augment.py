"""Pixel augmentations for training views, on the uint8 model input (numpy + Pillow).

White-blood cells have no orientation, so any of the 8 flips/quarter-turns is a legitimate view; a mild
colour jitter stands in for stain and scanner differences between labs.

pbc frames are square and centred on a large cell, while in a bccd frame (320x240, squeezed to 224x224
horizontally by 0.7) the cell is about 0.6x as big, off-centre and squeezed. `zoom_out` makes pbc views
look like that: shrink (anisotropically), then place at a random offset on the frame's background colour
(mirrored borders would copy the cell), so the bccd-like geometry is learned from pbc's many cells and not
only from bccd's few (16 monocytes).

The strengths and probabilities come from the recipe (export/recipe.py: Augmentation).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from export.recipe import Augmentation


def dihedral(image: np.ndarray, k: int) -> np.ndarray:
    """k in 0..7: k % 4 quarter-turns, then a horizontal flip when k >= 4."""
    out = np.rot90(image, k % 4, axes=(0, 1))
    if k >= 4:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def colour_jitter(image: np.ndarray, rng: np.random.Generator, augmentation: Augmentation) -> np.ndarray:
    a = augmentation
    x = image.astype(np.float32)
    brightness = 1.0 + rng.uniform(-a.brightness, a.brightness)
    contrast = 1.0 + rng.uniform(-a.contrast, a.contrast)
    saturation = 1.0 + rng.uniform(-a.saturation, a.saturation)
    channel_gain = 1.0 + rng.uniform(-a.stain_tint, a.stain_tint, size=3)
    mean = x.mean()
    x = (x - mean) * contrast + mean
    grey = x.mean(axis=2, keepdims=True)
    x = (x - grey) * saturation + grey
    x = x * brightness * channel_gain
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def zoom_out(image: np.ndarray, rng: np.random.Generator, augmentation: Augmentation) -> np.ndarray:
    """Shrink the frame (height by s, width by s * squeeze) and put it at a random place on its border colour."""
    size_y, size_x = image.shape[:2]
    scale = rng.uniform(*augmentation.zoom_out_scale)
    new_y = max(1, round(size_y * scale))
    new_x = max(1, round(size_x * scale * rng.uniform(*augmentation.zoom_out_squeeze)))
    small = np.asarray(Image.fromarray(image).resize((new_x, new_y), Image.BILINEAR))
    top = int(rng.integers(size_y - new_y + 1))
    left = int(rng.integers(size_x - new_x + 1))
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    canvas = np.empty_like(image)
    canvas[...] = np.median(border, axis=0).astype(np.uint8)
    canvas[top : top + new_y, left : left + new_x] = small
    return canvas


def random_view(
    image: np.ndarray, rng: np.random.Generator, augmentation: Augmentation, zoom_out_probability: float
) -> np.ndarray:
    """One training view. The zoom-out draw happens at every probability (bccd views pass 0), so a view's random
    numbers depend only on its seed."""
    if rng.random() < zoom_out_probability:
        image = zoom_out(image, rng, augmentation)
    return colour_jitter(dihedral(image, int(rng.integers(8))), rng, augmentation)
