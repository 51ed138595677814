"""Synthetic non-blood images for outlier exposure (Hendrycks et al., ICLR 2019): in training, views of them are
trained towards the uniform distribution over the classes, so that inputs unlike blood come back unconfident.

Families (each image fixed by its seed): random filled shapes, stripes and checkerboards, rendered text, each
sometimes blurred. The evaluation's non-blood set (export/evaluate.non_blood_images: scikit-image photos, uniform
noise, bicubic blobs, solid colours, gradients) holds three images of these families - scikit-image's text, page
(text) and checkerboard (stripes) - and 45 of none (EVALUATION_IMAGES_OF_TRAINED_FAMILIES); the rest stays held out.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = (400, 300)  # width, height: a small photo, located and cropped as an upload would be
FAMILIES = ("shapes", "stripes", "text")
# the evaluation's non-blood images of a trained family: their flagged share is not a held-out figure
EVALUATION_IMAGES_OF_TRAINED_FAMILIES = ("skimage:text", "skimage:page", "skimage:checkerboard")


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def _shapes(rng: np.random.Generator) -> Image.Image:
    image = Image.new("RGB", SIZE, _colour(rng))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 40))):
        x0, y0 = int(rng.integers(0, SIZE[0])), int(rng.integers(0, SIZE[1]))
        w, h = (int(v) for v in rng.integers(8, 140, 2))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0, y0, x0 + w, y0 + h), fill=_colour(rng))
    return image


def _stripes(rng: np.random.Generator) -> Image.Image:
    x, y = np.meshgrid(np.arange(SIZE[0]), np.arange(SIZE[1]))
    angle, period = rng.uniform(0, np.pi), rng.uniform(4, 80)
    u = x * np.cos(angle) + y * np.sin(angle)
    if rng.random() < 0.5:
        on = (u // period) % 2 == 0
    else:  # a checkerboard
        v = -x * np.sin(angle) + y * np.cos(angle)
        on = ((u // period) + (v // period)) % 2 == 0
    pixels = np.where(on[:, :, None], np.array(_colour(rng)), np.array(_colour(rng)))
    return Image.fromarray(pixels.astype(np.uint8))


def _text(rng: np.random.Generator) -> Image.Image:
    image = Image.new("RGB", SIZE, _colour(rng))
    draw = ImageDraw.Draw(image)
    ink = _colour(rng)
    for row in range(int(rng.integers(4, 16))):
        line = "".join(chr(int(c)) for c in rng.integers(33, 127, int(rng.integers(10, 70))))
        draw.text((int(rng.integers(0, 40)), 4 + 19 * row), line, fill=ink)
    return image


MAKERS = {"shapes": _shapes, "stripes": _stripes, "text": _text}


def outlier_image(seed: int) -> np.ndarray:
    """One synthetic non-blood image (uint8 HxWx3), fixed by its seed."""
    rng = np.random.default_rng(seed)
    image = MAKERS[FAMILIES[int(rng.integers(len(FAMILIES)))]](rng)
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(1, 6))))
    return np.asarray(image)
