"""Pixel augmentations for training views, on the uint8 [224, 224, 3] model input (numpy only).

White-blood cells have no orientation, so any of the 8 flips/quarter-turns is a legitimate view; a mild
colour jitter stands in for stain and scanner differences between labs.
"""

from __future__ import annotations

import numpy as np


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


def random_view(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return colour_jitter(dihedral(image, int(rng.integers(8))), rng)
