"""The MobileNetV2 backbone: build it, load the offline ImageNet weights by layer name, freeze BatchNorm.

The classifier around it (cached-feature training, head) is assembled in export/train.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np

DEFAULT_WEIGHTS = (
    Path(__file__).resolve().parents[1].parent / "shared" / "weights" / "mobilenet_v2_1.0_224_from_coral_ptq.npz"
)


def load_npz_weights(model, npz_path: Path) -> int:
    """Set weights by Keras layer name from the offline npz ("<layer>/<i>" keys). Returns layers loaded."""
    arrays = np.load(npz_path)
    by_layer: dict[str, dict[int, np.ndarray]] = {}
    for key in arrays.files:
        name, index = key.rsplit("/", 1)
        by_layer.setdefault(name, {})[int(index)] = arrays[key]
    loaded = 0
    for layer in model.layers:
        if layer.name in by_layer and layer.weights:
            weights = by_layer[layer.name]
            layer.set_weights([weights[i] for i in range(len(weights))])
            loaded += 1
    if loaded == 0:
        raise ValueError(f"No layer of the model matched a key in {npz_path}")
    return loaded


def build_backbone(weights: str | Path | None, input_size: int):
    """MobileNetV2 1.0 without top. weights: path to the offline npz, "imagenet" (needs internet) or None."""
    import keras

    shape = (input_size, input_size, 3)
    if weights == "imagenet":
        return keras.applications.MobileNetV2(input_shape=shape, include_top=False, weights="imagenet")
    backbone = keras.applications.MobileNetV2(input_shape=shape, include_top=False, weights=None)
    if weights is not None:
        load_npz_weights(backbone, Path(weights))
    return backbone


def freeze_batchnorm(backbone) -> None:
    """The offline weights have BN folded into the convolutions (BN = pass-through with no real statistics).

    Keras updated BN moving statistics during fit even under base(x, training=False) while the base was
    trainable (see shared/weights/README.md), so every BN layer is frozen explicitly.
    """
    import keras

    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
