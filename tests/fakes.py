"""Test stand-ins: a tiny ONNX model with RANDOM weights honouring the real artifact contract, and images.

Contract (see README / model card): input `image` uint8 [N,224,224,3] RGB; outputs `probabilities`
float32 [N,4] (softmax), `cam` float32 [N,7,7,4], `ood_similarity` float32 [N]. Never assert the
labels this model predicts: its weights are random.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import sys
from pathlib import Path

import numpy as np

CLASSES = ["EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL"]


def build_fake_model(directory: Path, seed: int = 0, features: int = 16, version: str = "0.0.0-random") -> Path:
    """Write hematovision.onnx + model_card.json into `directory` and return it."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    classes = len(CLASSES)

    def const(name, array):
        return numpy_helper.from_array(np.asarray(array), name=name)

    initializers = [
        const("scale", np.float32(1 / 127.5)),
        const("one", np.float32(1.0)),
        const("grid", np.array([-1, 7, 32, 7, 32, 3], dtype=np.int64)),
        const("w1", rng.normal(0, 1.5, (3, features)).astype(np.float32)),
        const("b1", rng.normal(0, 0.5, (features,)).astype(np.float32)),
        const("w2", rng.normal(0, 1.0, (features, classes)).astype(np.float32)),
        const("b2", rng.normal(0, 0.2, (classes,)).astype(np.float32)),
        const("centroids_t", _unit_rows(rng.normal(0, 1, (classes, features))).T.astype(np.float32)),
        const("eps", np.float32(1e-6)),
    ]
    nodes = [
        helper.make_node("Cast", ["image"], ["x_float"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["x_float", "scale"], ["x_scaled"]),
        helper.make_node("Sub", ["x_scaled", "one"], ["x"]),  # [-1, 1] like MobileNetV2
        helper.make_node("Reshape", ["x", "grid"], ["x_grid"]),
        helper.make_node("ReduceMean", ["x_grid"], ["pooled_pixels"], axes=[2, 4], keepdims=0),  # [N,7,7,3]
        helper.make_node("MatMul", ["pooled_pixels", "w1"], ["h_pre"]),
        helper.make_node("Add", ["h_pre", "b1"], ["h_bias"]),
        helper.make_node("Relu", ["h_bias"], ["features"]),  # [N,7,7,F]
        helper.make_node("MatMul", ["features", "w2"], ["cam"]),  # [N,7,7,4]
        helper.make_node("ReduceMean", ["cam"], ["logits_pre"], axes=[1, 2], keepdims=0),
        helper.make_node("Add", ["logits_pre", "b2"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
        helper.make_node("ReduceMean", ["features"], ["pooled"], axes=[1, 2], keepdims=0),  # [N,F]
        helper.make_node("ReduceL2", ["pooled"], ["norm"], axes=[1], keepdims=1),
        helper.make_node("Add", ["norm", "eps"], ["norm_eps"]),
        helper.make_node("Div", ["pooled", "norm_eps"], ["unit"]),
        helper.make_node("MatMul", ["unit", "centroids_t"], ["similarities"]),
        helper.make_node("ReduceMax", ["similarities"], ["ood_similarity"], axes=[1], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "hematovision_random",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", 224, 224, 3])],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", classes]),
            helper.make_tensor_value_info("cam", TensorProto.FLOAT, ["N", 7, 7, classes]),
            helper.make_tensor_value_info("ood_similarity", TensorProto.FLOAT, ["N"]),
        ],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="hematovision-tests")
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx_path = directory / "hematovision.onnx"
    onnx_path.write_bytes(model.SerializeToString())
    card = {
        "name": "hematovision-random-test-model",
        "version": version,
        "sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
        "classes": CLASSES,
        "input": {
            "name": "image",
            "dtype": "uint8",
            "shape": ["N", 224, 224, 3],
            "colour": "RGB",
            "resize": "bilinear",
        },
        "uncertainty": {
            "confidence_threshold": 0.5,
            "ood_similarity_threshold": 0.2,
            "rule": "uncertain = max probability < confidence_threshold OR ood_similarity < ood_similarity_threshold",
        },
        "metrics": {},
        "intended_use": "TESTS ONLY: random weights. Decision support, not a diagnosis.",
        "opaque_extra": {"kept": "as-is"},
    }
    (directory / "model_card.json").write_text(json.dumps(card, indent=2), encoding="utf-8")
    return directory


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def synthetic_cell(
    width: int = 320, height: int = 240, seed: int = 0, fmt: str = "JPEG", mode: str = "RGB", **save
) -> bytes:
    """A smear-like picture: pink background, red blobs and one purple 'nucleus'. Deterministic."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (width, height), (236, 200, 210))
    draw = ImageDraw.Draw(image)
    for _ in range(max(4, width * height // 4000)):
        x, y, r = rng.integers(0, width), rng.integers(0, height), rng.integers(6, 18)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=(214, 120, 140))
    cx, cy, r = width // 2, height // 2, min(width, height) // 5
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(120, 60, 150))
    image = image.filter(ImageFilter.GaussianBlur(1.2))
    if mode != "RGB":
        image = image.convert(mode)
    buffer = io.BytesIO()
    if fmt == "JPEG":
        save.setdefault("quality", 85)
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def synthetic_image_list(folder, count: int):
    """`count` synthetic cell JPEGs in `folder` and the images.txt listing them (a bench child's --images-file)."""
    paths = []
    for seed in range(count):
        path = folder / f"cell{seed}.jpg"
        path.write_bytes(synthetic_cell(seed=seed))
        paths.append(str(path))
    listing = folder / "images.txt"
    listing.write_text("\n".join(paths))
    return listing


def encode_multipart(
    fields: list[tuple[str, str | None, str, bytes]], boundary: str = "hematovisionBoundary7MA4YWxk"
) -> tuple[str, bytes]:
    """[(name, filename, content_type, data)] -> (Content-Type header, body), as browsers/curl -F send it."""
    body = b""
    for name, filename, content_type, data in fields:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += (
            f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: {content_type}\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    body += f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body


def load_handler_module(model_dir: Path):
    """hematovision.handlers.api (re)loaded with `model_dir`, as in a Lambda init; restores the environment after."""
    previous = os.environ.get("HEMATOVISION_MODEL_DIR")
    os.environ["HEMATOVISION_MODEL_DIR"] = str(model_dir)
    module = sys.modules.get("hematovision.handlers.api")
    module = importlib.reload(module) if module else importlib.import_module("hematovision.handlers.api")
    yield module
    if previous is None:
        os.environ.pop("HEMATOVISION_MODEL_DIR", None)
    else:
        os.environ["HEMATOVISION_MODEL_DIR"] = previous


def record_model_inputs(model, monkeypatch) -> list[np.ndarray]:
    """Every batch `model` is asked to classify from now on (its real predict still answers): what the model saw."""
    seen: list[np.ndarray] = []
    predict = model.predict

    def spy(batch, with_cam=False):
        seen.append(np.array(batch))
        return predict(batch, with_cam=with_cam)

    monkeypatch.setattr(model, "predict", spy)
    return seen
