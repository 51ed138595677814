"""A learned candidate scorer for the localiser, as an experiment (issue #17): research only, nothing ships it.

.venv-export/bin/python -m export.localiser_crops --work build/runs/localiser-crops-NAME [--set MIN_NUCLEUS_AREA=0.05]
.venv-export/bin/python -m export.localiser_crops --work DIR --report --threshold T [--set ...]   # once, after the rule
.venv-export/bin/python -m export.localiser_crops --work DIR --onnx PATH   # the --report run's network, as ONNX

The stain-based generator (hematovision.logic.localiser._features_and_boxes) proposes the candidates, as for the
committed logistic scorer (export/localiser_train.py). Here each candidate is also cut out of its photo: its box (at
least BOX_RBC red-cell diameters wide, centred on the nucleus, so the cut is already at the cell's scale) resized to
CROP px, each channel divided by the photo's background colour (localiser._background: a colour cast or an exposure
is a per-channel gain, which this cancels). A small convolutional network reads the crop; its pooled features are
joined to the candidate's standardised FEATURES row, and one logistic output scores the candidate.

Both scorers are judged out of fold on the TUNE split only, in the same folds by field as localiser_train.out_of_fold
(a field and its robustness versions share a fold), each at its own best threshold on the plain fields (mean F1 over
the three sets, localiser_train.best_threshold), on the plain fields and on every export.fields.VERSIONS version. The
run folder gets config.json and results.json (the printed lines).

--report (only for an arm the rule admits): one network trained on every tune candidate, then export.fields.evaluate
(the floors' own path, the repo's matching rule, Wilson intervals) on the REPORT split, plain and in every version,
beside the committed localiser, in the same run; the candidate threshold is the cross-validation's (--threshold).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from export import localiser_train as lt
from export.fields import DATA_ROOT, VERSIONS, check_split, load_fields, match
from hematovision.logic import localiser as L

CROP = 32


def crops_of(image: Image.Image, boxes: np.ndarray, size: int = CROP) -> np.ndarray:
    """[n, size, size, 3] float32: each box cut from the photo, resized, divided by the photo's background colour."""
    rgb = np.asarray(image)
    bg = L._background(rgb)
    out = np.empty((len(boxes), size, size, 3), dtype=np.float32)
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        cut = image.crop((int(x0), int(y0), max(int(x1), int(x0) + 1), max(int(y1), int(y0) + 1)))
        out[i] = np.asarray(cut.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)
    return np.clip(out / bg[None, None, None, :], 0.0, 1.5)


def collect(fields, version: str | None, first_group: int) -> tuple[lt.Candidates, np.ndarray]:
    """localiser_train.collect, with each candidate's crop."""
    groups, sets, boxes, features, positive, truths, truth_boxes, crops = [], [], [], [], [], {}, {}, []
    for g, f in enumerate(fields, start=first_group):
        with Image.open(f.path(DATA_ROOT)) as opened:
            image = opened.convert("RGB")
        image, truth = (image, f.wbc) if version is None else VERSIONS[version](image, f.wbc)
        _, b, x, _ = L._features_and_boxes(np.asarray(image))
        b = np.asarray(b).reshape(-1, 4)
        groups.append(np.full(len(b), g))
        sets.append(np.full(len(b), f.set))
        boxes.append(b)
        features.append(np.asarray(x).reshape(-1, len(L.FEATURES)))
        positive.append(np.array([bool(match(box[None], truth)) for box in b], dtype=bool))
        crops.append(crops_of(image, b))
        truths[g] = (f.set, len(truth))
        truth_boxes[g] = truth
    c = lt.Candidates(
        np.concatenate(groups),
        np.concatenate(sets),
        np.concatenate(boxes),
        np.concatenate(features),
        np.concatenate(positive),
        truths,
        truth_boxes,
    )
    return c, np.concatenate(crops)


