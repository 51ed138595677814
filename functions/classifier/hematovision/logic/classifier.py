"""The classification use case shared by the Lambda handler and the CLI: bytes in, verdicts out.

decode + preprocess each image (errors stay per image), count its white cells (logic/localiser.py), one batched
onnxruntime call, then the card's uncertainty rule, the localiser's flags (more than one white cell, or none: the
photo is not one cell's frame; see verdict.flag_cell_count) and optional heatmaps. Model 1.2.0 still sees the whole
frame: only the flags come from the localiser.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from hematovision.errors import ClientError
from hematovision.limits import HEATMAP_SIZE, INFERENCE_BATCH, MAX_IMAGE_BYTES
from hematovision.logic.heatmap import heatmap_png_base64
from hematovision.logic.inference import Model
from hematovision.logic.localiser import locate
from hematovision.logic.preprocessing import DecodeBudget, DecodedImage, decode_for_model, to_model_input
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


def count_cells(decoded: DecodedImage) -> int | None:
    """White cells the localiser finds in a decoded photo; None when it fails (the classify answer stands, unflagged:
    the flags are advice about the photo, and a localiser fault must not fail a classification)."""
    try:
        return len(locate(decoded.image).boxes)
    except Exception:
        return None


class Classifier:
    def __init__(self, model: Model):
        self.model = model

    def decode_upload(
        self, upload: Upload, size: int | None = None, budget: DecodeBudget | None = None
    ) -> DecodedImage:
        """The upload's image, upright RGB (large ones reduced, both sides >= 2 x size), or a ClientError."""
        if upload.error is not None:
            raise upload.error
        data = upload.data or b""
        if len(data) > MAX_IMAGE_BYTES:
            raise ClientError(
                "payload_too_large", f"The image is {len(data)} bytes; at most {MAX_IMAGE_BYTES} are accepted.", 413
            )
        try:
            return decode_for_model(data, size=size or self.model.input_size, budget=budget)
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
        if localise:
            start = time.perf_counter()
            item.cells_found = count_cells(decoded)
            item.locate_ms = _ms(start)
        return item, to_model_input(decoded.image, self.model.input_size)

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
        """`localise` False: the model card's rule alone (no multiple_cells / no_cell flags), as the card measures.
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
            item.verdict = flag_cell_count(found, item.cells_found)
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
