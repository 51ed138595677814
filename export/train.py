"""Fine-tune MobileNetV2 on bccd + pbc, caching the frozen lower layers so a 2-core CPU can do it.

Why this shape: the stem and the first blocks stay frozen with their ImageNet weights; their output for each
training view (28x28x32 after block 5, the last 28x28 stage) is computed once and cached, then the later blocks,
Conv_1 and the head are fine-tuned on the cache for several epochs. Caching skips the high-resolution layers (the
slowest to train), so this is ~4x cheaper than end-to-end fine-tuning, yet the mid-level (14x14) features that see
granules and nucleus shape are adapted, not only the top blocks. BatchNorm stays frozen (folded weights: see
shared/weights/README.md) and is checked to be unchanged after training.

The pipeline, top to bottom: training_data -> training_views -> cache_features -> [teacher_probabilities] -> fit ->
select_epoch -> save.
Every hyperparameter comes from the recipe (export/recipe.py).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

from export.augment import edge_cut, random_view
from export.data import CLASSES, Sample, all_splits, class_counts
from export.model import build_backbone, freeze_batchnorm
from export.outliers import outlier_image
from export.recipe import EDGE_CUT_SIDE, REPO, RUN_RECIPE_NAME, Recipe
from hematovision.logic.cell_crop import normalise

FEATURE_BATCH = 64  # images per forward pass of the frozen bottom while caching
SMOKE_TRAIN_PER_CLASS = 6  # the smoke run's training images per class and dataset
SMOKE_VAL_PER_CLASS = 3  # and its validation (and evaluation) images
SMOKE_OUTLIER_VIEWS = 8  # and its outlier views, when the recipe has them
# the recipe fields that decide what the cached features are: a teacher must share them with its student
CACHE_FIELDS = ("input_size", "frozen_blocks", "crop", "crop_um", "normalise")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def smoke_subset(samples: list[Sample], per_class: int) -> list[Sample]:
    picked = []
    for label in range(len(CLASSES)):
        picked += [s for s in samples if s.label == label][:per_class]
    return picked


def load_image(sample: Sample, size: int) -> np.ndarray:
    """The model input of a file, through the serving preprocessing."""
    from hematovision.logic.preprocessing import preprocess_file

    return preprocess_file(sample.path, size)


@functools.cache
def localise(path: Path):
    """The localiser's answer for a file (decoded upright by the serving code), computed once per file."""
    from hematovision.logic.localiser import locate
    from hematovision.logic.preprocessing import decode_image

    return locate(decode_image(Path(path).read_bytes()))


def cell_input(sample: Sample, recipe: Recipe, scale: float = 1.0, rng: np.random.Generator | None = None):
    """crop == "cell": the model input of a file through logic/cell_crop.model_input (its best cell's crop of
    recipe.crop_um, or the whole frame where no cell is found), the ModelInput with its crop and ruler. With `rng`
    (a training view) and the recipe's edge_cut, the photo may first be cut short near the cell (augment.edge_cut)."""
    from hematovision.logic.cell_crop import crop_side, model_input
    from hematovision.logic.preprocessing import decode_image

    image = decode_image(sample.path.read_bytes())
    localisation = localise(sample.path)
    share = recipe.augmentation.edge_cut
    if rng is not None and share and localisation.boxes and rng.random() < share:
        box = localisation.boxes[0]
        side, _ = crop_side(box, localisation.px_per_um, localisation.ruler, recipe.crop_um)
        pixels, box = edge_cut(np.asarray(image), box, side * scale, rng, EDGE_CUT_SIDE)
        image = Image.fromarray(np.ascontiguousarray(pixels))
        localisation = replace(localisation, boxes=[box], scores=localisation.scores[:1])
    return model_input(image, localisation, recipe.crop_um, recipe.input_size, scale)


def model_input_of(sample: Sample, recipe: Recipe) -> np.ndarray:
    """The un-augmented model input of a file (validation, evaluation): the frame or the cell crop."""
    if recipe.crop == "cell":
        return normalise(cell_input(sample, recipe).pixels, recipe.normalise)
    return load_image(sample, recipe.input_size)


def training_view(sample: Sample, view_seed: int, recipe: Recipe) -> np.ndarray:
    """An augmented view, fixed by its seed; only pbc views may be zoomed out to bccd's cell size. With crop == "cell",
    the view is augmented from the cell crop (its side jittered first), and no view is zoomed out."""
    augmentation = recipe.augmentation
    rng = np.random.default_rng(view_seed)
    if recipe.crop == "cell":
        jitter = augmentation.crop_scale_jitter
        scale = float(np.exp(rng.uniform(-jitter, jitter))) if jitter else 1.0
        view = random_view(cell_input(sample, recipe, scale, rng).pixels, rng, augmentation, 0.0)
        return normalise(view, recipe.normalise)  # last, as serving does: the augmented cast is divided out
    zoom_out_probability = augmentation.pbc_zoom_out_probability if sample.dataset == "pbc" else 0.0
    image = load_image(sample, recipe.input_size)
    return random_view(image, rng, augmentation, zoom_out_probability)


