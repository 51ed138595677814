"""The malformed-input corpus: generated, deterministic cases with the status each must get.

Nothing here is a committed binary: every body is built from a seed. A case carries the status the
Lambda handler must answer when invoked directly with the API Gateway event (`status`), and the one a
client gets through `hematovision serve` (`server_status`, the same unless API Gateway/Lambda answer
first, e.g. for bodies over the 6 MB invocation payload). An expected status is an int, or a small
set where the honest answer depends on which byte a cut lands on (documented at the case).
"""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from tests import fakes

CLASSIFY = "/v1/classify"
BATCH = "/v1/classify/batch"
LAMBDA_LIMIT = 6 * 1024 * 1024  # bytes of the whole invocation event
FUNCTION_LIMIT = 6 * 1024 * 1024  # the function's own cap on a body (config.MAX_IMAGE_BYTES)


@dataclass
class Case:
    id: str
    path: str
    content_type: str | None
    body: bytes
    status: int | frozenset
    code: str | None = None  # expected error.code (None: not checked, or a 200)
    server_status: int | frozenset | None = None
    query: str = ""
    check: Callable[[dict], None] | None = field(default=None, repr=False)

    def expected(self, through_server: bool) -> frozenset:
        wanted = self.server_status if through_server and self.server_status is not None else self.status
        return frozenset(wanted) if isinstance(wanted, (set, frozenset)) else frozenset({wanted})

    @property
    def headers(self) -> dict[str, str]:
        return {} if self.content_type is None else {"Content-Type": self.content_type}

    @property
    def target(self) -> str:
        return self.path + (f"?{self.query}" if self.query else "")


# ------------------------------------------------------------------ image builders
def picture(width=320, height=240, seed=0, mode="RGB") -> Image.Image:
    return Image.open(io.BytesIO(fakes.synthetic_cell(width, height, seed=seed, fmt="PNG"))).convert(mode)


def save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_declaring(width: int, height: int, colour_type: int = 2, idat: bytes | None = None) -> bytes:
    """A tiny PNG whose header declares width x height (a decompression bomb when large)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64) if idat is None else idat
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def gif_declaring(width: int, height: int) -> bytes:
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", width, height, 0, 0, 0)
        + b","
        + struct.pack("<HHHHB", 0, 0, width, height, 0)
        + b"\x02\x02\x44\x01\x00;"
    )


def bmp_declaring(width: int, height: int) -> bytes:
    header = struct.pack("<2sIHHI", b"BM", 54 + 16, 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 16, 2835, 2835, 0, 0)
    return header + info + b"\x00" * 16


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real small JPEG whose SOF marker is patched to declare width x height."""
    data = bytearray(save(picture(32, 32), "JPEG", quality=80))
    index = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, index + 5, height, width)
    return bytes(data)


