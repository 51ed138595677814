"""The ONNX model: card + onnxruntime session, created once per process, and batched prediction."""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from hematovision import config
from hematovision.logic.cell_crop import NORMALISATIONS
from hematovision.logic.localiser import LOCALISER_VERSION
from hematovision.logic.preprocessing import DEFAULT_INPUT_SIZE

INPUT_NAME = "image"
OUTPUT_PROBABILITIES = "probabilities"
OUTPUT_CAM = "cam"
OUTPUT_OOD = "ood_similarity"
# Written into the Lambda package's model directory by the build (functions/classifier/verify_model.py), which
# checked the file's sha256 against the card: {"sha256", "bytes", "crc32"}.
BUILD_CHECK_FILE = "build_check.json"
# How a model is run (card["input"]["test_time"]; absent = "none"): "none", one pass; "mirror", the outputs averaged
# over each input and its left-right mirror (a second pass per input: twice the inference time).
TEST_TIMES = ("none", "mirror")


def with_mirrors(batch: np.ndarray) -> np.ndarray:
    """test_time "mirror": the batch [N, H, W, C] followed by each image's left-right mirror ([2N, H, W, C])."""
    return np.concatenate([batch, batch[:, :, ::-1]])


def mean_of_mirrors(values: np.ndarray) -> np.ndarray:
    """The outputs of a with_mirrors batch, each image's averaged with its mirror's ([2N, ...] -> [N, ...])."""
    n = len(values) // 2
    return (values[:n] + values[n:]) / 2


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


def crc32_file(path: Path) -> int:
    crc = 0
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            crc = zlib.crc32(chunk, crc)
    return crc


def verify_model_file(onnx_path: Path, expected_sha256: str) -> None:
    """Refuse a model file that is not the one its card names (`expected_sha256`).

    In the Lambda package the build has compared the file's sha256 with the card and recorded it with the file's
    size and CRC-32 (BUILD_CHECK_FILE): the record must name the card's sha256, and the file must still have that
    size and CRC-32 (~3 ms, where the sha256 takes ~12 ms of the cold start). Elsewhere the file is hashed."""
    record_path = onnx_path.with_name(BUILD_CHECK_FILE)
    if not record_path.is_file():
        if sha256_file(onnx_path) != expected_sha256:
            raise ModelLoadError(f"{onnx_path.name} does not match the sha256 stated in the model card.")
        return
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"Unreadable {record_path.name}: {error}") from None
    if record.get("sha256") != expected_sha256:
        raise ModelLoadError(f"{onnx_path.name} was verified against another sha256 than the model card's.")
    if onnx_path.stat().st_size != record.get("bytes") or crc32_file(onnx_path) != record.get("crc32"):
        raise ModelLoadError(f"{onnx_path.name} changed since the build verified it against the model card's sha256.")


