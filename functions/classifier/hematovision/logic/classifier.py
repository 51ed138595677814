"""The classification use case shared by the Lambda handler and the CLI: bytes in, verdicts out.

decode + preprocess each image (errors stay per image), one batched onnxruntime call, then the
card's uncertainty rule and optional heatmaps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from hematovision.errors import ClientError
from hematovision.limits import HEATMAP_SIZE, INFERENCE_BATCH, MAX_IMAGE_BYTES
from hematovision.logic.heatmap import heatmap_png_base64
from hematovision.logic.inference import Model
from hematovision.logic.preprocessing import DecodeBudget, decode_for_model, to_model_input
from hematovision.logic.verdict import Verdict, verdict


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

    @property
    def ok(self) -> bool:
        return self.verdict is not None


@dataclass
class Outcome:
    items: list[ItemOutcome]
    decode_ms: float = 0.0
    inference_ms: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


class Classifier:
    def __init__(self, model: Model):
        self.model = model

    def decode(
        self, upload: Upload, index: int, budget: DecodeBudget | None = None
    ) -> tuple[ItemOutcome, np.ndarray | None]:
        item = ItemOutcome(index=index, filename=upload.filename)
        if upload.error is not None:
            item.error = upload.error
            return item, None
        data = upload.data or b""
        if len(data) > MAX_IMAGE_BYTES:
            item.error = ClientError(
                "payload_too_large", f"The image is {len(data)} bytes; at most {MAX_IMAGE_BYTES} are accepted.", 413
            )
            return item, None
        size = self.model.input_size
        try:
            decoded = decode_for_model(data, size=size, budget=budget)
            item.width, item.height = decoded.width, decoded.height
            return item, to_model_input(decoded.image, size)
        except ClientError as error:
            item.error = error
        except MemoryError:
            item.error = ClientError("image_too_large", "The image is too large to decode.", 413)
        except Exception as error:  # Pillow raises many exception types on hostile files
            item.error = ClientError("corrupt_image", f"The image could not be decoded: {type(error).__name__}.", 422)
        return item, None

    def classify(self, uploads: list[Upload | bytes], explain: bool = False) -> Outcome:
        start = time.perf_counter()
        items: list[ItemOutcome] = []
        arrays: list[np.ndarray] = []
        positions: list[int] = []
        budget = DecodeBudget()  # the decode bytes of the whole request (limits.MAX_REQUEST_DECODE_BYTES)
        for index, upload in enumerate(uploads):
            if isinstance(upload, (bytes, bytearray)):
                upload = Upload(data=bytes(upload))
            item, array = self.decode(upload, index, budget)
            items.append(item)
            if array is not None:
                arrays.append(array)
                positions.append(index)
        outcome = Outcome(items=items, decode_ms=_ms(start))
        if not arrays:
            return outcome
        start = time.perf_counter()
        size = self.model.input_size
        for offset in range(0, len(arrays), INFERENCE_BATCH):
            chunk = np.stack(arrays[offset : offset + INFERENCE_BATCH]).reshape(-1, size, size, 3)
            outputs = self.model.predict(chunk, with_cam=explain)
            for row, position in enumerate(positions[offset : offset + INFERENCE_BATCH]):
                item = items[position]
                similarity = None if outputs.ood_similarity is None else float(outputs.ood_similarity[row])
                item.verdict = verdict(
                    outputs.probabilities[row], self.model.classes, self.model.thresholds, similarity
                )
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
