"""Int8 static quantization of the served ONNX model (onnxruntime.quantization), run in the serving venv.

    python -m bench.quantize --model-dir functions/classifier/model --out build/bench/int8 [--calibration 200]

Calibration: `--calibration` training images, half from bccd_train and half from pbc_train (export/data.py's
splits, stratified by class, a fixed choice by file-name hash), through the serving Classifier's model input (the
frame at the model's input size, or the cell crop for a cell model, as the card says). Never a
test split. Output: OUT/hematovision.onnx + OUT/model_card.json (a copy of the fp32 card with the int8 file's
sha256 and a `quantization` section), loadable by hematovision.logic.inference.Model.

Recipe (see docs/benchmarks.md): QDQ format; the backbone's Conv, Clip (ReLU6) and Add (residual) ops - nearly
all the FLOPs - while the head (pooling, the Dense layer, the class activation map and the centroid similarity)
stays float so the uncertainty rule keeps its inputs; weights int8 per channel, activations uint8 with MinMax
ranges, full 8-bit weights (no reduce_range).
Chosen on a validation split (every third image of bccd_val, n=418; never a test split), committed model 1.0.0,
fp32 99.28%: Conv+Clip+Add MinMax 84.69%; the same with reduce_range (7-bit weights, the usual advice for x86
without VNNI) 65.07%; with Percentile 99.99 calibration and reduce_range 64.11%; Conv only with reduce_range
49.52%. Speed on the smoke model (1 thread, session.run median, a loaded machine): fp32 21.0 ms; Conv only
28.4 ms (a Q/DQ pair around every residual Add and ReLU6); Conv+Clip+Add 23.0 ms with or without reduce_range;
every op 22.9 ms; QOperator and per-tensor no faster than Conv only; u8u8 per-channel fails to run (QLinearConv
needs one weight zero point). Static post-training quantization of this fine-tuned MobileNetV2 loses too much
accuracy either way; quantization-aware training or keeping the most sensitive layers float would be next.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from bench.common import log

DEFAULT_OPS = ("Conv", "Clip", "Add")


def calibration_samples(data_root: Path, count: int) -> list[tuple[Path, str]]:
    """`count` (path, split name) pairs: count/2 from bccd_train and from pbc_train, evenly over the classes."""
    from export.data import CLASSES, all_splits

    splits = all_splits(Path(data_root))
    chosen: list[tuple[Path, str]] = []
    names = ("bccd_train", "pbc_train")
    for name_index, name in enumerate(names):
        share = count // len(names) + (1 if name_index < count % len(names) else 0)
        for label in range(len(CLASSES)):
            pool = sorted(
                (s for s in splits[name] if s.label == label),
                key=lambda s: hashlib.sha256(s.path.name.encode()).hexdigest(),
            )
            take = share // len(CLASSES) + (1 if label < share % len(CLASSES) else 0)
            chosen += [(s.path, name) for s in pool[:take]]
    for forbidden in ("bccd_test", "bccd_test_simple", "pbc_test", "bccd_val", "pbc_val"):
        held_out = {s.path for s in splits[forbidden]}
        if any(path in held_out for path, _ in chosen):
            raise AssertionError(f"calibration set overlaps {forbidden}")
    return chosen


class ImageReader:
    """onnxruntime CalibrationDataReader over preprocessed uint8 images, one image per call."""

    def __init__(self, paths: list[Path], model_dir: Path, input_name: str = "image"):
        from hematovision.logic.classifier import Classifier, Upload
        from hematovision.logic.inference import Model

        # what the serving path feeds this model: the frame at its input size, or the cell crop for a cell model
        classifier = Classifier(Model(model_dir, intra_op_threads=1))
        inputs = [classifier.decode(Upload(data=Path(p).read_bytes()), 0, localise=False)[1] for p in paths]
        self._arrays = [x[None] for x in inputs if x is not None]
        self._input = input_name
        self._index = 0

    def get_next(self):
        if self._index >= len(self._arrays):
            return None
        self._index += 1
        return {self._input: self._arrays[self._index - 1]}

    def rewind(self):
        self._index = 0


def quantize(
    model_dir: Path,
    out: Path,
    data_root: Path,
    calibration: int = 200,
    op_types=DEFAULT_OPS,
    per_channel: bool = True,
    reduce_range: bool = False,
    fmt: str = "QDQ",
) -> dict:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from hematovision.logic.inference import sha256_file

    started = time.perf_counter()
    model_dir, out = Path(model_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    source = model_dir / "hematovision.onnx"
    card = json.loads((model_dir / "model_card.json").read_text(encoding="utf-8"))
    samples = calibration_samples(data_root, calibration)
    per_split = {name: sum(1 for _, s in samples if s == name) for name in ("bccd_train", "pbc_train")}
    log(
        f"int8: calibrating on {len(samples)} training images "
        f"({per_split['bccd_train']} bccd_train, {per_split['pbc_train']} pbc_train)"
    )
    prepared = out / "prepared.onnx"
    # graph optimisation + ONNX shape inference; symbolic shape inference would need sympy (not installed)
    quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
    target = out / "hematovision.onnx"
    quantize_static(
        str(prepared),
        str(target),
        ImageReader([p for p, _ in samples], model_dir),
        quant_format=QuantFormat.QDQ if fmt == "QDQ" else QuantFormat.QOperator,
        op_types_to_quantize=list(op_types),
        per_channel=per_channel,
        reduce_range=reduce_range,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )
    prepared.unlink(missing_ok=True)
    digest = sha256_file(target)
    recipe = {
        "tool": "onnxruntime.quantization.quantize_static",
        "format": fmt,
        "op_types": list(op_types),
        "per_channel": per_channel,
        "reduce_range": reduce_range,
        "activations": "uint8 (MinMax)",
        "weights": "int8",
        "calibration": {
            "images": len(samples),
            "splits": sorted({s for _, s in samples}),
            "files_sha256": hashlib.sha256("\n".join(sorted(p.name for p, _ in samples)).encode()).hexdigest(),
        },
        "source_sha256": card.get("sha256"),
        "source_bytes": source.stat().st_size,
        "bytes": target.stat().st_size,
        "seconds": round(time.perf_counter() - started, 1),
    }
    int8_card = dict(card)
    int8_card.update(
        sha256=digest,
        onnx_bytes=target.stat().st_size,
        version=f"{card.get('version', '0.0.0')}+int8",
        quantization=recipe,
    )
    int8_card["metrics"] = {}  # the fp32 metrics do not describe this file; bench/ reports the int8 ones
    (out / "model_card.json").write_text(json.dumps(int8_card, indent=2), encoding="utf-8")
    (out / "calibration.txt").write_text("\n".join(f"{s}\t{p}" for p, s in samples) + "\n", encoding="utf-8")
    log(
        f"int8: wrote {target} ({recipe['bytes'] / 1e6:.2f} MB, fp32 {recipe['source_bytes'] / 1e6:.2f} MB) "
        f"in {recipe['seconds']} s"
    )
    return recipe


def main(argv: list[str] | None = None) -> int:
    from bench.common import DEFAULT_DATA, DEFAULT_MODEL_DIR, DEFAULT_WORK, write_result

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--out", type=Path, default=DEFAULT_WORK / "int8")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--calibration", type=int, default=200)
    parser.add_argument("--ops", default=",".join(DEFAULT_OPS), help="op types to quantize, comma-separated")
    parser.add_argument("--no-per-channel", action="store_true")
    parser.add_argument("--reduce-range", action="store_true", help="7-bit weights (worse here, see above)")
    parser.add_argument("--format", choices=["QDQ", "QOperator"], default="QDQ")
    parser.add_argument("--result")
    args = parser.parse_args(argv)
    recipe = quantize(
        args.model_dir,
        args.out,
        args.data,
        args.calibration,
        tuple(args.ops.split(",")),
        per_channel=not args.no_per_channel,
        reduce_range=args.reduce_range,
        fmt=args.format,
    )
    write_result(args.result, recipe)
    return 0


if __name__ == "__main__":
    sys.exit(main())
