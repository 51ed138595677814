"""Fine-tune MobileNetV2 on bccd + pbc, caching the frozen lower layers so a 2-core CPU can do it.

Recipe (why): the stem and blocks 1-5 stay frozen with their ImageNet weights; their output for each
training view (28x28x32 after block 5, the last 28x28 stage) is computed once and cached, then blocks
6-16, Conv_1 and the head are fine-tuned on the cache for several epochs. Caching skips the
high-resolution layers (the slowest to train), so this is ~4x cheaper than end-to-end fine-tuning, yet
the mid-level (14x14) features that see granules and nucleus shape are adapted, not only the top blocks. BatchNorm stays frozen
(folded weights: see shared/weights/README.md) and is checked to be unchanged after training.
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from export.augment import colour_stats, mixup, random_view
from export.data import CLASSES, Sample, all_splits, class_counts
from export.model import INPUT_SIZE, build_backbone, freeze_batchnorm

PEAK_LR = 3e-4  # of the cosine learning-rate schedule
FROZEN_BLOCKS = 5  # the stem and blocks 1..5 are frozen and cached (up to block_5_add); the rest is fine-tuned
PBC_ZOOM_OUT_PROBABILITY = 0.5  # see export/augment.py: zoom_out


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def load_view(
    sample: Sample, view_seed: int | None, colour_targets: np.ndarray | None = None, colour_probability: float = 0.0
) -> np.ndarray:
    """The preprocessed image (view_seed None) or an augmented training view; pbc views may get bccd colours."""
    from hematovision.logic.preprocessing import preprocess_file

    image = preprocess_file(sample.path)
    if view_seed is None:
        return image
    if sample.dataset != "pbc":
        return random_view(image, np.random.default_rng(view_seed))
    return random_view(
        image, np.random.default_rng(view_seed), PBC_ZOOM_OUT_PROBABILITY, colour_targets, colour_probability
    )


def bccd_colour_targets(samples: list[Sample], rng: np.random.Generator, count: int = 400) -> np.ndarray:
    """colour_stats of `count` random bccd training frames: the colours a pbc view may be given."""
    from hematovision.logic.preprocessing import preprocess_file

    picked = rng.choice(len(samples), min(count, len(samples)), replace=False)
    return np.stack([colour_stats(preprocess_file(samples[i].path)) for i in sorted(picked)])


def compute_features(model, jobs: list[tuple[Sample, int | None]], batch: int, what: str, load=load_view) -> np.ndarray:
    """Run `model` over decoded (and augmented) images, batch by batch; decoding overlaps inference."""
    outputs = []
    started = time.time()
    with ThreadPoolExecutor(max_workers=2) as pool:
        chunks = [jobs[i : i + batch] for i in range(0, len(jobs), batch)]
        pending = pool.map(lambda chunk: np.stack([load(s, v) for s, v in chunk]), chunks)
        for index, images in enumerate(pending):
            outputs.append(model.predict_on_batch(images.astype(np.float32)).astype(np.float16))
            done = min((index + 1) * batch, len(jobs))
            if index % 20 == 0 or done == len(jobs):
                rate = done / max(time.time() - started, 1e-6)
                log(f"  {what}: {done}/{len(jobs)} images ({rate:.1f}/s)")
    return np.concatenate(outputs)


def mean_weights(weight_sets) -> list[np.ndarray]:
    """Element-wise mean of several get_weights() lists of one architecture (epochs of a run, or seeds: a soup)."""
    return [np.mean(tensors, axis=0) for tensors in zip(*weight_sets)]


def smoke_subset(samples: list[Sample], per_class: int) -> list[Sample]:
    picked = []
    for label in range(len(CLASSES)):
        picked += [s for s in samples if s.label == label][:per_class]
    return picked


def build_models(weights, frozen_blocks: int):
    """The classifier and its two halves: the frozen bottom (cached once) and the head model trained on the cache."""
    import keras

    backbone = build_backbone(weights)
    pixels = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), dtype="float32", name="pixels")
    scaled = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale_to_mobilenet")(pixels)
    cut_layer = f"block_{frozen_blocks}_add"  # everything up to here is frozen and cached
    bottom_part = keras.Model(backbone.input, backbone.get_layer(cut_layer).output, name="frozen_bottom")
    bottom = keras.Model(pixels, bottom_part(scaled), name="bottom")
    top_part = keras.Model(backbone.get_layer(cut_layer).output, backbone.output, name="trained_top")

    trainable = False
    for layer in backbone.layers:
        trainable = trainable or layer.name.startswith(f"block_{frozen_blocks + 1}_")
        layer.trainable = trainable
    freeze_batchnorm(backbone)

    pool = keras.layers.GlobalAveragePooling2D(name="pool")
    dropout = keras.layers.Dropout(0.3, name="dropout")
    dense = keras.layers.Dense(len(CLASSES), activation="softmax", name="classifier")
    cached = keras.Input(tuple(top_part.input.shape[1:]), name="cached_features")
    return SimpleNamespace(
        cut_layer=cut_layer,
        bottom=bottom,
        probe_bn=backbone.get_layer("block_14_expand_BN"),
        head=keras.Model(cached, dense(dropout(pool(top_part(cached, training=False)))), name="head"),
        pooled=keras.Model(cached, pool(top_part(cached, training=False))),
        classifier=keras.Model(pixels, dense(dropout(pool(backbone(scaled, training=False)))), name="hematovision"),
    )


def train(
    out_dir: Path,
    data_root: Path,
    weights,
    smoke: bool = False,
    epochs: int = 5,
    seed: int = 20261126,
    batch_size: int = 64,
    peak_lr: float = PEAK_LR,
    pbc_views: int = 2,
    bccd_per_epoch: int | None = None,
    frozen_blocks: int = FROZEN_BLOCKS,
    average_last_epochs: tuple[int, ...] = (),
    pbc_bccd_colour: float = 0.0,
    soup_seeds: tuple[int, ...] = (),
    mixup_alpha: float = 0.0,
) -> dict:
    """frozen_blocks: the stem and blocks 1..frozen_blocks stay frozen (a block with a residual add: 2, 4, 5, 7, ...).
    average_last_epochs: the mean weights of the last k epochs are selection candidates too, for each k given.
    pbc_bccd_colour: probability that a pbc view gets the colours of a random bccd training frame (augment.match_colour).
    bccd_per_epoch: bccd views per class in each epoch, a fresh random subset every epoch (None: all of them).
    bccd TRAIN has 16-155 augmentations of each original, so fewer per epoch slows memorising its ~230 cells.
    soup_seeds: more seeds, each trained like `seed` (its own views, initialisation and shuffling) and reduced to its
    best validation candidate; the mean of all seeds' weights (a "model soup", Wortsman et al. 2022) is a
    candidate too. BatchNorm is frozen, so the mean needs no re-estimated statistics.
    mixup_alpha: above 0, each training batch of cached features is mixed up (augment.mixup, Beta(alpha, alpha))."""
    os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
    import keras
    import tensorflow as tf

    from hematovision.logic.metrics import compute_metrics  # the card's and the CLI's macro-F1

    out_dir.mkdir(parents=True, exist_ok=True)
    named = all_splits(data_root)
    train_sets = {"bccd_train": named["bccd_train"], "pbc_train": named["pbc_train"]}
    val_samples = named["bccd_val"] + named["pbc_val"]
    if smoke:
        train_sets = {k: smoke_subset(v, 6) for k, v in train_sets.items()}
        val_samples = smoke_subset(named["bccd_val"], 3) + smoke_subset(named["pbc_val"], 3)
        epochs, batch_size, pbc_views = 2, 16, 1
        average_last_epochs = (2,)  # so that the averaging code runs in the smoke test too
        pbc_bccd_colour = pbc_bccd_colour or 0.5  # and the colour transfer
        soup_seeds = soup_seeds or (seed + 1000,)  # and the soup of seeds
    seeds = (seed, *soup_seeds)
    y_val = np.array([s.label for s in val_samples])
    t0 = time.time()
    cache_seconds = 0.0
    colour_targets = None
    if pbc_bccd_colour > 0:
        colour_targets = bccd_colour_targets(train_sets["bccd_train"], np.random.default_rng(seed + 2))
        log(
            f"pbc views get the colours of one of {len(colour_targets)} bccd training frames with probability {pbc_bccd_colour}"
        )

    history: list[dict] = []
    candidates: dict[str, tuple[float, list[np.ndarray]]] = {}
    per_seed_best: dict[int, str] = {}
    bn_drift = 0.0
    x_val = None
    for run_seed in seeds:
        keras.utils.set_random_seed(run_seed)
        models = build_models(weights, frozen_blocks)
        prefix = f"seed {run_seed} " if len(seeds) > 1 else ""

        rng = np.random.default_rng(run_seed)
        jobs: list[tuple[Sample, int]] = []
        for sample in train_sets["bccd_train"]:
            jobs.append((sample, int(rng.integers(1 << 31))))
        for _ in range(pbc_views):
            for sample in train_sets["pbc_train"]:
                jobs.append((sample, int(rng.integers(1 << 31))))
        log(
            f"{prefix}training views: {len(jobs)} (bccd {len(train_sets['bccd_train'])}, pbc {len(train_sets['pbc_train'])} "
            f"x {pbc_views}); validation images: {len(val_samples)}"
        )

        started = time.time()
        log("caching frozen features of the training views")
        x_train = None  # frees the previous seed's cache first
        x_train = compute_features(
            models.bottom, jobs, 64, "train views", lambda s, v: load_view(s, v, colour_targets, pbc_bccd_colour)
        )
        y_train = np.array([s.label for s, _ in jobs])
        if x_val is None:  # the frozen bottom is the same in every seed
            log("caching frozen features of the validation images")
            x_val = compute_features(models.bottom, [(s, None) for s in val_samples], 64, "validation").astype(
                np.float32
            )
        cache_seconds += time.time() - started

        is_bccd = np.array([sample.dataset == "bccd" for sample, _ in jobs])
        epoch_rng = np.random.default_rng(run_seed + 1)

        def epoch_indices() -> np.ndarray:
            if bccd_per_epoch is None:
                return np.arange(len(jobs))
            picked = [np.flatnonzero(~is_bccd)]
            for label in range(len(CLASSES)):
                candidates_of_class = np.flatnonzero(is_bccd & (y_train == label))
                picked.append(
                    epoch_rng.choice(candidates_of_class, min(bccd_per_epoch, len(candidates_of_class)), replace=False)
                )
            return np.sort(np.concatenate(picked))

        first_epoch = epoch_indices()
        counts = np.bincount(y_train[first_epoch], minlength=len(CLASSES)).astype(np.float64)  # the same every epoch
        class_weights = counts.sum() / (len(CLASSES) * np.maximum(counts, 1))
        sample_weight = class_weights[y_train].astype(np.float32)
        y_onehot = keras.utils.to_categorical(y_train, len(CLASSES))

        steps_per_epoch = int(np.ceil(len(first_epoch) / batch_size))
        warmup = max(1, steps_per_epoch // 2)
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=peak_lr / 20,
            decay_steps=max(1, steps_per_epoch * epochs - warmup),
            warmup_target=peak_lr,
            warmup_steps=warmup,
            alpha=0.02,
        )
        head_model = models.head
        head_model.compile(
            optimizer=keras.optimizers.AdamW(learning_rate=schedule, weight_decay=1e-4),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
            metrics=["accuracy"],
        )
        bn_before = np.array(models.probe_bn.moving_mean)

        def score_on_validation() -> tuple[np.ndarray, float]:
            probabilities = head_model.predict(x_val, batch_size=256, verbose=0)
            return probabilities, compute_metrics(y_val, probabilities.argmax(axis=1), CLASSES)["macro_f1"]

        seed_history: list[dict] = []
        epoch_weights: list[list[np.ndarray]] = []

        class RecordEachEpoch(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                probabilities, f1 = score_on_validation()
                entry = {
                    "epoch": epoch + 1,
                    "loss": float(logs["loss"]),
                    "accuracy": float(logs["accuracy"]),
                    "val_accuracy": float(np.mean(probabilities.argmax(axis=1) == y_val)),
                    "val_macro_f1": f1,
                    "val_loss": float(-np.mean(np.log(np.clip(probabilities[np.arange(len(y_val)), y_val], 1e-7, 1)))),
                    "seconds": round(time.time() - t0, 1),
                }
                if len(seeds) > 1:
                    entry["seed"] = run_seed
                seed_history.append(entry)
                epoch_weights.append(head_model.get_weights())
                log(
                    f"{prefix}epoch {epoch + 1}/{epochs}: "
                    + ", ".join(
                        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in entry.items() if k != "seed"
                    )
                )

        log(
            f"{prefix}fine-tuning {len(head_model.trainable_weights)} weight tensors for {epochs} epochs, {steps_per_epoch} steps each"
        )
        fit_options = dict(
            batch_size=batch_size, shuffle=True, verbose=2 if not smoke else 0, callbacks=[RecordEachEpoch()]
        )
        if mixup_alpha > 0:
            batches = mixup_batches(x_train, y_onehot, sample_weight, batch_size, mixup_alpha, run_seed + 3)
            head_model.fit(batches, epochs=epochs, verbose=fit_options["verbose"], callbacks=fit_options["callbacks"])
        elif bccd_per_epoch is None:  # one fit call: the same shuffling as the runs before bccd_per_epoch existed
            head_model.fit(
                x_train.astype(np.float32), y_onehot, sample_weight=sample_weight, epochs=epochs, **fit_options
            )
        else:
            for epoch in range(epochs):
                chosen = first_epoch if epoch == 0 else epoch_indices()
                head_model.fit(
                    x_train[chosen].astype(np.float32),
                    y_onehot[chosen],
                    sample_weight=sample_weight[chosen],
                    initial_epoch=epoch,
                    epochs=epoch + 1,
                    **fit_options,
                )
        history += seed_history

        # Candidates: each epoch's weights, and the mean weights of the last k epochs (BatchNorm is frozen, so a
        # weight average needs no re-estimated statistics). The one with the best validation macro-F1 is kept.
        seed_candidates = {
            f"{prefix}epoch {h['epoch']}": (h["val_macro_f1"], w) for h, w in zip(seed_history, epoch_weights)
        }
        for k in average_last_epochs:
            if 1 < k <= len(epoch_weights):
                averaged = mean_weights(epoch_weights[-k:])
                head_model.set_weights(averaged)
                _, f1 = score_on_validation()
                name = f"{prefix}mean of epochs {len(epoch_weights) - k + 1}-{len(epoch_weights)}"
                seed_candidates[name] = (f1, averaged)
                log(f"{name}: val_macro_f1={f1:.4f}")
        candidates.update(seed_candidates)
        per_seed_best[run_seed] = max(seed_candidates, key=lambda name: seed_candidates[name][0])  # ties: the earlier
        bn_drift = max(bn_drift, float(np.max(np.abs(np.array(models.probe_bn.moving_mean) - bn_before))))
        if bn_drift != 0.0:
            raise RuntimeError(f"BatchNorm moving statistics changed during training (max drift {bn_drift})")

    if len(seeds) > 1:
        soup_name = f"soup of seeds {', '.join(map(str, seeds))}"
        soup = mean_weights(candidates[per_seed_best[s]][1] for s in seeds)
        head_model.set_weights(soup)
        _, f1 = score_on_validation()
        log(f"{soup_name} ({', '.join(per_seed_best.values())}): val_macro_f1={f1:.4f}")
        candidates[soup_name] = (f1, soup)
        finalists = [soup_name, *per_seed_best.values()]  # ties: the soup
    else:
        finalists = list(candidates)
    selected = max(finalists, key=lambda name: candidates[name][0])
    head_model.set_weights(candidates[selected][1])

    log("computing class centroids of the pooled features (for the out-of-distribution score)")
    pooled = models.pooled.predict(x_train.astype(np.float32), batch_size=256, verbose=0)
    centroids = class_centroids(pooled, y_train)

    models.classifier.save(out_dir / "classifier.keras")
    np.save(out_dir / "centroids.npy", centroids)
    selection_rule = "epoch with the best macro-F1 on the validation split (bccd_val + pbc_val)" + (
        f", or the mean weights of the last {' or '.join(map(str, average_last_epochs))} epochs"
        if average_last_epochs
        else ""
    )
    if len(seeds) > 1:
        selection_rule = (
            f"per seed: the {selection_rule}; then the best of those and their weight mean (soup), "
            "on the same validation split"
        )
    report = {
        "recipe": {
            "frozen": f"stem + blocks 1-{frozen_blocks} (up to {models.cut_layer}), features cached once per training view",
            "trained": f"blocks {frozen_blocks + 1}-16, Conv_1 and the head (GAP -> dropout 0.3 -> Dense(4) softmax); BatchNorm frozen",
            "optimizer": f"AdamW (weight decay 1e-4), cosine schedule with half-epoch warm-up, peak lr {peak_lr}",
            "loss": "categorical cross-entropy, label smoothing 0.1, class-balanced sample weights"
            + (f"; mixup of the cached features, Beta({mixup_alpha}, {mixup_alpha})" if mixup_alpha > 0 else ""),
            "batch_size": batch_size,
            "epochs": epochs,
            "selected_epoch": selected,
            "selection_rule": selection_rule,
            "candidates_val_macro_f1": {name: round(f1, 4) for name, (f1, _) in candidates.items()},
            "augmentation": (
                "per training view: one of 8 flips/quarter-turns + brightness/contrast/saturation/stain-tint jitter; "
                f"pbc views are zoomed out to bccd-like cell size and position with probability {PBC_ZOOM_OUT_PROBABILITY}"
                + (
                    f", and given the colour statistics of a random bccd training frame with probability {pbc_bccd_colour}"
                    if pbc_bccd_colour > 0
                    else ""
                )
            ),
            "views": {"bccd_train": 1, "pbc_train": pbc_views},
            "seed": seed,
            "bccd_views_per_class_per_epoch": bccd_per_epoch or "all",
            **({"soup_seeds": list(soup_seeds)} if soup_seeds else {}),
        },
        "train_counts": {name: class_counts(samples) for name, samples in train_sets.items()},
        "val_counts": class_counts(val_samples),
        "history": history,
        "batchnorm_check": {"layer": models.probe_bn.name, "max_moving_mean_drift": bn_drift},
        "seconds": {"feature_cache": round(cache_seconds, 1), "total": round(time.time() - t0, 1)},
        "smoke": smoke,
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "python": sys.version.split()[0]},
    }
    (out_dir / "train_report.json").write_text(json.dumps(report, indent=2))
    log(
        f"training done in {report['seconds']['total']} s; selected {selected} (val macro-F1 {candidates[selected][0]:.4f})"
    )
    return report


def mixup_batches(x, y, weights, batch_size: int, alpha: float, seed: int):
    """Shuffled batches of the cached features, each mixed up; batch i of epoch e depends only on (seed, e, i)."""
    import keras

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.start_epoch(0)

        def start_epoch(self, epoch: int) -> None:
            self.epoch = epoch
            self.order = np.random.default_rng([seed, epoch]).permutation(len(x))  # once per epoch, not per batch

        def __len__(self) -> int:
            return int(np.ceil(len(x) / batch_size))

        def __getitem__(self, index: int):
            chosen = np.sort(self.order[index * batch_size : (index + 1) * batch_size])
            return mixup(x[chosen], y[chosen], weights[chosen], np.random.default_rng([seed, self.epoch, index]), alpha)

        def on_epoch_end(self) -> None:
            self.start_epoch(self.epoch + 1)

    return Batches()


def class_centroids(pooled: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Unit-length mean of the unit-length pooled features of each class: [n_classes, n_features]."""
    unit = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    centroids = np.stack([unit[labels == c].mean(axis=0) for c in range(len(CLASSES))])
    return (centroids / np.linalg.norm(centroids, axis=1, keepdims=True)).astype(np.float32)
