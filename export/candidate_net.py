"""A small network on each localiser candidate's patch, scored beside the logistic (docs/experiments.md, arm C).

.venv-export/bin/python -m export.candidate_net cv [--folds 5] [--epochs 12] [--versions ...] [--limit N] [--passes ...]
    [--eyepiece-passes ...] [--context K] [--patch-side N] [--network-seed S] [--ensemble-with FILE.npz]
    [--save FILE.npz]
.venv-export/bin/python -m export.candidate_net fit --out DIR [--epochs 12] [--versions ...]

The stain-based generator's candidates (hematovision.logic.localiser) on the TUNE fields, as they are and in every
robustness version, each cut from the localiser's working copy and divided by the background colour
(localiser.candidate_patches). A CNN trained from scratch (no weight shared with the classifier) says whether a patch
is a white cell; the candidate's score is the mean of its probability and the logistic's (localiser.candidate_scores).

cv prints the out-of-fold figures (folds by field as export.localiser_train: a field and its versions share a fold)
of the logistic alone, the network alone and their mean, each at the threshold best over the plain fields and every
version. fit trains on every tune candidate, writes DIR/candidate_net.onnx (the four quarter turns averaged inside
the graph; checked against the Keras network, PARITY_TOLERANCE) and DIR/config.json (the run's settings, the parity
gap, the sha256). The served localiser reads localiser.CANDIDATE_NET, pinned by localiser.CANDIDATE_NET_SHA256 (fit
prints both).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from export import localiser_train as T
from export.fields import SETS, VERSIONS, check_split, load_fields
from hematovision.logic import localiser as L

EPOCHS = 12
BATCH = 128
LEARNING_RATE = 2e-3
WIDTHS = (16, 32, 64)
DROPOUT = 0.2
OPSET = 17
PARITY_PATCHES = 4096
PARITY_TOLERANCE = 1e-4


def network():
    import tensorflow as tf

    inputs = tf.keras.Input((L.PATCH_SIDE, L.PATCH_SIDE, 3))
    h = inputs
    for width in WIDTHS:
        h = tf.keras.layers.Conv2D(width, 3, padding="same", activation="relu")(h)
        h = tf.keras.layers.Conv2D(width, 3, padding="same", activation="relu")(h)
        h = tf.keras.layers.MaxPool2D()(h)
    h = tf.keras.layers.GlobalAveragePooling2D()(h)
    h = tf.keras.layers.Dropout(DROPOUT)(h)
    outputs = tf.keras.layers.Dense(1, activation="sigmoid")(h)
    model = tf.keras.Model(inputs, outputs)
    model.compile(tf.keras.optimizers.Adam(LEARNING_RATE), "binary_crossentropy")
    return model


def train(patches: np.ndarray, positive: np.ndarray, epochs: int = EPOCHS, seed: int = 0, log=print):
    """The network fitted on the patches, each batch turned by a random quarter turn and mirrored half the time."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = network()
    y = positive.astype(np.float32)
    for epoch in range(epochs):
        order = rng.permutation(len(y))
        losses = []
        for start in range(0, len(order), BATCH):
            chosen = order[start : start + BATCH]
            batch = np.rot90(patches[chosen], int(rng.integers(4)), axes=(1, 2))
            if rng.random() < 0.5:
                batch = batch[:, :, ::-1]
            losses.append(float(model.train_on_batch(np.ascontiguousarray(batch), y[chosen])))
        log(f"  epoch {epoch + 1}/{epochs}: loss {np.mean(losses):.4f}")
    return model


def predict(model, patches: np.ndarray) -> np.ndarray:
    """The mean probability over the four quarter turns of each patch."""
    if not len(patches):
        return np.zeros(0)
    turns = [model.predict(np.rot90(patches, k, axes=(1, 2)), verbose=0, batch_size=512)[:, 0] for k in range(4)]
    return np.mean(turns, axis=0)