def image_input(image: Image.Image, recipe: Recipe) -> np.ndarray:
    """The model input of a decoded image that is not a dataset file, before normalisation: under crop == "cell" the
    localiser's best cell's crop (the whole frame where it finds no cell), else the whole frame."""
    from hematovision.logic.cell_crop import frame_input, model_input
    from hematovision.logic.localiser import locate

    if recipe.crop == "cell":
        return model_input(image, locate(image), recipe.crop_um, recipe.input_size).pixels
    return frame_input(image, recipe.input_size)


def outlier_view(seed: int, recipe: Recipe) -> np.ndarray:
    """A view of a synthetic non-blood image (export/outliers.py), through the same input path as a blood photo
    (image_input) and the same augmentation."""
    pixels = image_input(Image.fromarray(outlier_image(seed)), recipe)
    rng = np.random.default_rng(seed)
    return normalise(random_view(pixels, rng, recipe.augmentation, 0.0), recipe.normalise)


def outlier_seeds(recipe: Recipe, smoke: bool) -> list[int]:
    count = min(recipe.outlier_views, SMOKE_OUTLIER_VIEWS) if smoke else recipe.outlier_views
    rng = np.random.default_rng([recipe.seed, 1])
    return [int(v) for v in rng.integers(1 << 31, size=count)]


@dataclass
class TrainingData:
    train: dict[str, list[Sample]]  # bccd_train, pbc_train
    val: list[Sample]  # bccd_val + pbc_val: the choice of epoch (and later the thresholds)


def training_data(data_root: Path, smoke: bool) -> TrainingData:
    named = all_splits(data_root)
    train = {"bccd_train": named["bccd_train"], "pbc_train": named["pbc_train"]}
    val = {"bccd_val": named["bccd_val"], "pbc_val": named["pbc_val"]}
    if smoke:
        train = {name: smoke_subset(samples, SMOKE_TRAIN_PER_CLASS) for name, samples in train.items()}
        val = {name: smoke_subset(samples, SMOKE_VAL_PER_CLASS) for name, samples in val.items()}
    for samples in (*train.values(), *val.values()):
        # dbn (a third lab) has no licence: it validates and calibrates, it never trains a model we ship
        assert not any(sample.dataset == "dbn" for sample in samples), "dbn images in the training data"
    return TrainingData(train, val["bccd_val"] + val["pbc_val"])


def training_views(recipe: Recipe, data: TrainingData) -> list[tuple[Sample, int]]:
    """(sample, view seed): each bccd training image once (bccd TRAIN is already augmented), each pbc image
    recipe.pbc_views times."""
    rng = np.random.default_rng(recipe.seed)
    views = [(sample, int(rng.integers(1 << 31))) for sample in data.train["bccd_train"]]
    for _ in range(recipe.pbc_views):
        views += [(sample, int(rng.integers(1 << 31))) for sample in data.train["pbc_train"]]
    return views


def build_models(weights, recipe: Recipe):
    """The classifier and its two halves: the frozen bottom (cached once) and the head model trained on the cache."""
    import keras

    backbone = build_backbone(weights, recipe.input_size)
    pixels = keras.Input((recipe.input_size, recipe.input_size, 3), dtype="float32", name="pixels")
    scaled = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale_to_mobilenet")(pixels)
    cut_layer = f"block_{recipe.frozen_blocks}_add"  # everything up to here is frozen and cached
    bottom_part = keras.Model(backbone.input, backbone.get_layer(cut_layer).output, name="frozen_bottom")
    bottom = keras.Model(pixels, bottom_part(scaled), name="bottom")
    top_part = keras.Model(backbone.get_layer(cut_layer).output, backbone.output, name="trained_top")

    trainable = False
    for layer in backbone.layers:
        trainable = trainable or layer.name.startswith(f"block_{recipe.frozen_blocks + 1}_")
        layer.trainable = trainable
    freeze_batchnorm(backbone)

    pool = keras.layers.GlobalAveragePooling2D(name="pool")
    dropout = keras.layers.Dropout(recipe.dropout, name="dropout")
    dense = keras.layers.Dense(len(CLASSES), activation="softmax", name="classifier")
    cached = keras.Input(tuple(top_part.input.shape[1:]), name="cached_features")
    # the head trains on the cache; MixStyle (training only) sits between the cache and the trained blocks, so the
    # classifier below, which shares every trained layer, never holds it
    styled = cached
    if recipe.mixstyle > 0:
        from export.mixstyle import MixStyle

        styled = MixStyle(recipe.mixstyle, recipe.mixstyle_alpha, recipe.seed, name="mixstyle")(cached)
    return SimpleNamespace(
        bottom=bottom,
        probe_bn=backbone.get_layer("block_14_expand_BN"),
        head=keras.Model(cached, dense(dropout(pool(top_part(styled, training=False)))), name="head"),
        pooled=keras.Model(cached, pool(top_part(cached, training=False))),
        classifier=keras.Model(pixels, dense(dropout(pool(backbone(scaled, training=False)))), name="hematovision"),
    )


