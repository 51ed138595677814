"""Decoding within memory (issue #20): Pillow's allow-list, the per-image and per-request byte budgets, reduction
before mode conversion, and the band-wise conversions that must equal the whole-image ones exactly."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from hematovision.errors import ClientError
from hematovision.limits import MAX_DECODE_BYTES, MAX_PIXELS, MAX_REQUEST_DECODE_BYTES
from hematovision.logic import preprocessing
from hematovision.logic.preprocessing import DecodeBudget, decode_cost, decode_for_model, decode_image
from tests import fakes

REFUSED = ("ICO", "PPM", "TGA", "PCX", "EPS", "SGI", "QOI", "DDS")


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def picture(width=320, height=240, mode="RGB", seed=0) -> Image.Image:
    return Image.open(io.BytesIO(fakes.synthetic_cell(width, height, seed=seed, fmt="PNG"))).convert(mode)


def png_declaring(width, height, colour_type=6, bit_depth=8) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("fmt", REFUSED)
def test_refused_formats_never_reach_their_parsers(fmt, monkeypatch):
    data = encoded(picture(64, 48), fmt)
    Image.init()
    called = []
    for name, (factory, accept) in list(Image.OPEN.items()):
        if name not in preprocessing.SUPPORTED_FORMATS:

            def spy(*args, _name=name, _factory=factory, **kwargs):
                called.append(_name)
                return _factory(*args, **kwargs)

            monkeypatch.setitem(Image.OPEN, name, (spy, accept))
    with pytest.raises(ClientError) as caught:
        decode_for_model(data)
    assert (caught.value.status, caught.value.code) == (415, "unsupported_image")
    assert called == [], f"{fmt}: Pillow ran the parser of {called}"
    # the same message as before the allow-list: the format's name when its magic number gives it away
    expected = preprocessing.UNSUPPORTED_MESSAGE if fmt == "TGA" else f"Image format {fmt} is not supported."
    assert caught.value.message == expected


def test_first_request_does_not_import_every_plugin():
    assert set(preprocessing._open_formats()) == set(preprocessing.OPEN_FORMATS)


@pytest.mark.parametrize(
    "mode, colour_type, bit_depth, per_pixel",
    [("RGBA", 6, 8, 4), ("LA", 4, 8, 4), ("I;16", 0, 16, 2), ("RGB", 2, 8, 4), ("L", 0, 8, 1)],
)
def test_cost_is_bytes_not_pixels(mode, colour_type, bit_depth, per_pixel):
    """A reduced image costs its decoded pixels; an unreduced one (decode_image) also its RGB result and its copy."""
    data = png_declaring(8000, 6250, colour_type, bit_depth)
    assert decode_cost(data) == 50_000_000 * per_pixel
    assert decode_cost(data, size=None) == 50_000_000 * (max(per_pixel, 4) + 4)


def test_over_the_image_budget_is_413_before_decoding():
    side = int((MAX_DECODE_BYTES / 8) ** 0.5) + 1  # RGBA WebP: 8 bytes a pixel (libwebp's buffer + Pillow's)
    assert side * side <= MAX_PIXELS
    data = encoded(Image.new("RGBA", (side, side), (200, 100, 150, 128)), "WEBP", lossless=True, quality=0, method=0)
    with pytest.raises(ClientError) as caught:
        decode_for_model(data)
    assert (caught.value.status, caught.value.code) == (413, "image_too_large")
    assert "MiB" in caught.value.message and f"{side}x{side}" in caught.value.message


def test_the_request_budget_is_shared_by_its_images():
    data = encoded(Image.new("RGB", (4000, 3000), (200, 100, 150)), "PNG")  # 48 MB decoded
    cost = decode_cost(data)
    budget = DecodeBudget(total=int(cost * 2.5))
    decode_for_model(data, budget=budget)
    decode_for_model(data, budget=budget)
    with pytest.raises(ClientError) as caught:
        decode_for_model(data, budget=budget)
    assert (caught.value.status, caught.value.code) == (413, "image_too_large")
    assert "together" in caught.value.message
    assert DecodeBudget().total == MAX_REQUEST_DECODE_BYTES


def test_classifier_spends_one_budget_per_request(monkeypatch, fake_model_dir):
    from hematovision.logic.classifier import Classifier
    from hematovision.logic.inference import Model

    data = encoded(Image.new("RGB", (4000, 3000), (200, 100, 150)), "PNG")
    monkeypatch.setattr(preprocessing, "MAX_REQUEST_DECODE_BYTES", int(decode_cost(data) * 2.5))
    classifier = Classifier(Model(fake_model_dir))
    statuses = [i.error.status if i.error else 200 for i in classifier.classify([data] * 4).items]
    assert statuses == [200, 200, 413, 413]
    assert [i.error.status if i.error else 200 for i in classifier.classify([data]).items] == [200]  # a new request


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "PA", "1", "L", "CMYK", "I", "F", "I;16", "RGB"])
def test_banded_reduce_equals_the_whole_image_reduce(mode, monkeypatch):
    image = picture(997, 1203, "RGBA" if mode == "PA" else ("RGB" if mode == "P" else "L" if mode == "1" else "RGB"))
    if mode == "PA":
        image = image.convert("P").convert("PA")
    elif mode == "I;16":
        image = Image.fromarray((np.asarray(image.convert("L"), dtype=np.uint16) * 257).astype(np.uint16))
    elif mode in ("I", "F"):
        image = image.convert("L").convert(mode)
    else:
        image = image.convert(mode)
    whole = preprocessing.reduce_to(image, 224)  # one band: Image.reduce on the whole image
    monkeypatch.setattr(preprocessing, "BAND_PIXELS", 997 * 7)
    banded = preprocessing.reduce_to(image, 224)
    assert banded.size == whole.size == (-(-997 // 4), -(-1203 // 5))
    np.testing.assert_array_equal(np.asarray(banded), np.asarray(whole))


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "1", "L", "CMYK", "I", "I;16", "YCbCr"])
def test_banded_to_rgb_equals_the_whole_image_conversion(mode, monkeypatch):
    base = picture(331, 517, "RGBA" if mode in ("RGBA", "LA") else "RGB")
    if mode == "I;16":
        image = Image.fromarray((np.asarray(base.convert("L"), dtype=np.uint16) * 263).astype(np.uint16))
    elif mode == "I":
        image = Image.fromarray(np.asarray(base.convert("L"), dtype=np.int32) * 300 - 5000)
    else:
        image = base.convert(mode)
    whole = preprocessing._band_to_rgb(image)
    monkeypatch.setattr(preprocessing, "BAND_PIXELS", 331 * 10)
    np.testing.assert_array_equal(np.asarray(preprocessing.to_rgb(image)), np.asarray(whole))


def test_sixteen_bit_is_integer_and_matches_the_float_formula():
    values = np.arange(0, 65536, dtype=np.uint16).reshape(256, 256)
    got = np.asarray(preprocessing.sixteen_bit_to_l(Image.fromarray(values)))
    np.testing.assert_array_equal(got, np.clip(values.astype(np.float64) / 257.0, 0, 255).astype(np.uint8))
    signed = np.array([[-70000, -1, 0, 256, 257, 65535, 65536, 2**31 - 1]], dtype=np.int32)
    got = np.asarray(preprocessing.sixteen_bit_to_l(Image.fromarray(signed)))
    np.testing.assert_array_equal(got, np.clip(signed.astype(np.float64) / 257.0, 0, 255).astype(np.uint8))


def test_large_png_is_reduced_before_conversion_and_small_ones_are_not():
    large = encoded(picture(2000, 1500, "RGBA"), "PNG")
    decoded = decode_for_model(large)
    assert (decoded.width, decoded.height) == (2000, 1500) and decoded.image.mode == "RGB"
    assert decoded.image.size == (-(-2000 // 4), -(-1500 // 3))
    assert min(decoded.image.size) >= preprocessing.draft_min_side(224)
    small = encoded(picture(800, 600, "RGBA"), "PNG")
    assert decode_for_model(small).image.size == (800, 600)
    np.testing.assert_array_equal(np.asarray(decode_for_model(small).image), np.asarray(decode_image(small)))


def test_exif_orientation_after_reduction():
    stored = picture(2400, 1800).transpose(Image.Transpose.ROTATE_90)  # 1800x2400 stored, orientation 6 undoes it
    exif = Image.Exif()
    exif[0x0112] = 6
    decoded = decode_for_model(encoded(stored, "PNG", exif=exif.tobytes()))
    assert (decoded.width, decoded.height) == (2400, 1800)
    assert decoded.image.size[0] > decoded.image.size[1]
