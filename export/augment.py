"""Pixel augmentations for training views, on the uint8 model input (numpy + Pillow).

White-blood cells have no orientation, so any of the 8 flips/quarter-turns is a legitimate view; a mild
colour jitter stands in for stain and scanner differences between labs.

pbc frames are square and centred on a large cell, while in a bccd frame (320x240, squeezed to 224x224
horizontally by 0.7) the cell is about 0.6x as big, off-centre and squeezed. `zoom_out` makes pbc views
look like that: shrink (anisotropically), then place at a random offset on the frame's background colour
(mirrored borders would copy the cell), so the bccd-like geometry is learned from pbc's many cells and not
only from bccd's few (16 monocytes).

From model 2.0, `stain_camera` adds the stain and camera shifts of other labs (HED stain jitter, white-balance
casts, hue, desaturation, blur, JPEG), each off at strength 0, so model 1.2.0's views are unchanged.

The strengths and probabilities come from the recipe (export/recipe.py: Augmentation).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

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


# Optical densities of haematoxylin, eosin and DAB per RGB channel (Ruifrok & Johnston 2001, as in skimage's
# rgb_from_hed): the usual stain space for stain jitter (Tellez et al. 2018), an approximation for Romanowsky stains.
RGB_FROM_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
HED_FROM_RGB = np.linalg.inv(RGB_FROM_HED)


def hed_jitter(image: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Each stain's density scaled by 1 + U(-s, s) and shifted by U(-s, s) / 4 (optical density units)."""
    od = -np.log((image.astype(np.float64) + 1.0) / 256.0)
    stains = od.reshape(-1, 3) @ HED_FROM_RGB
    stains = stains * (1.0 + rng.uniform(-strength, strength, 3)) + rng.uniform(-strength, strength, 3) / 4
    rgb = 256.0 * np.exp(-(stains @ RGB_FROM_HED)) - 1.0
    return np.clip(np.rint(rgb.reshape(image.shape)), 0, 255).astype(np.uint8)


def hue_rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    h, s, v = Image.fromarray(image).convert("HSV").split()
    shift = round(degrees / 360 * 256)
    h = h.point(lambda value: (value + shift) % 256)
    return np.asarray(Image.merge("HSV", (h, s, v)).convert("RGB"))


def stain_camera(image: np.ndarray, rng: np.random.Generator, augmentation: Augmentation) -> np.ndarray:
    """Stain and camera shifts, in order HED jitter, colour cast, hue, desaturation, blur, JPEG, greyscale; an
    augmentation whose strength is 0 is skipped and draws no random number.

    A grey view keeps the nucleus' shape and the granules' texture and drops their colour: a stain that turns a
    neutrophil's granules orange cannot make it an eosinophil there, so the model has to learn those cues too."""
    a = augmentation
    if a.hed_jitter:
        image = hed_jitter(image, rng, a.hed_jitter)
    if a.colour_cast:
        gains = 1.0 + rng.uniform(-a.colour_cast, a.colour_cast, 3)
        image = np.clip(np.rint(image.astype(np.float32) * gains), 0, 255).astype(np.uint8)
    if a.hue_shift:
        image = hue_rotate(image, rng.uniform(-a.hue_shift, a.hue_shift))
    if a.desaturation:
        x = image.astype(np.float32)
        grey = x.mean(axis=2, keepdims=True)
        image = np.clip(np.rint(grey + (x - grey) * (1.0 - rng.uniform(0, a.desaturation))), 0, 255).astype(np.uint8)
    if a.blur_radius and rng.random() < 0.5:
        radius = rng.uniform(0, a.blur_radius)
        image = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius)))
    if a.jpeg_quality and rng.random() < 0.5:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=int(rng.integers(a.jpeg_quality, 96)))
        image = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    if a.greyscale and rng.random() < a.greyscale:
        image = np.asarray(Image.fromarray(image).convert("L").convert("RGB"))
    return image


def random_view(
    image: np.ndarray, rng: np.random.Generator, augmentation: Augmentation, zoom_out_probability: float
) -> np.ndarray:
    """One training view. The zoom-out draw happens at every probability (bccd views pass 0), so a view's random
    numbers depend only on its seed. Stain and camera augmentations come last and only when the recipe has them."""
    if rng.random() < zoom_out_probability:
        image = zoom_out(image, rng, augmentation)
    view = colour_jitter(dihedral(image, int(rng.integers(8))), rng, augmentation)
    return stain_camera(view, rng, augmentation) if augmentation.stain_camera_on() else view


def edge_cut(image: np.ndarray, box, side: float, rng: np.random.Generator, side_probability: float):
    """The photo cut short near a cell: each side, with probability side_probability, moved in to a uniform point
    between the cell's box and the edge of the square crop of `side` pixels centred on the box (where the photo
    already ends inside the crop, between the box and that end). Returns the cut photo and the box in its pixels.

    A cell near the edge of a photo (an enlarged one, a small one) gets a crop padded with the border colour; the
    training crops of pbc, centred in large photos, rarely are."""
    height, width = image.shape[:2]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x0, y0, x1, y1 = 0, 0, width, height

    def between(a: float, b: float) -> float:
        return float(rng.uniform(min(a, b), max(a, b)))

    if rng.random() < side_probability:
        x0 = int(between(max(0.0, cx - side / 2), max(0.0, box[0])))
    if rng.random() < side_probability:
        y0 = int(between(max(0.0, cy - side / 2), max(0.0, box[1])))
    if rng.random() < side_probability:
        x1 = int(np.ceil(between(min(box[2], width), min(cx + side / 2, width))))
    if rng.random() < side_probability:
        y1 = int(np.ceil(between(min(box[3], height), min(cy + side / 2, height))))
    cut = image[y0:y1, x0:x1]
    return cut, (box[0] - x0, box[1] - y0, box[2] - x0, box[3] - y0)