def cache_features(bottom, items: Sequence, load: Callable[..., np.ndarray], what: str) -> np.ndarray:
    """The frozen bottom's output for each item, float16, batch by batch; decoding overlaps inference."""
    outputs = []
    started = time.time()
    with ThreadPoolExecutor(max_workers=2) as pool:
        chunks = [items[i : i + FEATURE_BATCH] for i in range(0, len(items), FEATURE_BATCH)]
        pending = pool.map(lambda chunk: np.stack([load(item) for item in chunk]), chunks)
        for index, images in enumerate(pending):
            outputs.append(bottom.predict_on_batch(images.astype(np.float32)).astype(np.float16))
            done = min((index + 1) * FEATURE_BATCH, len(items))
            if index % 20 == 0 or done == len(items):
                log(f"  {what}: {done}/{len(items)} images ({done / max(time.time() - started, 1e-6):.1f}/s)")
    return np.concatenate(outputs)


def teacher_run(folder: str) -> Path:
    path = Path(folder)
    return path if path.is_absolute() else REPO / path


def teacher_probabilities(recipe: Recipe, x_train: np.ndarray) -> tuple[np.ndarray, list[dict]]:
    """The mean of the teachers' probabilities on the cached training views, and what each teacher was.

    Every teacher shares the student's frozen bottom (CACHE_FIELDS, the same ImageNet weights), so its trained half
    reads the student's cache directly: its classifier is rebuilt by build_models and given the saved weights."""
    import keras

    from hematovision.logic.inference import sha256_file

    outputs, described = [], []
    for folder in recipe.teachers:
        run = teacher_run(folder)
        teacher = Recipe.load(run / RUN_RECIPE_NAME)
        differing = [name for name in CACHE_FIELDS if getattr(teacher, name) != getattr(recipe, name)]
        if differing:
            raise ValueError(f"teacher {folder} does not share the student's cached features: {', '.join(differing)}")
        models = build_models(None, replace(teacher, mixstyle=0.0))
        models.classifier.set_weights(keras.models.load_model(run / "classifier.keras", compile=False).get_weights())
        probabilities = np.concatenate(
            [
                models.head.predict_on_batch(x_train[i : i + FEATURE_BATCH].astype(np.float32))
                for i in range(0, len(x_train), FEATURE_BATCH)
            ]
        )
        outputs.append(probabilities)
        described.append(
            {"run": folder, "recipe": teacher.version, "classifier_sha256": sha256_file(run / "classifier.keras")}
        )
        log(f"  teacher {folder}: probabilities of {len(probabilities)} training views")
    return np.mean(outputs, axis=0).astype(np.float32), described


def training_targets(recipe: Recipe, labels: np.ndarray, teacher: np.ndarray | None) -> np.ndarray:
    """One-hot labels, or (1 - distill_weight) x them + distill_weight x the teachers' mean probabilities."""
    one_hot = np.eye(len(CLASSES), dtype=np.float32)[labels]
    if teacher is None:
        return one_hot
    return ((1.0 - recipe.distill_weight) * one_hot + recipe.distill_weight * teacher).astype(np.float32)


def validate(head, x_val: np.ndarray, y_val: np.ndarray) -> dict:
    """Validation accuracy, macro-F1 (the card's and the CLI's implementation) and cross-entropy of the head."""
    from hematovision.logic.metrics import compute_metrics

    probabilities = head.predict(x_val, batch_size=256, verbose=0)
    predicted = probabilities.argmax(axis=1)
    return {
        "val_accuracy": float(np.mean(predicted == y_val)),
        "val_macro_f1": compute_metrics(y_val, predicted, CLASSES)["macro_f1"],
        "val_loss": float(-np.mean(np.log(np.clip(probabilities[np.arange(len(y_val)), y_val], 1e-7, 1)))),
    }


