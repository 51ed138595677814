"""Class activation map -> small PNG heatmap overlaid on the (resized) input image."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from hematovision.limits import HEATMAP_SIZE

# A perceptually ordered ramp (dark blue -> cyan -> yellow -> red), interpolated linearly.
_RAMP = np.array(
    [[0, 0, 96], [0, 64, 255], [0, 200, 255], [120, 255, 120], [255, 220, 0], [255, 64, 0], [160, 0, 0]],
    dtype=np.float64,
)


def normalise_cam(cam: np.ndarray) -> np.ndarray:
    """One class's raw map [h, w] -> [0, 1] (negative evidence clipped; a flat map gives zeros)."""
    cam = np.nan_to_num(np.asarray(cam, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    cam = np.maximum(cam, 0.0)
    peak = cam.max(initial=0.0)
    return cam / peak if peak > 0 else np.zeros_like(cam)


def colourise(values: np.ndarray) -> np.ndarray:
    """[H, W] in [0, 1] -> uint8 [H, W, 3]."""
    positions = np.clip(values, 0.0, 1.0) * (len(_RAMP) - 1)
    low = np.floor(positions).astype(int)
    high = np.minimum(low + 1, len(_RAMP) - 1)
    fraction = (positions - low)[..., None]
    return (_RAMP[low] * (1 - fraction) + _RAMP[high] * fraction).round().astype(np.uint8)


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.45, size: int = HEATMAP_SIZE) -> Image.Image:
    """image: uint8 [H, W, 3] model input; cam: one class's map [h, w]. Returns an RGB image size x size."""
    heat = Image.fromarray((normalise_cam(cam) * 255).round().astype(np.uint8), mode="L")
    heat = heat.resize((size, size), Image.Resampling.BILINEAR)
    coloured = colourise(np.asarray(heat, dtype=np.float64) / 255.0).astype(np.float64)
    base = np.asarray(
        Image.fromarray(np.asarray(image, dtype=np.uint8)).resize((size, size), Image.Resampling.BILINEAR),
        dtype=np.float64,
    )
    blended = base * (1 - alpha) + coloured * alpha
    return Image.fromarray(np.clip(blended.round(), 0, 255).astype(np.uint8), mode="RGB")


def to_png_base64(image: Image.Image, colours: int = 64) -> str:
    """A palette PNG (small: ~10-25 KB at 224x224), base64 text."""
    buffer = io.BytesIO()
    image.quantize(colors=colours, method=Image.Quantize.MEDIANCUT).save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def heatmap_png_base64(image: np.ndarray, cam_all_classes: np.ndarray, class_index: int) -> str:
    """cam_all_classes: [h, w, C] for one image; the map of `class_index` is drawn."""
    return to_png_base64(overlay(image, np.asarray(cam_all_classes)[..., class_index]))
