"""The whole-field use case (POST /v1/analyze, `hematovision analyze`): find every white cell, classify each.

decode once (upright) -> logic/localiser.locate -> crop each white cell as the model learned -> one batched
classification (Classifier.verdicts) -> the differential. Boxes are returned in the pixels of the upright original,
whatever scale the photo was decoded at.

The crop follows the model's card (Model.crop). A "cell" model (2.0) gets logic/cell_crop.crop_cells: each cell's
square of crop_um micrometres, as in training. A "frame" model (1.2.0) gets the bccd-like frame below.

The frame: model 1.2.0 learned from bccd frames, which are the 640x480 fields of fields/bccd at half size (320x240),
the white cell roughly centred and about a third of the frame wide. Each cell is cropped around its box's centre
so that the crop covers the same physical field of view as a bccd frame (FRAME_UM), from the localiser's scale
estimate; without a red-cell ruler, FRAME_BOXES times the box. The crop stays inside the photo when the photo is
large enough (a bccd frame is a real field, not a padded one); a photo smaller than the frame is padded with its
background colour. The crop is then resized to the model's square input like a bccd frame is (to_model_input).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from hematovision.errors import ClientError
from hematovision.limits import MAX_ANALYZE_CELLS
from hematovision.logic.cell_crop import DECODE_SIZE, crop_cells, isotropic, normalise
from hematovision.logic.classifier import Classifier, Upload
from hematovision.logic.localiser import locate
from hematovision.logic.preprocessing import RESAMPLE, DecodeBudget
from hematovision.logic.verdict import Verdict

# The localiser's scale on fields/bccd: median px_per_um 13.49 over the 357 of 364 fields it measured with the
# red-cell ruler (deciles 11.8-21.1), measured once with logic/localiser.py of 2026-01 (ac62045). The bccd frames are
# those fields at half size, so a 320x240 frame covers 640 x 480 field pixels at this scale.
BCCD_PX_PER_UM = 13.5
FRAME_UM = (640 / BCCD_PX_PER_UM, 480 / BCCD_PX_PER_UM)  # ~47.4 x 35.6 um, width x height
# Without a scale: a bccd white cell is about a third of the frame wide (its box: the median WBC box in fields/bccd
# is 201 px of the 640 px field).
FRAME_BOXES = 3.0
NO_CELL_NOTE = (
    "No white cell was found in this photo. Send a whole-field photo of a stained blood smear (a microscope "
    "camera frame or a phone photo through the eyepiece) in which white cells are visible."
)


@dataclass
class AnalyzedCell:
    box: tuple[int, int, int, int]  # xmin, ymin, xmax, ymax in the upright original's pixels
    verdict: Verdict
    score: float | None = None  # the localiser's


@dataclass
class Analysis:
    filename: str | None
    width: int  # the upright original's size
    height: int
    cells: list[AnalyzedCell]  # every cell found, in reading order (top to bottom, then left to right)
    classes: list[str]
    px_per_um: float | None = None  # in the upright original's pixels
    ruler: str = "none"
    decode_ms: float = 0.0
    locate_ms: float = 0.0
    inference_ms: float = 0.0
    image: Image.Image | None = field(default=None, repr=False)  # the decoded upright photo (possibly reduced)

    @property
    def counts(self) -> dict[str, int]:
        """The differential: cells per class, every class listed, over every cell found (not only the listed)."""
        counts = dict.fromkeys(self.classes, 0)
        for cell in self.cells:
            counts[cell.verdict.label] = counts.get(cell.verdict.label, 0) + 1
        return counts

    @property
    def uncertain_count(self) -> int:
        return sum(1 for cell in self.cells if cell.verdict.uncertain)

    @property
    def truncated(self) -> bool:
        return len(self.cells) > MAX_ANALYZE_CELLS

    @property
    def listed(self) -> list[AnalyzedCell]:
        """The cells an answer lists: at most MAX_ANALYZE_CELLS (counts still cover them all)."""
        return self.cells[:MAX_ANALYZE_CELLS]

    @property
    def note(self) -> str | None:
        return NO_CELL_NOTE if not self.cells else None


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


def background_colour(image: Image.Image) -> tuple[int, int, int]:
    """The plasma between cells: the median colour of the brightest 5% of a thumbnail's pixels.

    The padding of model 1.2.0's frames only. Cell models are padded with cell_crop.border_colour, as in their
    training; 1.2.0 keeps this one because border_colour would change its answers: it moves the probabilities of
    most padded frames (on samples of fields/bccd and fields/txl, a label or flag too)."""
    small = image.copy()
    small.thumbnail((128, 128))
    rgb = np.asarray(small.convert("RGB"), dtype=np.int32).reshape(-1, 3)
    lum = rgb.sum(axis=1)
    bright = rgb[lum >= np.percentile(lum, 95)]
    return tuple(int(v) for v in np.median(bright, axis=0))


def frame_size(box: tuple[float, float, float, float], px_per_um: float | None) -> tuple[float, float]:
    """The crop (width, height) around a box, in the pixels the box is in: a bccd frame's field of view."""
    if px_per_um is not None and px_per_um > 0:
        return FRAME_UM[0] * px_per_um, FRAME_UM[1] * px_per_um
    side = max(box[2] - box[0], (box[3] - box[1]) * 4 / 3, 1.0)
    return FRAME_BOXES * side, FRAME_BOXES * side * 3 / 4


