"""The ONNX model: card + onnxruntime session, created once per process, and batched prediction."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from hematovision.logic import config
from hematovision.logic.preprocessing import INPUT_SIZE

INPUT_NAME = "image"
OUTPUT_PROBABILITIES = "probabilities"
OUTPUT_CAM = "cam"
OUTPUT_OOD = "ood_similarity"


class ModelLoadError(RuntimeError):
    """The model directory does not hold a usable model (raised at init, never per request)."""


@dataclass(frozen=True)
class Thresholds:
    confidence: float
    ood_similarity: float | None


@dataclass(frozen=True)
class Outputs:
    probabilities: np.ndarray  # float32 [N, C]
    ood_similarity: np.ndarray | None  # float32 [N]
    cam: np.ndarray | None  # float32 [N, h, w, C]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def session_options(intra_op_threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    return options


class Model:
    """A loaded model. `predict` is thread-safe (onnxruntime sessions allow concurrent run())."""

    def __init__(self, model_dir: Path | str, intra_op_threads: int | None = None, verify_sha256: bool = True):
        model_dir = Path(model_dir)
        onnx_path = model_dir / config.MODEL_FILE
        card_path = model_dir / config.CARD_FILE
        if not onnx_path.is_file() or not card_path.is_file():
            raise ModelLoadError(
                f"No model in {model_dir}: expected {config.MODEL_FILE} and {config.CARD_FILE} "
                f"(set {config.MODEL_DIR_ENV} to use another directory)."
            )
        try:
            self.card: dict = json.loads(card_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ModelLoadError(f"Unreadable model card {card_path}: {error}") from None
        classes = self.card.get("classes")
        if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
            raise ModelLoadError("The model card has no list of class names under 'classes'.")
        self.classes: list[str] = list(classes)
        self.name: str = str(self.card.get("name", "hematovision"))
        self.version: str = str(self.card.get("version", "0.0.0"))
        expected = self.card.get("sha256")
        if verify_sha256 and expected and sha256_file(onnx_path) != expected:
            raise ModelLoadError(f"{onnx_path.name} does not match the sha256 stated in the model card.")
        self.threads = intra_op_threads or config.intra_op_threads()
        self.session = ort.InferenceSession(
            str(onnx_path), sess_options=session_options(self.threads), providers=["CPUExecutionProvider"]
        )
        inputs = {i.name: i for i in self.session.get_inputs()}
        if INPUT_NAME not in inputs:
            raise ModelLoadError(f"The ONNX model has no input named {INPUT_NAME!r}.")
        outputs = {o.name for o in self.session.get_outputs()}
        if OUTPUT_PROBABILITIES not in outputs:
            raise ModelLoadError(f"The ONNX model has no output named {OUTPUT_PROBABILITIES!r}.")
        self.has_cam = OUTPUT_CAM in outputs
        self.has_ood = OUTPUT_OOD in outputs
        self.thresholds = self._thresholds()

    def _thresholds(self) -> Thresholds:
        uncertainty = self.card.get("uncertainty") or {}
        confidence = uncertainty.get("confidence_threshold", uncertainty.get("threshold", 0.0))
        override = config.uncertainty_threshold_override()
        if override is not None:
            confidence = override
        ood = uncertainty.get("ood_similarity_threshold") if self.has_ood else None
        return Thresholds(confidence=float(confidence or 0.0), ood_similarity=None if ood is None else float(ood))

    @property
    def summary(self) -> dict:
        return {"name": self.name, "version": self.version}

    def predict(self, batch: np.ndarray, with_cam: bool = False) -> Outputs:
        """batch: uint8 [N, 224, 224, 3] RGB."""
        batch = np.ascontiguousarray(batch, dtype=np.uint8)
        if batch.ndim != 4 or batch.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
            raise ValueError(f"expected a uint8 batch [N, {INPUT_SIZE}, {INPUT_SIZE}, 3], got {batch.shape}")
        names = [OUTPUT_PROBABILITIES]
        if self.has_ood:
            names.append(OUTPUT_OOD)
        if with_cam and self.has_cam:
            names.append(OUTPUT_CAM)
        values = dict(zip(names, self.session.run(names, {INPUT_NAME: batch})))
        return Outputs(
            probabilities=np.asarray(values[OUTPUT_PROBABILITIES], dtype=np.float32),
            ood_similarity=None
            if OUTPUT_OOD not in values
            else np.asarray(values[OUTPUT_OOD], dtype=np.float32).reshape(-1),
            cam=values.get(OUTPUT_CAM),
        )