def session_options(intra_op_threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # ENABLE_ALL: the NCHWc layout and fused Conv+Clip; ~2.4x faster than BASIC/EXTENDED here (make bench, levers)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Pool threads that spin between runs burn the CPU quota Lambda grants in proportion to memory: with 2 threads
    # under a 3008 MB quota, spinning on cost ~1.6x the CPU per run and ~1.9x the duration (bench levers and
    # bench-power rows). No effect with 1 thread (no pool threads).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only
    return options


class Model:
    """A loaded model. `predict` is thread-safe (onnxruntime sessions allow concurrent run()).

    `card`: the model card as a dict, instead of reading model_card.json from `model_dir` (export/ evaluates a
    freshly exported .onnx before its card exists). `thresholds`: the uncertainty thresholds to apply instead of
    the card's (and of the HEMATOVISION_UNCERTAINTY_THRESHOLD override), e.g. while choosing them.
    `crop` ("cell" | "frame") and `crop_um` (None for "frame"): the model's input, from the card (see _crop);
    `normalise`: its colour normalisation (see _normalise).
    """

    def __init__(
        self,
        model_dir: Path | str,
        intra_op_threads: int | None = None,
        verify_sha256: bool = True,
        thresholds: Thresholds | None = None,
        card: dict | None = None,
    ):
        model_dir = Path(model_dir)
        onnx_path = model_dir / config.MODEL_FILE
        card_path = model_dir / config.CARD_FILE
        if not onnx_path.is_file() or (card is None and not card_path.is_file()):
            raise ModelLoadError(
                f"No model in {model_dir}: expected {config.MODEL_FILE} and {config.CARD_FILE} "
                f"(set {config.MODEL_DIR_ENV} to use another directory)."
            )
        if card is None:
            try:
                card = json.loads(card_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise ModelLoadError(f"Unreadable model card {card_path}: {error}") from None
        self.card: dict = card
        classes = self.card.get("classes")
        if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
            raise ModelLoadError("The model card has no list of class names under 'classes'.")
        self.classes: list[str] = list(classes)
        self.name: str = str(self.card.get("name", "hematovision"))
        self.version: str = str(self.card.get("version", "0.0.0"))
        self.crop, self.crop_um = self._crop()  # before the session: a card that cannot be served fails fast
        self.normalise = self._normalise()
        self.test_time = self._test_time()
        expected = self.card.get("sha256")
        started = time.perf_counter()
        if verify_sha256 and expected:
            verify_model_file(onnx_path, expected)
        checked = time.perf_counter()
        self.threads = intra_op_threads or config.intra_op_threads()
        self.session = ort.InferenceSession(
            str(onnx_path), sess_options=session_options(self.threads), providers=["CPUExecutionProvider"]
        )
        # seconds of the two costly steps of a load, for the cold-start benchmark (bench/serving_child.py)
        self.load_seconds = {"file check": checked - started, "session creation": time.perf_counter() - checked}
        inputs = {i.name: i for i in self.session.get_inputs()}
        if INPUT_NAME not in inputs:
            raise ModelLoadError(f"The ONNX model has no input named {INPUT_NAME!r}.")
        outputs = {o.name for o in self.session.get_outputs()}
        if OUTPUT_PROBABILITIES not in outputs:
            raise ModelLoadError(f"The ONNX model has no output named {OUTPUT_PROBABILITIES!r}.")
        self.input_size = self._input_size(inputs[INPUT_NAME].shape)
        self.has_cam = OUTPUT_CAM in outputs
        self.has_ood = OUTPUT_OOD in outputs
        self.thresholds = thresholds if thresholds is not None else self._thresholds()

    def _input_size(self, graph_shape: list) -> int:
        """The side of the square model input: the card's input shape [N, size, size, 3], else the graph's, else
        DEFAULT_INPUT_SIZE. A card that contradicts the graph is refused at load, not at the first request."""
        graph_sides = [d for d in graph_shape[1:3] if isinstance(d, int)] if len(graph_shape) == 4 else []
        shape = (self.card.get("input") or {}).get("shape")
        if shape is not None:
            if not (isinstance(shape, list) and len(shape) == 4 and shape[3] == 3):
                raise ModelLoadError(f"The model card's input shape {shape} is not [N, size, size, 3].")
            sides = shape[1:3]
            if not all(isinstance(side, int) and side > 0 for side in sides) or sides[0] != sides[1]:
                raise ModelLoadError(f"The model card's input shape {shape} is not square.")
            if any(side != sides[0] for side in graph_sides):
                raise ModelLoadError(f"The model card's input shape {shape} differs from the ONNX input {graph_shape}.")
            return sides[0]
        if len(graph_sides) == 2 and graph_sides[0] == graph_sides[1]:
            return graph_sides[0]
        return DEFAULT_INPUT_SIZE

    def _crop(self) -> tuple[str, float | None]:
        """What the model sees (card["input"]["crop"]): "frame", the whole photo resized (the default: model 1.2.0's
        cards say nothing), or "cell", the best cell's crop of crop_um micrometres (logic/cell_crop.py). A cell
        model learned one localiser's boxes and scale, so a card from another localiser version is refused."""
        spec = self.card.get("input") or {}
        if "crop" not in spec and "crop" in (self.card.get("training") or {}):
            # a card written before the crop contract, of a model trained on crops: served on frames, it would be
            # confidently wrong, so it is refused until its card is rewritten
            raise ModelLoadError("The model card's training section describes cell crops but its input has no crop.")
        crop = spec.get("crop", "frame")
        if crop == "frame":
            return "frame", None
        if crop != "cell":
            raise ModelLoadError(f"The model card's input crop {crop!r} is neither 'cell' nor 'frame'.")
        crop_um = spec.get("crop_um")
        if isinstance(crop_um, bool) or not isinstance(crop_um, (int, float)) or not crop_um > 0:
            raise ModelLoadError(f"The model card's input crop is 'cell' without a positive crop_um ({crop_um!r}).")
        version = (self.card.get("localiser") or {}).get("version")
        if version != LOCALISER_VERSION:
            raise ModelLoadError(
                f"The model was trained on the crops of localiser version {version!r}; this code's localiser is "
                f"version {LOCALISER_VERSION!r}."
            )
        return "cell", float(crop_um)

    def _normalise(self) -> str:
        """The colour normalisation of the model input (card["input"]["normalise"], logic/cell_crop.normalise):
        "none" (the default: model 1.2.0's card says nothing) or "background". An unknown one is refused: serving
        a model without the normalisation it learned with would shift every colour it knows."""
        normalisation = (self.card.get("input") or {}).get("normalise", "none")
        if normalisation not in NORMALISATIONS:
            raise ModelLoadError(
                f"The model card's input normalise {normalisation!r} is not one of {', '.join(NORMALISATIONS)}."
            )
        return normalisation

    def _test_time(self) -> str:
        """How the model is run (card["input"]["test_time"]): "none" (the default) or "mirror". An unknown one is
        refused: the card's thresholds were calibrated on outputs made that way."""
        test_time = (self.card.get("input") or {}).get("test_time", "none")
        if test_time not in TEST_TIMES:
            raise ModelLoadError(
                f"The model card's input test_time {test_time!r} is not one of {', '.join(TEST_TIMES)}."
            )
        return test_time

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
        """batch: uint8 [N, input_size, input_size, 3] RGB. With test_time "mirror", the probabilities and the OOD
        score are the means over each input and its left-right mirror (one run of 2N); the CAM is the input's own."""
        batch = np.ascontiguousarray(batch, dtype=np.uint8)
        size = self.input_size
        if batch.ndim != 4 or batch.shape[1:] != (size, size, 3):
            raise ValueError(f"expected a uint8 batch [N, {size}, {size}, 3], got {batch.shape}")
        names = [OUTPUT_PROBABILITIES]
        if self.has_ood:
            names.append(OUTPUT_OOD)
        if with_cam and self.has_cam:
            names.append(OUTPUT_CAM)
        n = len(batch)
        if self.test_time == "mirror":
            batch = with_mirrors(batch)
        values = dict(zip(names, self.session.run(names, {INPUT_NAME: batch}), strict=True))
        probabilities = np.asarray(values[OUTPUT_PROBABILITIES], dtype=np.float32)
        similarity = None if OUTPUT_OOD not in values else np.asarray(values[OUTPUT_OOD], dtype=np.float32).reshape(-1)
        cam = values.get(OUTPUT_CAM)
        if self.test_time == "mirror":
            probabilities = mean_of_mirrors(probabilities)
            similarity = None if similarity is None else mean_of_mirrors(similarity)
            cam = None if cam is None else cam[:n]
        return Outputs(probabilities=probabilities, ood_similarity=similarity, cam=cam)