def compile_head(head, recipe: Recipe, steps_per_epoch: int) -> None:
    """AdamW on a cosine schedule with a linear warm-up; label-smoothed cross-entropy."""
    import keras

    warmup = max(1, int(steps_per_epoch * recipe.warmup_epochs))
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=recipe.peak_lr / recipe.warmup_start_divisor,
        decay_steps=max(1, steps_per_epoch * recipe.epochs - warmup),
        warmup_target=recipe.peak_lr,
        warmup_steps=warmup,
        alpha=recipe.cosine_alpha,
    )
    head.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=schedule, weight_decay=recipe.weight_decay),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
        metrics=["accuracy"],
    )


class StepAverage:
    """The running mean of a model's trainable weights over the training steps it is given (selection
    "step_average"); the frozen weights never change, so they need no average."""

    def __init__(self, model):
        self.model, self.steps, self.sums = model, 0, None

    def add(self) -> None:
        values = [variable.numpy().astype(np.float64) for variable in self.model.trainable_weights]
        if self.sums is None:
            self.sums = values
        else:
            for total, value in zip(self.sums, values, strict=True):
                total += value
        self.steps += 1

    def apply(self) -> None:
        for variable, total in zip(self.model.trainable_weights, self.sums, strict=True):
            variable.assign((total / self.steps).astype(variable.dtype))


def fit(head, recipe: Recipe, cache: SimpleNamespace, started: float, verbose: int) -> tuple[list[dict], list]:
    """Train the head on the cached features for recipe.epochs epochs, with class-balanced sample weights (and the
    outlier views, if any, towards the uniform distribution at recipe.outlier_weight).
    Returns each epoch's history entry (training and validation figures) and weights; with selection "step_average",
    a last entry (epoch "average") and weights for the mean of the weights over the steps it covers."""
    import keras

    counts = np.bincount(cache.y_train, minlength=len(CLASSES)).astype(np.float64)
    class_weights = counts.sum() / (len(CLASSES) * np.maximum(counts, 1))
    x_train = cache.x_train.astype(np.float32)
    targets = training_targets(recipe, cache.y_train, cache.teacher)
    weights = class_weights[cache.y_train].astype(np.float32)
    if len(cache.x_outlier):  # outlier exposure: uniform targets (the mean blood weight is 1)
        x_train = np.concatenate([x_train, cache.x_outlier.astype(np.float32)])
        targets = np.concatenate([targets, np.full((len(cache.x_outlier), len(CLASSES)), 1 / len(CLASSES), np.float32)])
        weights = np.concatenate([weights, np.full(len(cache.x_outlier), recipe.outlier_weight, np.float32)])
    steps_per_epoch = int(np.ceil(len(x_train) / recipe.batch_size))
    compile_head(head, recipe, steps_per_epoch)
    history: list[dict] = []
    epoch_weights: list = []
    average = StepAverage(head) if recipe.selection == "step_average" else None

    class RecordEachEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch + 1

        def on_train_batch_end(self, batch, logs=None):
            if average is not None and self.epoch >= recipe.average_from_epoch:
                average.add()

        def on_epoch_end(self, epoch, logs=None):
            entry = {
                "epoch": epoch + 1,
                "loss": float(logs["loss"]),
                "accuracy": float(logs["accuracy"]),
                **validate(head, cache.x_val, cache.y_val),
                "seconds": round(time.time() - started, 1),
            }
            history.append(entry)
            epoch_weights.append(head.get_weights())
            figures = ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in entry.items())
            log(f"epoch {epoch + 1}/{recipe.epochs}: {figures}")

    log(f"fine-tuning {len(head.trainable_weights)} weight tensors, {recipe.epochs} epochs of {steps_per_epoch} steps")
    head.fit(
        x_train,
        targets,
        sample_weight=weights,
        epochs=recipe.epochs,
        batch_size=recipe.batch_size,
        shuffle=True,
        verbose=verbose,
        callbacks=[RecordEachEpoch()],
    )
    if average is not None:
        average.apply()
        entry = {"epoch": "average", "steps": average.steps, **validate(head, cache.x_val, cache.y_val)}
        history.append(entry)
        epoch_weights.append(head.get_weights())
        log(f"mean of the weights over {average.steps} steps: val_macro_f1={entry['val_macro_f1']:.4f}")
    return history, epoch_weights


