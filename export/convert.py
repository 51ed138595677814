"""Keras -> ONNX with tf2onnx: uint8 input with the scaling inside, outputs probabilities, cam, ood_similarity."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

ONNX_NAME = "hematovision.onnx"
OPSET = 17
OUTPUT_NAMES = ("probabilities", "cam", "ood_similarity")


def _custom_layers():
    import keras
    from keras import ops

    class ClassActivationMap(keras.layers.Layer):
        """Per-class activation maps: the classifier's weights applied at every position of the feature map.

        With global average pooling before the Dense layer, the spatial mean of a class's map plus its bias is
        exactly that class's logit, so the maps explain the prediction rather than approximate it.
        """

        def __init__(self, kernel: np.ndarray, **kwargs):
            super().__init__(**kwargs)
            self.kernel = np.asarray(kernel, dtype=np.float32)

        def call(self, features):
            return ops.einsum("nhwf,fc->nhwc", features, ops.convert_to_tensor(self.kernel))

    class CentroidSimilarity(keras.layers.Layer):
        """Cosine similarity of the pooled features to the nearest class centroid of the training data."""

        def __init__(self, centroids: np.ndarray, **kwargs):
            super().__init__(**kwargs)
            self.centroids = np.asarray(centroids, dtype=np.float32)

        def call(self, pooled):
            norm = ops.sqrt(ops.sum(ops.square(pooled), axis=-1, keepdims=True))
            unit = pooled / ops.maximum(norm, 1e-12)
            return ops.max(ops.matmul(unit, ops.transpose(ops.convert_to_tensor(self.centroids))), axis=-1)

    return ClassActivationMap, CentroidSimilarity


def build_export_model(work: Path):
    """The served graph: uint8 [N,S,S,3] RGB -> {probabilities [N,4], cam [N,S/32,S/32,4], ood_similarity [N]},
    S the classifier's input size."""
    import keras
    from keras import ops

    classifier = keras.models.load_model(work / "classifier.keras")
    centroids = np.load(work / "centroids.npy")
    backbone = next(layer for layer in classifier.layers if isinstance(layer, keras.Model))
    dense = classifier.get_layer("classifier")
    ClassActivationMap, CentroidSimilarity = _custom_layers()

    image = keras.Input(tuple(classifier.input_shape[1:]), dtype="uint8", name="image")
    scaled = classifier.get_layer("scale_to_mobilenet")(ops.cast(image, "float32"))
    features = backbone(scaled, training=False)
    pooled = classifier.get_layer("pool")(features)
    outputs = {
        "probabilities": dense(pooled),
        "cam": ClassActivationMap(dense.get_weights()[0], name="cam")(features),
        "ood_similarity": CentroidSimilarity(centroids, name="ood_similarity")(pooled),
    }
    return keras.Model(image, outputs, name="hematovision_export")


def rename_outputs(model_proto, renames: dict[str, str]) -> None:
    for node in model_proto.graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    for output in model_proto.graph.output:
        output.name = renames.get(output.name, output.name)


def convert(work: Path, out: Path) -> Path:
    import onnx
    import tensorflow as tf
    import tf2onnx

    started = time.time()
    export_model = build_export_model(work)
    spec = (tf.TensorSpec(export_model.input_shape, tf.uint8, name="image"),)

    @tf.function(input_signature=spec)
    def serve(image):
        result = export_model(image, training=False)
        return [result[name] for name in OUTPUT_NAMES]

    model_proto, _ = tf2onnx.convert.from_function(serve, input_signature=spec, opset=OPSET)
    produced = [output.name for output in model_proto.graph.output]
    rename_outputs(model_proto, dict(zip(produced, OUTPUT_NAMES, strict=True)))
    if [i.name for i in model_proto.graph.input] != ["image"]:
        raise RuntimeError(f"unexpected ONNX inputs {[i.name for i in model_proto.graph.input]}")
    model_proto.producer_name = "hematovision-export (tf2onnx)"
    onnx.checker.check_model(model_proto)
    out.mkdir(parents=True, exist_ok=True)
    path = out / ONNX_NAME
    onnx.save(model_proto, path)
    (work / "convert_report.json").write_text(
        json.dumps(
            {
                "opset": OPSET,
                "tf2onnx": tf2onnx.__version__,
                "onnx": onnx.__version__,
                "tensorflow": tf.__version__,
                "bytes": path.stat().st_size,
                "seconds": round(time.time() - started, 1),
            },
            indent=2,
        )
    )
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)", flush=True)
    return path
