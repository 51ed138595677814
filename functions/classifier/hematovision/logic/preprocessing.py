"""The one preprocessing implementation, shared by serving and by training-time evaluation.

decode (Pillow) -> apply EXIF orientation -> RGB -> resize to the model's input (size x size, bilinear) -> uint8
HWC. The serving side takes `size` from the model card (inference.Model.input_size); DEFAULT_INPUT_SIZE is the
input of every model so far, and the default of these functions for callers without a card (export/).
Scaling to MobileNetV2's [-1, 1] happens inside the ONNX graph, not here.

A large JPEG (a 12 MP phone photo) is decoded at a reduced DCT scale that keeps both sides at least twice the
model input (`Image.draft`): 153 ms -> 25 ms to decode, the same 224x224 input up to rounding. Other formats
cannot be decoded at a reduced scale: a large one is decoded in full, then reduced by an integer box filter
(`Image.reduce`) to the same >= twice-the-input size *before* any mode conversion, so transparency, 16-bit and
CMYK are converted on the small image. Images under 4x the input on their short side (every training and test
image) are decoded in full and never reduced.

Memory (issue #20): Pillow parses only the supported formats (`Image.open(formats=...)`), and every image is
costed before its pixels are decoded: the bytes its decoded pixels take (Pillow's bytes per pixel of the
decoded mode x pixels, doubled for WebP, whose decoder hands over a copy) plus the full-size conversion it needs
before it can be reduced (palette, 1-bit, 16-bit). One image may cost at most limits.MAX_DECODE_BYTES, and the
images of one request at most limits.MAX_REQUEST_DECODE_BYTES together (`DecodeBudget`); over either, 413
`image_too_large`. 16-bit samples are converted with integer arithmetic in bands of rows, never as float64.
"""

from __future__ import annotations

import contextlib
import functools
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from hematovision.errors import ClientError
from hematovision.limits import MAX_DECODE_BYTES, MAX_PIXELS, MAX_REQUEST_DECODE_BYTES, MIN_SIDE

DEFAULT_INPUT_SIZE = 224
RESAMPLE = Image.Resampling.BILINEAR
ORIENTATION_TAG = 0x0112
TRANSPOSING_ORIENTATIONS = frozenset({5, 6, 7, 8})  # EXIF orientations that swap width and height
# what ImageOps.exif_transpose applies for each EXIF orientation
ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
SUPPORTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF", "MPO"})
# The only plugins Image.open may run (its `formats` allow-list): ICO, PPM, TGA, PCX, EPS, ... bodies never reach
# their parsers. (MPO has no opener of its own: the JPEG plugin returns an MPO image for a multi-picture JPEG.)
OPEN_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP")
# File suffixes taken when scanning folders (CLI classify/evaluate): one per format in SUPPORTED_FORMATS, so a
# file is picked up exactly when decode_image could read it. .gif included: GIF decodes like any upload, and a
# folder scan that skipped it would silently drop images the API accepts. (MPO files are saved as .jpg.)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
# Refused formats named by their magic number alone; CUR's (00 00 02 00) also starts every uncompressed true-colour
# TGA, which has no magic number, so neither is named.
UNNAMED_MAGIC = frozenset({"CUR"})
UNSUPPORTED_MESSAGE = "The body is not a supported image (JPEG, PNG, WebP, BMP, TIFF, GIF)."
# Bytes a pixel takes in a loaded Pillow image (8-bit single-band and 16-bit modes; every other mode is 4).
STORED_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
BAND_PIXELS = 1 << 22  # rows converted at a time from 16/32-bit samples: ~4 M pixels a band


def draft_min_side(size: int) -> int:
    """Smallest side a large image is decoded or reduced to for a model input of `size`."""
    return 2 * size


@dataclass(frozen=True)
class DecodedImage:
    image: Image.Image  # upright RGB; a large image may come at a reduced scale (see the module docstring)
    width: int  # upright size of the uploaded image
    height: int


class DecodeBudget:
    """The bytes the images of one request may take to decode, together (limits.MAX_REQUEST_DECODE_BYTES)."""

    def __init__(self, total: int | None = None):
        self.total = MAX_REQUEST_DECODE_BYTES if total is None else total
        self.left = self.total

    def spend(self, cost: int) -> None:
        if cost > self.left:
            raise ClientError(
                "image_too_large",
                f"Decoding this image takes {_mib(cost)} MiB; the images of one request may take at most "
                f"{_mib(self.total)} MiB together, and {_mib(self.left)} MiB are left.",
                413,
            )
        self.left -= cost


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS, budget: DecodeBudget | None = None) -> Image.Image:
    """Decode bytes into an upright RGB Pillow image at full size, or raise ClientError (400/413/415/422)."""
    return _decode(data, max_pixels, None, budget).image


