"""The classification use case shared by the Lambda handler and the CLI: bytes in, verdicts out.

decode + preprocess each image (errors stay per image), locate its white cells (logic/localiser.py), one batched
onnxruntime call, then the card's uncertainty rule, the localiser's flags (more than one white cell, or none: the
photo is not one cell's frame; see verdict.flag_cell_count) and optional heatmaps.

What the model sees follows its card (Model.crop): a "frame" model (1.2.0) the whole photo resized; a "cell" model
(2.0) the crop of the best-scoring cell through logic/cell_crop.model_input, the very call training makes on the
same decoded image (export/train.py cell_input), or the whole frame where no cell is found or the localiser fails.
One localisation gives both the crop and the flags.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from hematovision.errors import ClientError
from hematovision.limits import HEATMAP_SIZE, INFERENCE_BATCH, MAX_IMAGE_BYTES
from hematovision.logic.cell_crop import DECODE_SIZE, ModelInput, frame_input, isotropic, model_input, normalise
from hematovision.logic.heatmap import heatmap_png_base64
from hematovision.logic.inference import Model
from hematovision.logic.localiser import Localisation, locate
from hematovision.logic.preprocessing import DecodeBudget, DecodedImage, decode_for_model
from hematovision.logic.verdict import Verdict, flag_cell_count, verdict


@dataclass
class Upload:
    """One image to classify (or the reason it is unusable, which becomes that item's error)."""

    data: bytes | None
    filename: str | None = None
    error: ClientError | None = None


@dataclass
class ItemOutcome:
    index: int
    filename: str | None = None
    verdict: Verdict | None = None
    error: ClientError | None = None
    width: int | None = None
    height: int | None = None
    heatmap: dict | None = None
    cells_found: int | None = None  # white cells the localiser found in the photo (None: not localised)
    locate_ms: float = 0.0
    crop: str = "frame"  # what the model saw: "cell" (the best cell's crop) or "frame" (the whole photo)
    crop_ruler: str = "none"  # the crop's ruler: "red_cells", "box", or "none" for a frame

    @property
    def ok(self) -> bool:
        return self.verdict is not None


@dataclass
class Outcome:
    items: list[ItemOutcome]
    decode_ms: float = 0.0
    inference_ms: float = 0.0
    locate_ms: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


def locate_or_none(image) -> Localisation | None:
    """The localiser's answer for a decoded photo; None when it fails: the classify answer stands, on the whole frame
    and unflagged (the flags are advice about the photo, and a localiser fault must not fail a classification)."""
    try:
        return locate(image)
    except Exception:
        return None


class Classifier:
    def __init__(self, model: Model):
        self.model = model
        # a crop needs the photo's pixels around the cell: decoded as /v1/analyze decodes (a 12 MP photo at
        # 2000x1500), not reduced to twice the model input as the whole frame may be
        self.decode_size = max(DECODE_SIZE, model.input_size) if model.crop == "cell" else model.input_size

    def decode_upload(
        self, upload: Upload, size: int | None = None, budget: DecodeBudget | None = None
    ) -> DecodedImage:
        """The upload's image, upright RGB (large ones reduced, both sides >= 2 x size, default: the model's
        decode_size), or a ClientError."""
        if upload.error is not None:
            raise upload.error
        data = upload.data or b""
        if len(data) > MAX_IMAGE_BYTES:
            raise ClientError(
                "payload_too_large", f"The image is {len(data)} bytes; at most {MAX_IMAGE_BYTES} are accepted.", 413
            )
        try:
            return decode_for_model(data, size=size or self.decode_size, budget=budget)
        except ClientError:
            raise
        except MemoryError:
            raise ClientError("image_too_large", "The image is too large to decode.", 413) from None
        except Exception as error:  # Pillow raises many exception types on hostile files
            raise ClientError(
                "corrupt_image", f"The image could not be decoded: {type(error).__name__}.", 422
            ) from None

    def decode(
        self, upload: Upload, index: int, budget: DecodeBudget | None = None, localise: bool = True
    ) -> tuple[ItemOutcome, np.ndarray | None]:
        item = ItemOutcome(index=index, filename=upload.filename)
        try:
            decoded = self.decode_upload(upload, budget=budget)
        except ClientError as error:
            item.error = error
            return item, None
        item.width, item.height = decoded.width, decoded.height
        image = decoded.image
        cell_model = self.model.crop == "cell"
        if cell_model:
            image = isotropic(image, decoded.width, decoded.height)[0]  # the localiser and the crop need square pixels
        where = None
        if cell_model or localise:
            start = time.perf_counter()
            where = locate_or_none(image)
            item.locate_ms = _ms(start)
        if localise and where is not None:
            item.cells_found = len(where.boxes)
        chosen = self.model_input(image, where)
        item.crop, item.crop_ruler = chosen.crop, chosen.ruler
        return item, chosen.pixels

    def model_input(self, image, where: Localisation | None) -> ModelInput:
        """What the model sees of a decoded upright photo, given the localiser's answer (None: it failed)."""
        size = self.model.input_size
        if self.model.crop == "cell" and where is not None:
            chosen = model_input(image, where, self.model.crop_um, size)
        else:
            chosen = ModelInput(frame_input(image, size), "frame", "none", 0 if where is None else len(where.boxes))
        if self.model.normalise == "none":
            return chosen
        return replace(chosen, pixels=normalise(chosen.pixels, self.model.normalise))

    def _predict(self, arrays: list[np.ndarray], with_cam: bool):
        """Each model input's (chunk, row, card verdict, outputs), INFERENCE_BATCH inputs per onnxruntime call."""
        size = self.model.input_size
        for offset in range(0, len(arrays), INFERENCE_BATCH):
            chunk = np.stack(arrays[offset : offset + INFERENCE_BATCH]).reshape(-1, size, size, 3)
            outputs = self.model.predict(chunk, with_cam=with_cam)
            for row in range(chunk.shape[0]):
                similarity = None if outputs.ood_similarity is None else float(outputs.ood_similarity[row])
                found = verdict(outputs.probabilities[row], self.model.classes, self.model.thresholds, similarity)
                yield chunk, row, found, outputs

    def verdicts(self, arrays: list[np.ndarray]) -> list[Verdict]:
        """The card's verdict of each model input."""
        return [found for _, _, found, _ in self._predict(arrays, with_cam=False)]

    def classify(
        self, uploads: list[Upload | bytes], explain: bool = False, localise: bool = True, one_request: bool = True
    ) -> Outcome:
        """`localise` False: the model card's rule alone (no multiple_cells / no_cell flags), as the card measures (a
        cell model still runs the localiser: its input is the crop).
        `one_request`: the uploads share one request's decode budget (limits.MAX_REQUEST_DECODE_BYTES), as in the
        handler; files on the command line are independent, each within the per-image limit only."""
        start = time.perf_counter()
        items: list[ItemOutcome] = []
        arrays: list[np.ndarray] = []
        positions: list[int] = []
        budget = DecodeBudget() if one_request else None
        for index, upload in enumerate(uploads):
            if isinstance(upload, (bytes, bytearray)):
                upload = Upload(data=bytes(upload))
            item, array = self.decode(upload, index, budget, localise)
            items.append(item)
            if array is not None:
                arrays.append(array)
                positions.append(index)
        locate_ms = round(sum(i.locate_ms for i in items), 3)
        outcome = Outcome(items=items, decode_ms=round(_ms(start) - locate_ms, 3), locate_ms=locate_ms)
        if not arrays:
            return outcome
        start = time.perf_counter()
        predictions = self._predict(arrays, with_cam=explain)
        for position, (chunk, row, found, outputs) in zip(positions, predictions, strict=True):
            item = items[position]
            item.verdict = flag_cell_count(found, item.cells_found, item.crop)
            if explain and outputs.cam is not None:
                item.heatmap = {
                    "label": item.verdict.label,
                    "media_type": "image/png",
                    "width": HEATMAP_SIZE,
                    "height": HEATMAP_SIZE,
                    "data": heatmap_png_base64(chunk[row], outputs.cam[row], item.verdict.label_index),
                }
        outcome.inference_ms = _ms(start)
        for item in items:
            if item.verdict is not None:
                outcome.counts[item.verdict.label] = outcome.counts.get(item.verdict.label, 0) + 1
        return outcome