def cv(
    parts: dict, n: int, folds: int = 5, epochs: int = EPOCHS, seed: int = 0, network_seed: int | None = None
) -> dict[str, dict]:
    """Out-of-fold scores of the logistic, the network and their mean, per part (folds by field, as
    export.localiser_train.out_of_fold; `seed` draws the folds, `network_seed`, by default the same, the network's
    initial weights and batches)."""
    network_seed = seed if network_seed is None else network_seed
    fold = T.fold_of_field(n, folds, seed)
    pool = T._pooled(list(parts.values()))
    train_fold = fold[pool.group % n]
    net = {v: np.zeros(len(c.group)) for v, c in parts.items()}
    for k in range(folds):
        print(f"fold {k + 1}/{folds}", flush=True)
        model = train(pool.patches[train_fold != k], pool.positive[train_fold != k], epochs, network_seed)
        for v, c in parts.items():
            held = fold[c.group % n] == k
            net[v][held] = predict(model, c.patches[held])
    logistic = T.out_of_fold(parts, list(parts), n, folds, T.L2, seed)
    mean = {v: L.served_score(logistic[v], net[v]) for v in parts}
    return {"logistic": logistic, "network": net, "mean": mean}


def export_onnx(model, path: Path) -> None:
    """The network with its four quarter turns averaged inside the graph: float32 patches in, probabilities out."""
    import tensorflow as tf
    import tf2onnx

    spec = (tf.TensorSpec((None, L.PATCH_SIDE, L.PATCH_SIDE, 3), tf.float32, name="patches"),)

    @tf.function(input_signature=spec)
    def serve(patches):
        turns = [model(tf.image.rot90(patches, k), training=False) for k in range(4)]
        return {"probability": tf.reduce_mean(tf.stack(turns), axis=0)[:, 0]}

    proto, _ = tf2onnx.convert.from_function(serve, input_signature=spec, opset=OPSET)
    proto.producer_name = "hematovision-export (tf2onnx)"
    path.write_bytes(proto.SerializeToString())


def parity_gap(model, onnx_path: Path, patches: np.ndarray) -> float:
    """The largest difference between the Keras network's probabilities (predict) and the ONNX graph's under
    onnxruntime, on the first PARITY_PATCHES patches."""
    import onnxruntime as ort

    sample = patches[:PARITY_PATCHES]
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    served = session.run(["probability"], {"patches": sample})[0]
    return float(np.max(np.abs(served - predict(model, sample)))) if len(sample) else 0.0


def widen_patches(context: float) -> None:
    """An experiment (this process only): every candidate's patch cut from its box grown `context` times about its
    centre (clipped to the photo), so the network sees the candidate's surroundings too."""
    served = L.candidate_patches

    def widened(copy, boxes):
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        centre, half = (b[:, :2] + b[:, 2:]) / 2, (b[:, 2:] - b[:, :2]) / 2 * context
        size = np.array([copy.work.shape[1] / copy.factor_x, copy.work.shape[0] / copy.factor_y])
        return served(copy, np.concatenate([np.maximum(centre - half, 0), np.minimum(centre + half, size)], axis=1))

    L.candidate_patches = widened


def resize_patches(side: int) -> None:
    """An experiment (this process only): patches of `side` pixels a side instead of the served PATCH_SIDE."""
    L.PATCH_SIDE = side
    T.PATCH_SHAPE = (side, side, 3)


def ensemble_with(scores: dict[str, dict], parts: dict, saved_path: Path) -> None:
    """The network's out-of-fold scores averaged with those a previous cv run saved (same folds and candidates: another
    network seed), and the mean recomputed from them, in place."""
    saved = np.load(saved_path)
    for v, c in parts.items():
        key = v or "plain"
        if not np.array_equal(saved[f"positive/{key}"], c.positive):
            raise SystemExit(
                f"{saved_path}: its {key} candidates are not this run's (other passes, versions or limit?)"
            )
        scores["network"][v] = (scores["network"][v] + saved[f"network/{key}"]) / 2
        scores["mean"][v] = L.served_score(scores["logistic"][v], scores["network"][v])


def _print_scores(parts: dict, scores: dict[str, dict]) -> None:
    for name, s in scores.items():
        threshold, f1 = T.best_threshold_over_versions(parts, s)
        print(f"{name}: mean F1 over sets and versions {f1:.4f}")
        print("  " + T._line(name, parts, s, threshold).replace(" | ", "\n  "), flush=True)