def select_epoch(recipe: Recipe, history: list[dict]) -> int | str:
    """The recipe's selection rule: the epoch with the best validation macro-F1 (ties: the earlier), or "average"."""
    if recipe.selection == "best_val_macro_f1":
        return max(history, key=lambda entry: entry["val_macro_f1"])["epoch"]
    if recipe.selection == "step_average":
        return "average"
    raise ValueError(f"no implementation of selection rule {recipe.selection!r}")


def class_centroids(pooled: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Unit-length mean of the unit-length pooled features of each class: [n_classes, n_features]."""
    unit = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    centroids = np.stack([unit[labels == c].mean(axis=0) for c in range(len(CLASSES))])
    return (centroids / np.linalg.norm(centroids, axis=1, keepdims=True)).astype(np.float32)


def train(recipe: Recipe, run_dir: Path, data_root: Path, weights, smoke: bool = False) -> dict:
    """One training run into run_dir: recipe.json, classifier.keras, centroids.npy, train_report.json."""
    os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
    import keras
    import tensorflow as tf

    started = time.time()
    run_dir.mkdir(parents=True, exist_ok=True)
    recipe.save(run_dir / RUN_RECIPE_NAME)
    data = training_data(data_root, smoke)
    keras.utils.set_random_seed(recipe.seed)
    models = build_models(weights, recipe)

    views = training_views(recipe, data)
    log(
        f"training views: {len(views)} (bccd {len(data.train['bccd_train'])}, pbc {len(data.train['pbc_train'])} "
        f"x {recipe.pbc_views}); validation images: {len(data.val)}"
    )
    log("caching frozen features of the training views and the validation images")
    cache_started = time.time()
    x_train = cache_features(models.bottom, views, lambda view: training_view(*view, recipe), "train views")
    x_val = cache_features(models.bottom, data.val, lambda sample: model_input_of(sample, recipe), "validation")
    cache = SimpleNamespace(
        x_train=x_train,
        y_train=np.array([sample.label for sample, _ in views]),
        x_val=x_val.astype(np.float32),
        y_val=np.array([sample.label for sample in data.val]),
        teacher=None,
        x_outlier=np.zeros((0, *x_train.shape[1:]), x_train.dtype),
    )
    seeds = outlier_seeds(recipe, smoke)
    if seeds:
        cache.x_outlier = cache_features(models.bottom, seeds, lambda seed: outlier_view(seed, recipe), "outlier views")
    cache_seconds = time.time() - cache_started
    teachers = []
    if recipe.teachers:
        log(f"the teachers' probabilities on the training views ({len(recipe.teachers)} runs)")
        cache.teacher, teachers = teacher_probabilities(recipe, cache.x_train)
        agreement = float(np.mean(cache.teacher.argmax(axis=1) == cache.y_train))
        log(f"  the teachers' mean agrees with the label on {agreement:.4f} of the training views")

    bn_before = np.array(models.probe_bn.moving_mean)
    history, epoch_weights = fit(models.head, recipe, cache, started, verbose=0 if smoke else 2)
    bn_drift = float(np.max(np.abs(np.array(models.probe_bn.moving_mean) - bn_before)))
    if bn_drift != 0.0:
        raise RuntimeError(f"BatchNorm moving statistics changed during training (max drift {bn_drift})")

    selected = select_epoch(recipe, history)
    (index,) = [i for i, entry in enumerate(history) if entry["epoch"] == selected]
    models.head.set_weights(epoch_weights[index])
    log("computing class centroids of the pooled features (for the out-of-distribution score)")
    pooled = models.pooled.predict(cache.x_train.astype(np.float32), batch_size=256, verbose=0)

    report = {
        "selected_epoch": selected,
        "train_counts": {name: class_counts(samples) for name, samples in data.train.items()},
        "val_counts": class_counts(data.val),
        "history": history,
        "batchnorm_check": {"layer": models.probe_bn.name, "max_moving_mean_drift": bn_drift},
        **({"teachers": teachers, "teachers_agree_with_label": agreement} if teachers else {}),
        "seconds": {"feature_cache": round(cache_seconds, 1), "total": round(time.time() - started, 1)},
        "smoke": smoke,
        **({"outlier_views": len(cache.x_outlier)} if len(cache.x_outlier) else {}),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "python": sys.version.split()[0]},
    }
    save(run_dir, models.classifier, class_centroids(pooled, cache.y_train), report)
    log(f"training done in {report['seconds']['total']} s; selected epoch {selected}")
    return report


def save(run_dir: Path, classifier, centroids: np.ndarray, report: dict) -> None:
    classifier.save(run_dir / "classifier.keras")
    np.save(run_dir / "centroids.npy", centroids)
    (run_dir / "train_report.json").write_text(json.dumps(report, indent=2))