def decode_for_model(
    data: bytes, max_pixels: int = MAX_PIXELS, size: int = DEFAULT_INPUT_SIZE, budget: DecodeBudget | None = None
) -> DecodedImage:
    """decode_image, but a large image comes at a reduced scale with both sides >= draft_min_side(size)."""
    return _decode(data, max_pixels, draft_min_side(size), budget)


def decode_cost(data: bytes, size: int | None = DEFAULT_INPUT_SIZE) -> int:
    """The bytes decoding `data` takes (decode_for_model for a model input of `size`; None: decode_image)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image = Image.open(io.BytesIO(data), formats=_open_formats())
        if size is not None and image.format in ("JPEG", "MPO"):
            image.draft("RGB", (draft_min_side(size), draft_min_side(size)))
        return _cost(image, None if size is None else draft_min_side(size))


@functools.cache
def _open_formats() -> tuple[str, ...]:
    """Import the allowed plugins only: Image.open(formats=...) would otherwise import all ~45 of them (Image.init)
    on the first request."""
    from PIL import BmpImagePlugin, GifImagePlugin, JpegImagePlugin, PngImagePlugin, TiffImagePlugin  # noqa: F401

    with contextlib.suppress(ImportError):  # a Pillow built without WebP still serves the rest
        from PIL import WebPImagePlugin  # noqa: F401
    return tuple(name for name in OPEN_FORMATS if name in Image.OPEN)


def _mib(count: int) -> int:
    return round(count / (1 << 20))


def _cost(image: Image.Image, min_side: int | None) -> int:
    """Peak bytes of decoding `image` (after any draft): its decoded pixels, twice for WebP (its decoder hands over a
    copy). An image that is not reduced (a JPEG after its draft, an image under 2 x min_side on both sides, any
    image for decode_image) also counts its RGB result and the upright copy of it. Reducing and converting work a
    band of rows at a time (BAND_PIXELS), so they add a few MB whatever the size."""
    width, height = image.size
    per_pixel = STORED_BYTES.get(image.mode, 4) * (2 if image.format == "WEBP" else 1)
    reduced = (
        min_side is not None and image.format not in ("JPEG", "MPO") and reduce_factors(image.size, min_side) != (1, 1)
    )
    if not reduced:
        per_pixel = max(per_pixel, 4) + 4
    return width * height * per_pixel


def _unsupported(data: bytes) -> ClientError:
    """415 for a body no allowed plugin opens; named by its magic number when another (never run) plugin has one."""
    prefix = data[:16]
    Image.init()
    for name in Image.ID:
        if name in SUPPORTED_FORMATS or name in UNNAMED_MAGIC:
            continue
        accept = Image.OPEN[name][1]
        try:
            known = accept is not None and bool(accept(prefix))
        except Exception:  # an accept() that cannot judge this prefix: not this format
            known = False
        if known:
            return ClientError("unsupported_image", f"Image format {name} is not supported.", 415)
    return ClientError("unsupported_image", UNSUPPORTED_MESSAGE, 415)


def _decode(data: bytes, max_pixels: int, min_side: int | None, budget: DecodeBudget | None) -> DecodedImage:
    if not data:
        raise ClientError("empty_image", "The image is empty.", 400)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=_open_formats())
            if image.format not in SUPPORTED_FORMATS:
                raise ClientError("unsupported_image", f"Image format {image.format} is not supported.", 415)
            width, height = image.size
            if width * height > max_pixels:
                raise ClientError(
                    "image_too_large",
                    f"The image has {width}x{height} pixels; at most {max_pixels} pixels are accepted.",
                    413,
                )
            if min_side and image.format in ("JPEG", "MPO"):
                image.draft("RGB", (min_side, min_side))
            cost = _cost(image, min_side)
            if cost > MAX_DECODE_BYTES:
                raise ClientError(
                    "image_too_large",
                    f"The {width}x{height} {image.mode} image takes {_mib(cost)} MiB to decode; at most "
                    f"{_mib(MAX_DECODE_BYTES)} MiB are accepted per image.",
                    413,
                )
            if budget is not None:
                budget.spend(cost)
            image.load()
    except ClientError:
        raise
    except UnidentifiedImageError:
        raise _unsupported(data) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ClientError("image_too_large", "The image declares too many pixels.", 413) from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ClientError("corrupt_image", f"The image could not be decoded: {type(error).__name__}.", 422) from None
    try:
        orientation = image.getexif().get(ORIENTATION_TAG)
    except Exception:  # a broken EXIF block must not reject an otherwise usable image
        orientation = None
    if orientation in TRANSPOSING_ORIENTATIONS:
        width, height = height, width
    if min(width, height) < MIN_SIDE:
        raise ClientError(
            "image_too_small", f"The image is {width}x{height}; each side must be at least {MIN_SIDE} pixels.", 422
        )
    if min_side and image.format not in ("JPEG", "MPO"):  # a JPEG was reduced by its draft
        image = reduce_to(image, min_side)
    rgb = to_rgb(image)
    del image  # the decoded pixels go before the upright copy is made
    method = ORIENTATION_TRANSPOSE.get(orientation) if isinstance(orientation, int) else None
    if method is not None:
        rgb = rgb.transpose(method)
    return DecodedImage(rgb, width, height)


def reduce_factors(size: tuple[int, int], min_side: int) -> tuple[int, int]:
    """Integer box factors per axis that keep each side >= min_side (1: that side is left as it is)."""
    return max(1, size[0] // min_side), max(1, size[1] // min_side)


def reduce_to(image: Image.Image, min_side: int) -> Image.Image:
    """Box-reduce each side by the largest integer factor that keeps it >= min_side, before any RGB conversion.

    A band of rows at a time: modes Image.reduce cannot average (palette, 1-bit, 16-bit) are converted band by band
    to the mode to_rgb would convert them to anyway, and RGBA/LA are premultiplied band by band (Image.reduce
    premultiplies a whole-image copy). An image under 2 x min_side on both sides is returned as it is.
    """
    factors = reduce_factors(image.size, min_side)
    if factors == (1, 1):
        return image
    return _banded(image, _reducible, factors)


def _reducible(band: Image.Image) -> Image.Image:
    if band.mode in ("P", "PA"):
        return band.convert("RGBA" if band.mode == "PA" or "transparency" in band.info else "RGB")
    if band.mode == "1":
        return band.convert("L")
    if band.mode in SIXTEEN_BIT_MODES - {"I"}:  # Image.reduce averages 32-bit "I" itself
        return sixteen_bit_to_l(band)
    return band


def _banded(
    image: Image.Image, convert: Callable[[Image.Image], Image.Image], factors: tuple[int, int] = (1, 1)
) -> Image.Image:
    """convert(), then reduce by `factors`, a band of ~BAND_PIXELS at a time; the bands pasted into one image.

    Every conversion used here is per pixel and every band but the last is a multiple of the vertical factor, so
    the result equals converting (and reducing) the whole image at once."""
    width, height = image.size
    rows = max(1, BAND_PIXELS // (width * factors[1])) * factors[1]

    def step(band: Image.Image) -> Image.Image:
        band = convert(band)
        return band if factors == (1, 1) else band.reduce(factors)

    if rows >= height:
        return step(image)
    out: Image.Image | None = None
    for top in range(0, height, rows):
        part = step(image.crop((0, top, width, min(height, top + rows))))
        if out is None:
            out = Image.new(part.mode, (part.width, -(-height // factors[1])))
        out.paste(part, (0, top // factors[1]))
    return out


def sixteen_bit_to_l(image: Image.Image) -> Image.Image:
    """16-bit (or 32-bit integer) greyscale -> 8-bit L on the full 0..65535 scale (x // 257, clipped), rather
    than Pillow's clipping to 255. Integer arithmetic, never a float64 copy; to_rgb calls it a band at a time."""
    band = np.asarray(image)
    if band.dtype.kind == "i":
        band = np.clip(band, 0, 65535)
    return Image.fromarray((band // 257).astype(np.uint8))


def _band_to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in SIXTEEN_BIT_MODES:
        image = sixteen_bit_to_l(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB with any transparency composited on white (a transparent PNG must not turn black); a band of rows at a
    time, so a large image never has more than a few MB of intermediate copies."""
    if image.mode == "RGB":
        return image
    return _banded(image, _band_to_rgb)


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
