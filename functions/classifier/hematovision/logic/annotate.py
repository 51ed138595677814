"""The annotated photo of an analysis (?annotate=true): the upright photo with a labelled box per white cell.

At most ANNOTATED_LONG_SIDE pixels on its long side and ANNOTATED_MAX_BYTES as a PNG (a palette PNG, shrunk
further if a noisy photo still needs it), so it fits in the 6 MB Lambda response beside the JSON.
"""

from __future__ import annotations

import base64
import io

from PIL import Image, ImageDraw, ImageFont

from hematovision.logic.analysis import Analysis

ANNOTATED_LONG_SIDE = 1024
ANNOTATED_MAX_BYTES = 1024 * 1024
COLOURS = {"EOSINOPHIL": (230, 73, 0), "LYMPHOCYTE": (25, 113, 194), "MONOCYTE": (47, 158, 68), "NEUTROPHIL": (0, 0, 0)}
SHORT = {"EOSINOPHIL": "EOS", "LYMPHOCYTE": "LYM", "MONOCYTE": "MONO", "NEUTROPHIL": "NEU"}
UNCERTAIN_COLOUR = (250, 176, 5)


def _font(size: int):
    try:
        return ImageFont.load_default(size)
    except Exception:  # a Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def draw(analysis: Analysis) -> Image.Image:
    """The photo at <= ANNOTATED_LONG_SIDE with each cell's box and 'LABEL 0.93' ('?' when uncertain)."""
    image = analysis.image.copy() if analysis.image is not None else Image.new("RGB", (analysis.width, analysis.height))
    image.thumbnail((ANNOTATED_LONG_SIDE, ANNOTATED_LONG_SIDE), Image.Resampling.BILINEAR)
    to_image = image.width / analysis.width if analysis.width else 1.0
    pen = ImageDraw.Draw(image)
    line = max(2, round(max(image.size) / 300))
    font = _font(max(11, round(max(image.size) / 55)))
    for number, cell in enumerate(analysis.cells, start=1):
        v = cell.verdict
        colour = COLOURS.get(v.label, (122, 46, 142))
        x0, y0, x1, y1 = (round(c * to_image) for c in cell.box)
        pen.rectangle(
            (x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)), outline=UNCERTAIN_COLOUR if v.uncertain else colour, width=line
        )
        text = f"{number} {SHORT.get(v.label, v.label)} {v.confidence:.2f}" + ("?" if v.uncertain else "")
        left, top, right, bottom = pen.textbbox((0, 0), text, font=font)
        tw, th = right - left + 6, bottom - top + 4
        ty = y0 - th if y0 - th >= 0 else min(y1, image.height - th)
        tx = min(max(0, x0), max(0, image.width - tw))
        pen.rectangle((tx, ty, tx + tw, ty + th), fill=colour)
        pen.text((tx + 3 - left, ty + 2 - top), text, fill=(255, 255, 255), font=font)
    return image


def encode_png(image: Image.Image, max_bytes: int = ANNOTATED_MAX_BYTES) -> bytes:
    """A palette PNG of at most max_bytes: 256 colours, then 64, then smaller sizes."""
    current = image
    while True:
        for colours in (256, 64):
            buffer = io.BytesIO()
            current.quantize(colours, method=Image.Quantize.MEDIANCUT).save(buffer, format="PNG", optimize=True)
            if buffer.tell() <= max_bytes:
                return buffer.getvalue()
        current = current.resize(
            (max(1, current.width * 3 // 4), max(1, current.height * 3 // 4)), Image.Resampling.BILINEAR
        )


def annotated_png(analysis: Analysis) -> dict:
    """{media_type, width, height, data (base64 PNG)} for the response."""
    data = encode_png(draw(analysis))
    with Image.open(io.BytesIO(data)) as png:
        width, height = png.size
    return {
        "media_type": "image/png",
        "width": width,
        "height": height,
        "data": base64.b64encode(data).decode("ascii"),
    }
