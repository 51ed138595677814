"""The one preprocessing implementation, shared by serving and by training-time evaluation.

decode (Pillow) -> apply EXIF orientation -> RGB -> resize to the model's input (size x size, bilinear) -> uint8
HWC. The serving side takes `size` from the model card (inference.Model.input_size); DEFAULT_INPUT_SIZE is the
input of every model so far, and the default of these functions for callers without a card (export/).
Scaling to MobileNetV2's [-1, 1] happens inside the ONNX graph, not here.

A large JPEG (a 12 MP phone photo) is decoded at a reduced DCT scale that keeps both sides at least twice the
model input (`Image.draft`): 153 ms -> 25 ms to decode, the same 224x224 input up to rounding. Images under
4x the input on their short side (every training and test image) are decoded in full.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from hematovision.errors import ClientError
from hematovision.limits import MAX_PIXELS, MIN_SIDE

DEFAULT_INPUT_SIZE = 224
RESAMPLE = Image.Resampling.BILINEAR
ORIENTATION_TAG = 0x0112
TRANSPOSING_ORIENTATIONS = frozenset({5, 6, 7, 8})  # EXIF orientations that swap width and height
SUPPORTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF", "MPO"})
# File suffixes taken when scanning folders (CLI classify/evaluate): one per format in SUPPORTED_FORMATS, so a
# file is picked up exactly when decode_image could read it. .gif included: GIF decodes like any upload, and a
# folder scan that skipped it would silently drop images the API accepts. (MPO files are saved as .jpg.)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})


def draft_min_side(size: int) -> int:
    """Smallest side a large JPEG is decoded at (reduced DCT scale) for a model input of `size`."""
    return 2 * size


@dataclass(frozen=True)
class DecodedImage:
    image: Image.Image  # upright RGB; a large JPEG may come at a reduced scale (see the module docstring)
    width: int  # upright size of the uploaded image
    height: int


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode bytes into an upright RGB Pillow image at full size, or raise ClientError (400/413/415/422)."""
    return _decode(data, max_pixels, draft_min_side=None).image


def decode_for_model(data: bytes, max_pixels: int = MAX_PIXELS, size: int = DEFAULT_INPUT_SIZE) -> DecodedImage:
    """decode_image, but a large JPEG is decoded at a reduced scale with both sides >= draft_min_side(size)."""
    return _decode(data, max_pixels, draft_min_side=draft_min_side(size))


def _decode(data: bytes, max_pixels: int, draft_min_side: int | None) -> DecodedImage:
    if not data:
        raise ClientError("empty_image", "The image is empty.", 400)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in SUPPORTED_FORMATS:
                raise ClientError("unsupported_image", f"Image format {image.format} is not supported.", 415)
            width, height = image.size
            if width * height > max_pixels:
                raise ClientError(
                    "image_too_large",
                    f"The image has {width}x{height} pixels; at most {max_pixels} pixels are accepted.",
                    413,
                )
            if draft_min_side and image.format in ("JPEG", "MPO"):
                image.draft("RGB", (draft_min_side, draft_min_side))
            image.load()
    except ClientError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        if isinstance(error, UnidentifiedImageError):
            raise ClientError(
                "unsupported_image", "The body is not a supported image (JPEG, PNG, WebP, BMP, TIFF).", 415
            ) from None
        raise ClientError("image_too_large", "The image declares too many pixels.", 413) from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ClientError("corrupt_image", f"The image could not be decoded: {type(error).__name__}.", 422) from None
    try:
        swaps_sides = image.getexif().get(ORIENTATION_TAG) in TRANSPOSING_ORIENTATIONS
        image = ImageOps.exif_transpose(image)
        if swaps_sides:
            width, height = height, width
    except Exception:  # a broken EXIF block must not reject an otherwise usable image
        pass
    if min(width, height) < MIN_SIDE:
        raise ClientError(
            "image_too_small", f"The image is {width}x{height}; each side must be at least {MIN_SIDE} pixels.", 422
        )
    return DecodedImage(to_rgb(image), width, height)


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB with any transparency composited on white (a transparent PNG must not turn black)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: keep the full 0..65535 scale rather than Pillow's clipping to 255.
        array = np.asarray(image, dtype=np.float64) / 257.0
        image = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), mode="L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def to_model_input(image: Image.Image, size: int = DEFAULT_INPUT_SIZE) -> np.ndarray:
    """Resize an RGB image to the model's uint8 [size, size, 3] input."""
    resized = image.resize((size, size), RESAMPLE)
    return np.asarray(resized, dtype=np.uint8)


def preprocess(data: bytes, max_pixels: int = MAX_PIXELS, size: int = DEFAULT_INPUT_SIZE) -> np.ndarray:
    """Bytes of an image file -> uint8 [size, size, 3] RGB model input."""
    return to_model_input(decode_for_model(data, max_pixels, size).image, size)


def preprocess_file(path, size: int = DEFAULT_INPUT_SIZE) -> np.ndarray:
    with open(path, "rb") as handle:
        return preprocess(handle.read(), size=size)