def _tune(limit: int | None) -> list:
    fields = load_fields()
    check_split(fields)
    tune = [f for f in fields if f.split == "tune"]
    if limit:
        tune = [f for name in SETS for f in [g for g in tune if g.set == name][:limit]]
    return tune


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.candidate_net", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("cv", "fit"))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--versions", default=",".join(VERSIONS), help="comma-separated export.fields.VERSIONS")
    parser.add_argument("--limit", type=int, help="the first N tune fields of each set only (a smoke run)")
    parser.add_argument("--out", type=Path, help="fit: the folder to write candidate_net.onnx and config.json to")
    parser.add_argument("--passes", default="", help="chroma,low,high,gap;...: the generator's threshold sets (cv)")
    parser.add_argument("--eyepiece-passes", default="", help="cv: threshold sets added inside an eyepiece's circle")
    parser.add_argument("--context", type=float, default=1.0, help="cv: patches cut from boxes grown this many times")
    parser.add_argument("--patch-side", type=int, default=L.PATCH_SIDE, help="cv: patches of N pixels a side")
    parser.add_argument(
        "--network-seed", type=int, help="cv: the network's seed (default: --seed, which draws the folds)"
    )
    parser.add_argument("--ensemble-with", type=Path, help="cv: average the network with a saved run's (same folds)")
    parser.add_argument("--save", type=Path, help="cv: write every part's out-of-fold scores to this .npz")
    args = parser.parse_args(argv)
    experiments = (
        args.patch_side != L.PATCH_SIDE,
        args.network_seed is not None,
        args.ensemble_with is not None,
        bool(args.eyepiece_passes),
    )
    if args.command == "fit" and any(experiments):
        parser.error("--patch-side, --network-seed, --ensemble-with and --eyepiece-passes are cv experiments")
    if args.patch_side != L.PATCH_SIDE:
        resize_patches(args.patch_side)
    if args.passes:
        T.set_passes(args.passes)
    if args.eyepiece_passes:
        T.add_eyepiece_passes(args.eyepiece_passes)
    if args.context != 1.0:
        widen_patches(args.context)
    if args.command == "fit" and args.out is None:
        parser.error("fit needs --out")
    tune = _tune(args.limit)
    versions = [v for v in args.versions.split(",") if v]
    parts = T.collect_versions(tune, versions, with_patches=True)
    pool = T._pooled(list(parts.values()))
    print(
        f"{len(pool.group)} candidates from {len(pool.truths)} fields, {int(pool.positive.sum())} positive", flush=True
    )
    if args.command == "cv":
        scores = cv(parts, len(tune), args.folds, args.epochs, args.seed, args.network_seed)
        if args.save:
            np.savez_compressed(
                args.save,
                **{f"{name}/{v or 'plain'}": s[v] for name, s in scores.items() for v in parts},
                **{f"positive/{v or 'plain'}": parts[v].positive for v in parts},
            )
        _print_scores(parts, scores)
        if args.ensemble_with:
            ensemble_with(scores, parts, args.ensemble_with)
            print(f"the network averaged with {args.ensemble_with}'s:")
            _print_scores(parts, {name: scores[name] for name in ("network", "mean")})
        return 0
    model = train(pool.patches, pool.positive, args.epochs, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / "candidate_net.onnx"
    export_onnx(model, onnx_path)
    parity = parity_gap(model, onnx_path, pool.patches)
    print(f"parity: largest |Keras - onnxruntime| over {min(len(pool.patches), PARITY_PATCHES)} patches {parity:.2e}")
    if parity > PARITY_TOLERANCE:
        print(f"the ONNX network differs from the Keras one by more than {PARITY_TOLERANCE}", file=sys.stderr)
        return 1
    digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    config = {
        "epochs": args.epochs,
        "seed": args.seed,
        "versions": versions,
        "fields": len(tune),
        "candidates": len(pool.group),
        "positive": int(pool.positive.sum()),
        "patch_side": L.PATCH_SIDE,
        "widths": WIDTHS,
        "localiser_version": L.LOCALISER_VERSION,
        "parity_max_abs": parity,
        "sha256": digest,
    }
    (args.out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    print(f"wrote {onnx_path}; to serve it: cp {onnx_path} {L.CANDIDATE_NET}")
    print(f'CANDIDATE_NET_SHA256 = "{digest}"')
    return 0


if __name__ == "__main__":
    sys.exit(main())