def _placed(centre: float, extent: float, limit: int) -> float:
    """The crop's start on one axis: centred on the cell, moved inside the photo when the photo is large enough; a
    photo smaller than the crop is taken whole (padded on both sides, the cell as central as it allows)."""
    low, high = min(0.0, limit - extent), max(0.0, limit - extent)
    return min(max(centre - extent / 2, low), high)


def crop_cell(
    image: Image.Image,
    box: tuple[float, float, float, float],
    px_per_um: float | None,
    size: int,
    background: tuple[int, int, int],
) -> np.ndarray:
    """The model input (uint8 [size, size, 3]) of one cell: its bccd-like frame, resized like a bccd frame."""
    crop_w, crop_h = frame_size(box, px_per_um)
    x0 = _placed((box[0] + box[2]) / 2, crop_w, image.width)
    y0 = _placed((box[1] + box[3]) / 2, crop_h, image.height)
    ix0, iy0 = max(0.0, x0), max(0.0, y0)
    ix1, iy1 = min(float(image.width), x0 + crop_w), min(float(image.height), y0 + crop_h)
    sx, sy = size / crop_w, size / crop_h
    if (ix0, iy0, ix1, iy1) == (x0, y0, x0 + crop_w, y0 + crop_h):  # the frame lies inside the photo
        return np.asarray(image.resize((size, size), RESAMPLE, box=(x0, y0, x0 + crop_w, y0 + crop_h)), dtype=np.uint8)
    canvas = Image.new("RGB", (size, size), background)
    dx0, dy0 = round((ix0 - x0) * sx), round((iy0 - y0) * sy)
    dx1, dy1 = round((ix1 - x0) * sx), round((iy1 - y0) * sy)
    if dx1 > dx0 and dy1 > dy0:
        canvas.paste(image.resize((dx1 - dx0, dy1 - dy0), RESAMPLE, box=(ix0, iy0, ix1, iy1)), (dx0, dy0))
    return np.asarray(canvas, dtype=np.uint8)


def to_original(box, width: int, height: int, sx: float, sy: float) -> tuple[int, int, int, int]:
    """A box in decoded pixels -> integer [xmin, ymin, xmax, ymax] in the upright original's pixels."""
    x0, y0, x1, y1 = box
    return (
        max(0, math.floor(x0 * sx)),
        max(0, math.floor(y0 * sy)),
        min(width, math.ceil(x1 * sx)),
        min(height, math.ceil(y1 * sy)),
    )


class Analyzer:
    def __init__(self, classifier: Classifier, localiser=None):
        self.classifier = classifier
        self._localiser = localiser  # image -> Localisation; None: logic/localiser.locate (tests pass a stand-in)

    @property
    def localiser(self):
        return self._localiser or locate

    @localiser.setter
    def localiser(self, value) -> None:
        self._localiser = value

    def analyze(self, upload: Upload | bytes, budget: DecodeBudget | None = None) -> Analysis:
        """One photo's white cells, each classified; a ClientError (400/413/415/422) for an unusable upload."""
        if isinstance(upload, (bytes, bytearray)):
            upload = Upload(data=bytes(upload))
        model = self.classifier.model
        start = time.perf_counter()
        decoded = self.classifier.decode_upload(upload, size=max(DECODE_SIZE, model.input_size), budget=budget)
        image, sx, sy = isotropic(decoded.image, decoded.width, decoded.height)
        decode_ms = _ms(start)
        start = time.perf_counter()
        found = self.localiser(image)
        locate_ms = _ms(start)
        # (box, score, its index in found.boxes), in reading order
        boxes: list[tuple[tuple[float, float, float, float], float | None, int]] = []
        for index, raw in enumerate(found.boxes):
            x0, y0, x1, y1 = (float(v) for v in raw)
            if x1 > x0 and y1 > y0:
                boxes.append(((x0, y0, x1, y1), found.scores[index] if index < len(found.scores) else None, index))
        boxes.sort(key=lambda b: ((b[0][1] + b[0][3]) / 2, (b[0][0] + b[0][2]) / 2))
        px_per_um = found.px_per_um if found.ruler == "red_cells" else None
        analysis = Analysis(
            filename=upload.filename,
            width=decoded.width,
            height=decoded.height,
            cells=[],
            classes=list(model.classes),
            px_per_um=None if found.px_per_um is None else round(found.px_per_um * math.sqrt(sx * sy), 4),
            ruler=found.ruler,
            decode_ms=decode_ms,
            locate_ms=locate_ms,
            image=image,
        )
        if not boxes:
            return analysis
        start = time.perf_counter()
        if model.crop == "cell":
            crops = crop_cells(image, found, model.crop_um, model.input_size)
            arrays = [normalise(crops[index].pixels, model.normalise) for _, _, index in boxes]
        else:
            background = background_colour(image)
            arrays = [
                normalise(crop_cell(image, box, px_per_um, model.input_size, background), model.normalise)
                for box, _, _ in boxes
            ]
        analysis.decode_ms = round(analysis.decode_ms + _ms(start), 3)
        start = time.perf_counter()
        verdicts = self.classifier.verdicts(arrays)
        analysis.inference_ms = _ms(start)
        analysis.cells = [
            AnalyzedCell(box=to_original(box, decoded.width, decoded.height, sx, sy), verdict=v, score=score)
            for (box, score, _), v in zip(boxes, verdicts, strict=True)
        ]
        return analysis


def analyze_or_error(analyzer: Analyzer, upload: Upload) -> Analysis | ClientError:
    """The CLI's form: an Analysis, or the ClientError that refused the upload (the run goes on)."""
    try:
        return analyzer.analyze(upload)
    except ClientError as error:
        return error
