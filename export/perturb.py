"""The perturbations of the robustness table (issue #18), applied to a decoded image before localisation.

Each is a pure function uint8 HxWx3 RGB -> uint8 HxWx3 RGB of the same size (numpy + Pillow, no TensorFlow):
- scale, the canvas kept: x0.5, x0.75 shrink the image onto a canvas of its own size, centred, padded with its
  median border colour (logic/cell_crop.border_colour); x1.5, x2, x3 enlarge the central 1/k of the image back to
  full size;
- stain: RGB gains (1.05, 1.0, 0.72) (a yellow cast) and (0.8, 0.92, 1.08) (a blue cast); hue +-15 degrees;
  saturation x0.5; brightness x0.75 and x1.25;
- camera: a Gaussian blur of radius 1.5 px; JPEG quality 40.
PERTURBATIONS names them in the table's order.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from hematovision.logic.cell_crop import border_colour

RESAMPLE = Image.Resampling.BILINEAR
YELLOW_GAINS = (1.05, 1.0, 0.72)
BLUE_GAINS = (0.8, 0.92, 1.08)


def _image(array: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8))


def scale(image: np.ndarray, k: float) -> np.ndarray:
    """Magnification x k on a canvas of the same size: k < 1 shrinks the image onto its median border colour
    (centred), k > 1 enlarges its central 1/k back to full size."""
    height, width = image.shape[:2]
    if k == 1:
        return image.copy()
    if k < 1:
        new_w, new_h = max(1, round(width * k)), max(1, round(height * k))
        canvas = Image.new("RGB", (width, height), border_colour(image))
        canvas.paste(_image(image).resize((new_w, new_h), RESAMPLE), ((width - new_w) // 2, (height - new_h) // 2))
        return np.asarray(canvas)
    return np.asarray(_image(image).resize((width, height), RESAMPLE, box=enlarged_window(width, height, k)))


def enlarged_window(width: int, height: int, k: float) -> tuple[float, float, float, float]:
    """The central 1/k of a width x height image (x0, y0, x1, y1) that scale(image, k > 1) enlarges."""
    crop_w, crop_h = width / k, height / k
    x0, y0 = (width - crop_w) / 2, (height - crop_h) / 2
    return x0, y0, x0 + crop_w, y0 + crop_h


def stays_in_frame(width: int, height: int, box, k: float) -> bool:
    """Whether a box's centre lies in the window scale(image, k > 1) keeps (False with no box): elsewhere the
    enlargement cuts the box's cell out of the photo."""
    if box is None:
        return False
    x0, y0, x1, y1 = enlarged_window(width, height, k)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return x0 <= cx <= x1 and y0 <= cy <= y1


def gains(image: np.ndarray, rgb: tuple[float, float, float]) -> np.ndarray:
    """Per-channel gains (a white-balance or stain cast), rounded and clipped to uint8."""
    out = image.astype(np.float32) * np.asarray(rgb, np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def hue(image: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate the hue by `degrees` (HSV, Pillow's 0-255 hue scale)."""
    h, s, v = _image(image).convert("HSV").split()
    shift = round(degrees / 360 * 256)
    h = h.point(lambda value: (value + shift) % 256)
    return np.asarray(Image.merge("HSV", (h, s, v)).convert("RGB"))


def saturation(image: np.ndarray, factor: float) -> np.ndarray:
    return np.asarray(ImageEnhance.Color(_image(image)).enhance(factor))


def brightness(image: np.ndarray, factor: float) -> np.ndarray:
    return gains(image, (factor, factor, factor))


def blur(image: np.ndarray, radius: float) -> np.ndarray:
    return np.asarray(_image(image).filter(ImageFilter.GaussianBlur(radius)))


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    _image(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


ENLARGEMENTS = {"scale_x1.5": 1.5, "scale_x2": 2.0, "scale_x3": 3.0}  # the rows that keep only the central 1/k
PERTURBATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "scale_x0.5": lambda image: scale(image, 0.5),
    "scale_x0.75": lambda image: scale(image, 0.75),
    **{name: lambda image, k=k: scale(image, k) for name, k in ENLARGEMENTS.items()},
    "stain_yellow": lambda image: gains(image, YELLOW_GAINS),
    "stain_blue": lambda image: gains(image, BLUE_GAINS),
    "hue_+15": lambda image: hue(image, 15.0),
    "hue_-15": lambda image: hue(image, -15.0),
    "saturation_x0.5": lambda image: saturation(image, 0.5),
    "brightness_x0.75": lambda image: brightness(image, 0.75),
    "brightness_x1.25": lambda image: brightness(image, 1.25),
    "blur_1.5": lambda image: blur(image, 1.5),
    "jpeg_40": lambda image: jpeg(image, 40),
}