def build_model(n_features: int, width: int = 16):
    import tensorflow as tf

    crop = tf.keras.Input((CROP, CROP, 3), name="crop")
    feats = tf.keras.Input((n_features,), name="features")
    x = crop
    for k in (width, 2 * width, 4 * width):
        x = tf.keras.layers.Conv2D(k, 3, padding="same", use_bias=False)(x)
        x = tf.keras.layers.BatchNormalization()(x)
        x = tf.keras.layers.ReLU()(x)
        x = tf.keras.layers.Conv2D(k, 3, padding="same", use_bias=False)(x)
        x = tf.keras.layers.BatchNormalization()(x)
        x = tf.keras.layers.ReLU()(x)
        x = tf.keras.layers.MaxPool2D()(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    x = tf.keras.layers.Concatenate()([x, feats])
    x = tf.keras.layers.Dense(32, activation="relu")(x)
    x = tf.keras.layers.Dropout(0.2)(x)
    out = tf.keras.layers.Dense(1, activation="sigmoid")(x)
    return tf.keras.Model([crop, feats], out)


def dihedral(crops: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each crop under a random flip and quarter turn (a cell has no orientation)."""
    out = crops.copy()
    flip = rng.random(len(crops)) < 0.5
    out[flip] = out[flip, :, ::-1]
    turns = rng.integers(0, 4, len(crops))
    for t in (1, 2, 3):
        out[turns == t] = np.rot90(out[turns == t], t, axes=(1, 2))
    return out


def train_model(train_x, train_f, train_y, epochs: int, seed: int):
    """The network (features standardised by the training set's mean and scale, returned with it)."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    mean, scale = train_f.mean(axis=0), train_f.std(axis=0) + 1e-9
    model = build_model(train_f.shape[1])
    model.compile(optimizer=tf.keras.optimizers.Adam(2e-3), loss="binary_crossentropy")
    rng = np.random.default_rng(seed)
    f = ((train_f - mean) / scale).astype(np.float32)
    for _ in range(epochs):
        model.fit([dihedral(train_x, rng), f], train_y.astype(np.float32), batch_size=128, epochs=1, verbose=0)
    return model, mean, scale


def network_locate(model, mean, scale, threshold: float):
    """localiser.locate with the network as its scorer (the same candidates, order, threshold and kept-box rule)."""

    def locate(image) -> L.Localisation:
        prepared = L._working_copy(image)
        result, boxes, features, _ = L._features_and_boxes(image, prepared=prepared)
        if not len(features):
            L._one_cell(prepared[1], result)
            return result
        x = crops_of(Image.fromarray(np.asarray(image)), np.asarray(boxes).reshape(-1, 4))
        p = model.predict([x, ((features - mean) / scale).astype(np.float32)], batch_size=512, verbose=0)[:, 0]
        for i in np.argsort(-p, kind="stable"):
            if p[i] < threshold:
                break
            box = tuple(int(v) for v in boxes[i])
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            if any(k[0] <= cx <= k[2] and k[1] <= cy <= k[3] for k in result.boxes):
                continue
            result.boxes.append(box)
            result.scores.append(float(p[i]))
        return result

    return locate


def fit_predict(train_x, train_f, train_y, tests, epochs: int, seed: int) -> list[np.ndarray]:
    """Train on (crops, features, labels); the scores of each (crops, features) in tests."""
    model, mean, scale = train_model(train_x, train_f, train_y, epochs, seed)
    return [
        model.predict([x, ((t - mean) / scale).astype(np.float32)], batch_size=512, verbose=0)[:, 0] for x, t in tests
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.localiser_crops", description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--versions", default=",".join(VERSIONS))
    parser.add_argument("--set", action="append", default=[], help="NAME=VALUE: a generator constant of localiser.py")
    parser.add_argument("--report", action="store_true", help="the final network on the report split (once)")
    parser.add_argument("--threshold", type=float, default=0.5, help="--report: the cross-validation's threshold")
    parser.add_argument("--onnx", type=Path, help="write the --report run's network (in --work) as ONNX and exit")
    args = parser.parse_args(argv)
    for item in args.set:
        name, value = item.split("=")
        setattr(L, name, float(value))
    if args.onnx:
        print(json.dumps(export_onnx(args.work, args.onnx, load_fields()), indent=1))
        return 0
    args.work.mkdir(parents=True, exist_ok=False)
    (args.work / "config.json").write_text(json.dumps({**vars(args), "work": str(args.work), "crop": CROP}, indent=1))
    lines = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    fields = load_fields()
    check_split(fields)
    tune = [f for f in fields if f.split == "tune"]
    n = len(tune)
    versions = [v for v in args.versions.split(",") if v]
    started = time.time()
    parts, crops = {}, {}
    for i, v in enumerate([None, *versions]):
        parts[v], crops[v] = collect(tune, v, i * n)
    say(f"collected {sum(len(c.group) for c in parts.values())} candidates in {time.time() - started:.0f} s")
    if args.report:
        return report(args, fields, parts, crops, say, lines)
    for name in ("bccd", "txl", "phone"):
        say(f"generator recall {name} (plain): {lt.figures(parts[None], parts[None].set == name)[name][0]:.3f}")

    logistic = lt.out_of_fold(parts, list(parts), n, args.folds)
    t_log, _ = lt.best_threshold(parts[None], logistic[None])
    say(lt._line("logistic (out of fold)", parts, logistic, t_log).replace(" | ", "\n  "))

    fold_of_field = np.random.default_rng(0).integers(0, args.folds, n)  # localiser_train.out_of_fold's folds
    pool = lt._pooled([parts[v] for v in parts])
    pool_x = np.concatenate([crops[v] for v in parts])
    train_fold = fold_of_field[pool.group % n]
    learned = {v: np.zeros(len(c.group)) for v, c in parts.items()}
    for k in range(args.folds):
        tick = time.time()
        held = {v: fold_of_field[c.group % n] == k for v, c in parts.items()}
        keep = train_fold != k
        scores = fit_predict(
            pool_x[keep],
            pool.features[keep],
            pool.positive[keep],
            [(crops[v][held[v]], parts[v].features[held[v]]) for v in parts],
            args.epochs,
            args.seed + k,
        )
        for v, s in zip(parts, scores, strict=True):
            learned[v][held[v]] = s
        say(f"fold {k}: {time.time() - tick:.0f} s")
    t_cnn, _ = lt.best_threshold(parts[None], learned[None])
    say(lt._line("crop network + features (out of fold)", parts, learned, t_cnn).replace(" | ", "\n  "))
    (args.work / "results.json").write_text(json.dumps({"lines": lines}, indent=1))
    np.savez_compressed(
        args.work / "scores.npz",
        **{f"logistic_{v}": s for v, s in logistic.items()},
        **{f"cnn_{v}": s for v, s in learned.items()},
    )
    return 0


def export_onnx(work: Path, path: Path, fields) -> dict:
    """The --report run's network (scorer.keras, standardise.npz) as ONNX: float32 'crop' [N, CROP, CROP, 3] and raw
    'features' [N, len(FEATURES)] in (the standardisation inside the graph), 'score' [N] out; checked against Keras
    on the tune split's plain candidates (max |difference|), through onnxruntime on 1 thread."""
    import onnx
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    model = tf.keras.models.load_model(work / "scorer.keras")
    saved = np.load(work / "standardise.npz")
    mean, scale = saved["mean"].astype(np.float32), saved["scale"].astype(np.float32)
    spec = (
        tf.TensorSpec((None, CROP, CROP, 3), tf.float32, name="crop"),
        tf.TensorSpec((None, len(L.FEATURES)), tf.float32, name="features"),
    )

    @tf.function(input_signature=spec)
    def serve(crop, features):
        return model([crop, (features - mean) / scale], training=False)[:, 0]

    proto, _ = tf2onnx.convert.from_function(serve, input_signature=spec, opset=17)
    old = proto.graph.output[0].name
    for node in proto.graph.node:
        node.output[:] = ["score" if n == old else n for n in node.output]
    proto.graph.output[0].name = "score"
    onnx.checker.check_model(proto)
    onnx.save(proto, path)
    tune = [f for f in fields if f.split == "tune"]
    c, x = collect(tune, None, 0)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    got = session.run(["score"], {"crop": x, "features": c.features.astype(np.float32)})[0]
    want = model.predict([x, ((c.features - mean) / scale).astype(np.float32)], batch_size=512, verbose=0)[:, 0]
    return {"bytes": path.stat().st_size, "candidates": len(got), "max_abs_difference": float(np.abs(got - want).max())}


def report(args, fields, parts, crops, say, lines) -> int:
    from export.fields import evaluate, format_row

    pool = lt._pooled([parts[v] for v in parts])
    model, mean, scale = train_model(
        np.concatenate([crops[v] for v in parts]), pool.features, pool.positive, args.epochs, args.seed
    )
    model.save(args.work / "scorer.keras")
    np.savez(args.work / "standardise.npz", mean=mean, scale=scale, threshold=args.threshold)
    report_fields = [f for f in fields if f.split == "report"]
    learned = network_locate(model, mean, scale, args.threshold)
    committed_min_area = L.MIN_NUCLEUS_AREA
    for version in [None, *VERSIONS]:
        for name in ("bccd", "txl", "phone"):
            chosen = [f for f in report_fields if f.set == name]
            L.MIN_NUCLEUS_AREA = 0.20  # the committed generator, whatever --set chose
            before = evaluate(L.locate, chosen, DATA_ROOT, version).row()
            L.MIN_NUCLEUS_AREA = committed_min_area
            after = evaluate(learned, chosen, DATA_ROOT, version).row()
            say(f"{version or 'plain'} {format_row(name + ' committed', before)}")
            say(f"{version or 'plain'} {format_row(name + ' network', after)}")
    (args.work / "results.json").write_text(json.dumps({"lines": lines}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