def exif_rotated(orientation: int) -> tuple[bytes, bytes]:
    """(upright PNG, the same picture stored as a phone would: pixels turned, EXIF orientation to undo it).

    Lossless PNG (eXIf chunk) so the two must get identical probabilities once transposed.
    """
    upright = picture(320, 240, seed=11)
    # the inverse of what exif_transpose applies for each orientation
    stored = {
        1: upright,
        2: upright.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        3: upright.transpose(Image.Transpose.ROTATE_180),
        4: upright.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
        5: upright.transpose(Image.Transpose.TRANSPOSE),
        6: upright.transpose(Image.Transpose.ROTATE_90),
        7: upright.transpose(Image.Transpose.TRANSVERSE),
        8: upright.transpose(Image.Transpose.ROTATE_270),
    }[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    return save(upright, "PNG"), save(stored, "PNG", exif=exif.tobytes())


def animated(fmt: str, frames: int = 3) -> bytes:
    images = [picture(64, 64, seed=s) for s in range(frames)]
    options = {"save_all": True, "append_images": images[1:], "duration": 100, "loop": 0}
    if fmt == "WEBP":
        options["lossless"] = False
    return save(images[0], fmt, **options)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def multipart(fields, boundary="hvCorpusBoundary") -> tuple[str, bytes]:
    return fakes.encode_multipart(fields, boundary=boundary)


# ------------------------------------------------------------------ the corpus
def build() -> list[Case]:
    rng = np.random.default_rng(20261126)
    jpeg = fakes.synthetic_cell(320, 240, seed=1)
    cases: list[Case] = []
    add = cases.append

    # -- empty bodies, every upload form, both routes
    for content_type in (
        "image/jpeg",
        "image/png",
        "application/json",
        "multipart/form-data; boundary=x",
        None,
        "text/plain",
    ):
        add(Case(f"empty-single-{content_type}", CLASSIFY, content_type, b"", 400, "missing_body"))
        add(Case(f"empty-batch-{content_type}", BATCH, content_type, b"", 400, "missing_body"))
    add(Case("whitespace-json", CLASSIFY, "application/json", b"  \r\n\t ", 400, "missing_body"))

    # -- random bytes (first byte 0x00: no supported format starts so)
    for i in range(40):
        size = int(rng.integers(1, 20_000)) if i % 4 else int(rng.integers(1, 64))
        data = b"\x00" + rng.bytes(size)
        content_type = ["image/jpeg", "image/png", "application/octet-stream", None, "image/webp"][i % 5]
        # octet-stream / no Content-Type are not binary media types: the body reaches Lambda as text
        code = "unsupported_image" if content_type and content_type.startswith("image/") else "unsupported_media_type"
        add(Case(f"random-{i}-{content_type}", CLASSIFY, content_type, data, 415, code))

    # -- text, with an image content type (415 unsupported_image) or a text one (415 unsupported_media_type)
    texts = [
        b"hello, I am a text file\n",
        b"<html><body>not an image</body></html>",
        b"GIF",
        b"\x89PN",
        b"%PDF-1.7\n%\xe2\xe3",
        "a photo of a cell \u2603\n".encode(),
        b"BM",
        b"RIFF\x00\x00\x00\x00WEBP",
        b"II*\x00",
        b"\xff\xd8",
    ]
    for i, text in enumerate(texts):
        for content_type in ("image/jpeg", "image/png", "image/tiff"):
            # a few-byte magic number alone identifies the format but cannot be decoded: 415 or 422
            status = 415 if i in (0, 1, 4, 5) else frozenset({415, 422})
            add(
                Case(
                    f"text-{i}-as-{content_type}",
                    CLASSIFY,
                    content_type,
                    text,
                    status,
                    "unsupported_image" if status == 415 else None,
                )
            )
    for content_type in (
        "text/plain",
        "text/html",
        "application/xml",
        "application/pdf",
        "audio/mpeg",
        "video/mp4",
        "application/x-www-form-urlencoded",
        "font/woff2",
    ):
        add(
            Case(f"text-type-{content_type}", CLASSIFY, content_type, b"field=value&x=1", 415, "unsupported_media_type")
        )
        add(Case(f"batch-type-{content_type}", BATCH, content_type, b"field=value&x=1", 415, "unsupported_media_type"))
    for content_type in ("image/jpeg", None):
        add(Case(f"batch-raw-image-{content_type}", BATCH, content_type, jpeg, 415, "unsupported_media_type"))

    # -- truncated JPEG / PNG at many cut points. Cut inside the compressed data: 422 corrupt_image.
    #    Cut inside the headers: the format may no longer be identified (415) or fail on load (422).
    big_jpeg = fakes.synthetic_cell(640, 480, seed=3)
    scan = big_jpeg.find(b"\xff\xda")
    for fraction in np.linspace(0.0, 0.97, 60):
        cut = max(1, int(len(big_jpeg) * fraction))
        status = 422 if cut > scan + 64 else frozenset({415, 422})
        add(
            Case(
                f"truncated-jpeg-{cut}",
                CLASSIFY,
                "image/jpeg",
                big_jpeg[:cut],
                status,
                "corrupt_image" if status == 422 else None,
            )
        )
    big_png = fakes.synthetic_cell(320, 240, seed=5, fmt="PNG")
    idat = big_png.find(b"IDAT")
    end = big_png.find(b"IEND") - 4
    for fraction in np.linspace(0.0, 0.97, 60):
        cut = max(1, int(end * fraction))
        status = 422 if cut > idat + 64 else frozenset({415, 422})
        add(
            Case(
                f"truncated-png-{cut}",
                CLASSIFY,
                "image/png",
                big_png[:cut],
                status,
                "corrupt_image" if status == 422 else None,
            )
        )
    for fmt, data in (
        ("webp", save(picture(), "WEBP")),
        ("gif", save(picture(), "GIF")),
        ("bmp", save(picture(), "BMP")),
        ("tiff", save(picture(), "TIFF")),
    ):
        for fraction in (0.3, 0.6, 0.9):
            cut = int(len(data) * fraction)
            add(Case(f"truncated-{fmt}-{cut}", CLASSIFY, f"image/{fmt}", data[:cut], frozenset({415, 422})))

    # -- valid headers, corrupt data
    for i in range(20):
        noise = rng.bytes(int(rng.integers(200, 4000)))
        add(
            Case(f"jpeg-header-noise-{i}", CLASSIFY, "image/jpeg", big_jpeg[: scan + 12] + noise, frozenset({200, 422}))
        )
        add(Case(f"png-header-noise-{i}", CLASSIFY, "image/png", big_png[: idat + 4] + noise, 422, "corrupt_image"))
    for i in range(10):  # flipped bytes inside PNG's IDAT: the CRC check fails
        data = bytearray(big_png)
        position = idat + 8 + int(rng.integers(0, 500))
        data[position] ^= 0xFF
        add(Case(f"png-flipped-idat-{i}", CLASSIFY, "image/png", bytes(data), 422, "corrupt_image"))
    add(
        Case(
            "png-bad-ihdr-crc",
            CLASSIFY,
            "image/png",
            png_declaring(320, 240)[:29] + b"\x00\x00\x00\x00" + png_declaring(320, 240)[33:],
            frozenset({415, 422}),
        )
    )
    add(
        Case(
            "png-bad-colour-type", CLASSIFY, "image/png", png_declaring(320, 240, colour_type=7), frozenset({415, 422})
        )
    )

    # -- zero-size, 1x1 and small images in every format
    add(Case("png-0x0", CLASSIFY, "image/png", png_declaring(0, 0), frozenset({415, 422})))
    add(Case("png-0x100", CLASSIFY, "image/png", png_declaring(0, 100), frozenset({415, 422})))
    add(Case("gif-0x0", CLASSIFY, "image/gif", gif_declaring(0, 0), frozenset({415, 422})))
    add(Case("bmp-0x0", CLASSIFY, "image/bmp", bmp_declaring(0, 0), frozenset({415, 422})))
    for fmt in ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"):
        for width, height in ((1, 1), (15, 240), (240, 15), (2, 2)):
            add(
                Case(
                    f"small-{fmt}-{width}x{height}",
                    CLASSIFY,
                    f"image/{fmt.lower()}",
                    save(picture(width, height), fmt),
                    422,
                    "image_too_small",
                )
            )
        add(Case(f"min-{fmt}-16x16", CLASSIFY, f"image/{fmt.lower()}", save(picture(16, 16), fmt), 200))

    # -- decompression bombs: tiny files declaring huge dimensions
    for width, height in ((50_000, 50_000), (7072, 7072), (8000, 6251), (65_535, 65_535), (1_000_000, 100)):
        add(
            Case(
                f"bomb-png-{width}x{height}",
                CLASSIFY,
                "image/png",
                png_declaring(width, height),
                413,
                "image_too_large",
            )
        )
    for width, height in ((65_535, 65_535), (10_000, 6000)):
        add(
            Case(
                f"bomb-gif-{width}x{height}",
                CLASSIFY,
                "image/gif",
                gif_declaring(width, height),
                413,
                "image_too_large",
            )
        )
        add(
            Case(
                f"bomb-jpeg-{width}x{height}",
                CLASSIFY,
                "image/jpeg",
                jpeg_declaring(width, height),
                413,
                "image_too_large",
            )
        )
    add(Case("bomb-bmp-30000x30000", CLASSIFY, "image/bmp", bmp_declaring(30_000, 30_000), 413, "image_too_large"))
    bomb = png_declaring(50_000, 50_000)
    add(
        Case(
            "bomb-json", CLASSIFY, "application/json", json.dumps({"image": b64(bomb)}).encode(), 413, "image_too_large"
        )
    )
    content_type, body = multipart([("image", "bomb.png", "image/png", bomb)])
    add(Case("bomb-multipart", CLASSIFY, content_type, body, 413, "image_too_large"))
    add(
        Case(
            "bomb-in-batch",
            BATCH,
            "application/json",
            json.dumps({"images": [b64(bomb), b64(jpeg)]}).encode(),
            200,
            check=lambda r: _item_statuses(r, [413, 200]),
        )
    )

    # -- formats Pillow could parse but the API refuses: opened with an allow-list, so their parsers never run
    #    (tests/unit/test_decode_limits.py spies on them); the message names the format when its magic number does
    for fmt in ("ICO", "PPM", "TGA", "PCX", "EPS", "SGI"):
        for content_type in ("image/png", "image/jpeg"):
            add(
                Case(
                    f"refused-format-{fmt.lower()}-as-{content_type}",
                    CLASSIFY,
                    content_type,
                    save(picture(64, 48), fmt),
                    415,
                    "unsupported_image",
                )
            )
    add(
        Case(
            "refused-format-ico-in-batch",
            BATCH,
            "application/json",
            json.dumps({"images": [b64(save(picture(64, 48), "ICO")), b64(jpeg)]}).encode(),
            200,
            check=lambda r: _item_statuses(r, [415, 200]),
        )
    )

    # -- legitimately usable images in every mode and format: 200
    usable = {
        "png-16bit-grey": save(
            Image.fromarray((np.asarray(picture(mode="L"), dtype=np.uint16) * 257).astype(np.uint16)), "PNG"
        ),
        "png-palette": save(picture().convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        "png-palette-transparency": save(picture().convert("P", palette=Image.Palette.ADAPTIVE), "PNG", transparency=0),
        "png-grey": save(picture(mode="L"), "PNG"),
        "png-grey-alpha": save(picture(mode="LA"), "PNG"),
        "png-rgba": save(picture(mode="RGBA"), "PNG"),
        "png-1bit": save(picture(mode="1"), "PNG"),
        "png-optimized": save(picture(), "PNG", optimize=True),
        "jpeg-cmyk": save(picture(mode="CMYK"), "JPEG"),
        "jpeg-grey": save(picture(mode="L"), "JPEG"),
        "jpeg-progressive": save(picture(), "JPEG", progressive=True),
        "jpeg-trailing-garbage": jpeg + b"\x00garbage after EOI" * 10,
        "gif-animated": animated("GIF"),
        "webp-animated": animated("WEBP"),
        "webp-lossless": save(picture(), "WEBP", lossless=True),
        "webp-alpha": save(picture(mode="RGBA"), "WEBP"),
        "bmp": save(picture(), "BMP"),
        "tiff": save(picture(), "TIFF"),
        "tiff-cmyk": save(picture(mode="CMYK"), "TIFF"),
        "tiff-16bit-grey": save(
            Image.fromarray((np.asarray(picture(mode="L"), dtype=np.uint16) * 257).astype(np.uint16)), "TIFF"
        ),
        "tiff-deflate": save(picture(), "TIFF", compression="tiff_adobe_deflate"),
        "mpo-like-jpeg-large": fakes.synthetic_cell(2000, 1500, seed=9),
        "png-wide": save(picture(4000, 16), "PNG"),
    }
    for name, data in usable.items():
        fmt = "jpeg" if name.startswith(("jpeg", "mpo")) else name.split("-")[0]
        add(Case(f"usable-{name}", CLASSIFY, f"image/{fmt}", data, 200))
        # not a binary media type: API Gateway would pass the bytes as (mangled) text, so the function refuses it
        add(Case(f"usable-{name}-octet", CLASSIFY, "application/octet-stream", data, 415, "unsupported_media_type"))
        add(Case(f"usable-{name}-no-type", CLASSIFY, None, data, 415, "unsupported_media_type"))
        add(Case(f"usable-{name}-json", CLASSIFY, "application/json", json.dumps({"image": b64(data)}).encode(), 200))
    for orientation in range(1, 9):
        upright, stored = exif_rotated(orientation)
        add(
            Case(
                f"exif-orientation-{orientation}",
                CLASSIFY,
                "image/png",
                stored,
                200,
                check=lambda r: _assert(
                    r["width"] == 320 and r["height"] == 240, f"not upright: {r['width']}x{r['height']}"
                ),
            )
        )
    # a real phone-style JPEG: portrait stored as landscape + orientation 6
    exif = Image.Exif()
    exif[0x0112] = 6
    add(
        Case(
            "exif-jpeg-orientation-6",
            CLASSIFY,
            "image/jpeg",
            save(picture(400, 300), "JPEG", exif=exif.tobytes()),
            200,
            check=lambda r: _assert((r["width"], r["height"]) == (300, 400), "EXIF orientation not applied"),
        )
    )
    add(
        Case(
            "exif-broken-block",
            CLASSIFY,
            "image/jpeg",
            _jpeg_with_app1(jpeg, b"Exif\x00\x00MM\x00*\xff\xff\xff\xff"),
            200,
        )
    )

    # -- JSON base64: invalid, and the tolerated variants
    invalid_b64 = [
        "@@@@",
        "not base64!",
        "abcde",
        "a",
        "ab=c",
        "\u00e9\u00e9\u00e9\u00e9",
        "YW Jj%",
        "data:image/png;base64,***",
        "/9j/4AAQ*",
        "a" * 4097 + "!",
        "\x00\x01\x02\x03",
        "..",
        "ab\\ncd",
    ]
    for i, text in enumerate(invalid_b64):
        add(
            Case(
                f"b64-invalid-{i}",
                CLASSIFY,
                "application/json",
                json.dumps({"image": text}).encode(),
                400,
                "invalid_base64",
            )
        )
    add(Case("b64-empty", CLASSIFY, "application/json", b'{"image": ""}', 400, "empty_image"))
    add(Case("b64-only-padding", CLASSIFY, "application/json", b'{"image": "=="}', 400, "empty_image"))
    add(Case("b64-only-padding-4", CLASSIFY, "application/json", b'{"image": "===="}', 400, "empty_image"))
    add(Case("b64-only-whitespace", CLASSIFY, "application/json", b'{"image": " \\n\\t "}', 400, "empty_image"))
    encoded = b64(jpeg)
    variants = {
        "standard": encoded,
        "urlsafe": base64.urlsafe_b64encode(jpeg).decode(),
        "unpadded": encoded.rstrip("="),
        "mime-wrapped": "\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76)),
        "spaces": " ".join(encoded[i : i + 10] for i in range(0, len(encoded), 10)),
        "data-url": "data:image/jpeg;base64," + encoded,
        "leading-trailing-ws": "\n  " + encoded + "  \n",
    }
    for name, text in variants.items():
        add(Case(f"b64-{name}", CLASSIFY, "application/json", json.dumps({"image": text}).encode(), 200))
        add(
            Case(
                f"b64-{name}-batch",
                BATCH,
                "application/json",
                json.dumps({"images": [text]}).encode(),
                200,
                check=lambda r: _item_statuses(r, [200]),
            )
        )
    add(
        Case(
            "b64-valid-but-text",
            CLASSIFY,
            "application/json",
            json.dumps({"image": b64(b"just text")}).encode(),
            415,
            "unsupported_image",
        )
    )
    add(
        Case(
            "b64-truncated-jpeg",
            CLASSIFY,
            "application/json",
            json.dumps({"image": b64(big_jpeg[: len(big_jpeg) // 2])}).encode(),
            422,
            "corrupt_image",
        )
    )

    # -- JSON of the wrong shape / not JSON
    wrong_json = [
        b"{",
        b"[",
        b"nul",
        b"{'image': 'x'}",
        b'{"image": "x"',
        b"\xff\xfe{}",
        b"\x00\x00",
        b"NaN-ish",
        b'"unterminated',
        b"{" * 50_000,
        b"[" * 100_000,
    ]
    for i, body in enumerate(wrong_json):
        add(Case(f"json-invalid-{i}", CLASSIFY, "application/json", body, 400, "invalid_json"))
        add(Case(f"json-invalid-batch-{i}", BATCH, "application/json", body, 400, "invalid_json"))
    wrong_shape = [
        [],
        {},
        None,
        1,
        "image",
        True,
        {"images": [encoded]},
        {"image": None},
        {"image": 5},
        {"image": [encoded]},
        {"image": {"data": encoded}},
        {"Image": encoded},
        {"img": encoded},
        {"image": encoded, "filename": 7},
        [{"image": encoded}],
        {"image": True},
        3.5,
        {"image": {}},
    ]
    for i, value in enumerate(wrong_shape):
        add(Case(f"json-shape-{i}", CLASSIFY, "application/json", json.dumps(value).encode(), 400, "invalid_request"))
    batch_wrong_shape = [
        [],
        {},
        None,
        1,
        {"image": encoded},
        {"images": encoded},
        {"images": None},
        {"images": [5]},
        {"images": [None]},
        {"images": [[encoded]]},
        {"images": [{"data": encoded}]},
        {"images": {"0": encoded}},
        [encoded],
        {"images": [{}]},
    ]
    for i, value in enumerate(batch_wrong_shape):
        add(
            Case(f"json-shape-batch-{i}", BATCH, "application/json", json.dumps(value).encode(), 400, "invalid_request")
        )
    add(Case("json-batch-empty-list", BATCH, "application/json", b'{"images": []}', 400, "invalid_request"))
    add(
        Case(
            "json-charset-utf16",
            CLASSIFY,
            "application/json; charset=utf-16",
            json.dumps({"image": encoded}).encode(),
            200,
        )
    )
    add(Case("json-text-json", CLASSIFY, "text/json", json.dumps({"image": encoded}).encode(), 200))
    # invalid UTF-8 in a JSON body: API Gateway passes it as text with U+FFFD, so the base64 is invalid
    add(
        Case(
            "json-invalid-utf8",
            CLASSIFY,
            "application/json",
            b'{"image": "' + b"\xc3\x28" * 4 + b'"}',
            400,
            "invalid_base64",
        )
    )
    add(
        Case(
            "json-extra-fields",
            CLASSIFY,
            "application/json",
            json.dumps({"image": encoded, "x": 1}).encode(),
            400,
            "invalid_request",
        )
    )
    add(
        Case(
            "json-with-filename",
            CLASSIFY,
            "application/json",
            json.dumps({"image": encoded, "filename": "a.jpg"}).encode(),
            200,
            check=lambda r: _assert(r["filename"] == "a.jpg", "filename not echoed"),
        )
    )

    # -- multipart: missing, extra, repeated fields, broken framing
    part = ("image", "cell.jpg", "image/jpeg", jpeg)
    forms = {
        "ok": ([part], 200, None),
        "extra-fields": (
            [
                ("note", None, "text/plain", b"hello"),
                part,
                ("other", "x.bin", "application/octet-stream", b"\x00" * 10),
            ],
            200,
            None,
        ),
        "no-filename": ([("image", None, "image/jpeg", jpeg)], 200, None),
        "odd-filename": ([("image", "../../etc/passwd\u00e9.jpg", "image/jpeg", jpeg)], 200, None),
        "wrong-part-type": ([("image", "cell.txt", "text/plain", jpeg)], 200, None),
        "missing-image": ([("file", "cell.jpg", "image/jpeg", jpeg)], 400, "missing_image"),
        "only-text-fields": ([("a", None, "text/plain", b"1"), ("b", None, "text/plain", b"2")], 400, "missing_image"),
        "two-images": ([part, part], 400, "too_many_images"),
        "empty-image": ([("image", "e.jpg", "image/jpeg", b"")], 400, "empty_image"),
        "text-image": ([("image", "t.jpg", "image/jpeg", b"plain text")], 415, "unsupported_image"),
        "truncated-image": ([("image", "t.jpg", "image/jpeg", big_jpeg[: len(big_jpeg) // 2])], 422, "corrupt_image"),
        "tiny-image": ([("image", "t.png", "image/png", save(picture(4, 4), "PNG"))], 422, "image_too_small"),
    }
    for name, (fields, status, code) in forms.items():
        content_type, body = multipart(fields)
        add(Case(f"multipart-{name}", CLASSIFY, content_type, body, status, code))
    content_type, body = multipart([part])
    add(Case("multipart-no-boundary", CLASSIFY, "multipart/form-data", body, 400, "malformed_multipart"))
    add(Case("multipart-wrong-boundary", CLASSIFY, "multipart/form-data; boundary=other", body, 400))
    add(Case("multipart-quoted-boundary", CLASSIFY, 'multipart/form-data; boundary="hvCorpusBoundary"', body, 200))
    for i, fraction in enumerate((0.1, 0.5, 0.9, 0.999)):
        add(
            Case(
                f"multipart-truncated-{i}",
                CLASSIFY,
                content_type,
                body[: int(len(body) * fraction)],
                400,
                "malformed_multipart",
            )
        )
    add(Case("multipart-garbage", CLASSIFY, content_type, rng.bytes(3000), 400, "malformed_multipart"))
    add(Case("multipart-only-closing", CLASSIFY, content_type, b"--hvCorpusBoundary--\r\n", 400))
    add(
        Case(
            "multipart-no-headers",
            CLASSIFY,
            content_type,
            b"--hvCorpusBoundary\r\n\r\n" + jpeg + b"\r\n--hvCorpusBoundary--\r\n",
            400,
            "missing_image",
        )
    )
    add(
        Case(
            "multipart-header-bomb",
            CLASSIFY,
            content_type,
            b"--hvCorpusBoundary\r\n"
            + b"X-A: b\r\n" * 20_000
            + b'Content-Disposition: form-data; name="image"\r\n\r\n'
            + jpeg
            + b"\r\n--hvCorpusBoundary--\r\n",
            200,
        )
    )

    # -- batches: caps on count and size, per-item errors
    for count in (1, 15, 16):
        add(
            Case(
                f"batch-json-{count}",
                BATCH,
                "application/json",
                json.dumps({"images": [encoded] * count}).encode(),
                200,
                check=lambda r, n=count: _item_statuses(r, [200] * n),
            )
        )
    for count in (17, 40):
        add(
            Case(
                f"batch-json-over-{count}",
                BATCH,
                "application/json",
                json.dumps({"images": [encoded] * count}).encode(),
                413,
                "too_many_images",
            )
        )
        content_type, body = multipart([part] * count)
        add(Case(f"batch-multipart-over-{count}", BATCH, content_type, body, 413, "too_many_images"))
    content_type, body = multipart([part] * 16)
    add(Case("batch-multipart-16", BATCH, content_type, body, 200, check=lambda r: _item_statuses(r, [200] * 16)))
    mixed = [
        encoded,
        "@@@",
        b64(b"text"),
        b64(big_jpeg[:500]),
        b64(save(picture(2, 2), "PNG")),
        b64(bomb),
        "",
        {"image": encoded, "filename": "x.jpg"},
    ]
    add(
        Case(
            "batch-mixed-items",
            BATCH,
            "application/json",
            json.dumps({"images": mixed}).encode(),
            200,
            check=lambda r: _item_statuses(r, [200, 400, 415, 422, 422, 413, 400, 200]),
        )
    )
    content_type, body = multipart(
        [part, ("image", "t.txt", "text/plain", b"nope"), ("image", "e.jpg", "image/jpeg", b"")]
    )
    add(
        Case(
            "batch-multipart-mixed", BATCH, content_type, body, 200, check=lambda r: _item_statuses(r, [200, 415, 400])
        )
    )
    content_type, body = multipart([("file", "x.jpg", "image/jpeg", jpeg)])
    add(Case("batch-multipart-missing-image", BATCH, content_type, body, 400, "missing_image"))
    # total size over the batch cap, while under Lambda's payload limit it is not reachable through the server
    padded = b64(jpeg + b"\x00" * (1024 * 1024))
    add(
        Case(
            "batch-over-bytes",
            BATCH,
            "application/json",
            json.dumps({"images": [padded] * 5}).encode(),
            413,
            "payload_too_large",
            server_status=413,
        )
    )

    # -- bodies just under and over the 6 MB Lambda payload (raw binary bodies grow by 4/3 in base64)
    under = _padded_jpeg(jpeg, 4_400_000)
    over = _padded_jpeg(jpeg, 4_800_000)
    add(Case("lambda-limit-raw-just-under", CLASSIFY, "image/jpeg", under, 200))
    add(
        Case("lambda-limit-raw-just-over", CLASSIFY, "image/jpeg", over, 200, server_status=413)
    )  # the handler alone could take it
    add(
        Case(
            "function-limit-raw-over-6mib",
            CLASSIFY,
            "image/jpeg",
            _padded_jpeg(jpeg, FUNCTION_LIMIT + 1),
            413,
            "payload_too_large",
            server_status=413,
        )
    )
    add(
        Case(
            "lambda-limit-json-just-under",
            CLASSIFY,
            "application/json",
            json.dumps({"image": b64(_padded_jpeg(jpeg, 4_500_000))}).encode(),
            200,
        )
    )
    add(
        Case(
            "lambda-limit-json-just-over",
            CLASSIFY,
            "application/json",
            json.dumps({"image": b64(_padded_jpeg(jpeg, 4_800_000))}).encode(),
            413,
            "payload_too_large",
            server_status=413,
        )
    )
    add(
        Case(
            "api-gateway-limit-over-10mb",
            CLASSIFY,
            "image/jpeg",
            b"\x00" * (10 * 1024 * 1024 + 1),
            413,
            "payload_too_large",
            server_status=413,
        )
    )

    # -- query strings
    for value, status in (("true", 200), ("false", 200), ("1", 200), ("maybe", 400), ("", 400), ("%00", 400)):
        add(
            Case(
                f"explain-{value or 'empty'}",
                CLASSIFY,
                "image/jpeg",
                jpeg,
                status,
                None if status == 200 else "invalid_request",
                query=f"explain={value}",
            )
        )
    add(
        Case(
            "explain-batch-bad",
            BATCH,
            "application/json",
            json.dumps({"images": [encoded]}).encode(),
            400,
            "invalid_request",
            query="explain=2x",
        )
    )
    add(Case("unknown-query-ignored", CLASSIFY, "image/jpeg", jpeg, 200, query="foo=bar&foo=baz&%zz=1"))

    # -- odd content-type headers
    for content_type, status in (
        ("IMAGE/JPEG", 200),
        ("image/jpeg; charset=binary", 200),
        ("image/x-unknown", 415),
        ("image/svg+xml", 415),
        (";;;", 415),
        ("application/json;", 400),
        ("multipart/mixed; boundary=x", 415),
    ):
        data = jpeg if status != 400 else b"not json"
        code = {415: None, 400: "invalid_json"}.get(status)
        if content_type == "image/svg+xml":
            data = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
        add(Case(f"content-type-{content_type}", CLASSIFY, content_type, data, status, code))
    return cases


def _padded_jpeg(jpeg: bytes, size: int) -> bytes:
    """A valid JPEG followed by filler after its EOI marker, `size` bytes long (decoders stop at EOI)."""
    return jpeg + b"\x00" * (size - len(jpeg))


def _jpeg_with_app1(jpeg: bytes, payload: bytes) -> bytes:
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def _assert(condition: bool, message: str) -> None:
    assert condition, message


def _item_statuses(response: dict, expected: list[int]) -> None:
    got = [r["status"] for r in response["results"]]
    assert got == expected, f"per-item statuses {got}, expected {expected}"
    for result in response["results"]:
        assert result["ok"] == (result["status"] == 200)
