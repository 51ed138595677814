"""A small learned white-cell localiser, as an experiment (issue #17): research only, nothing that ships uses it.

.venv-export/bin/python -m export.localiser_net cv --work build/runs/localiser-net-NAME [--folds 3] [--steps 1800]
.venv-export/bin/python -m export.localiser_net final --work DIR      # one model on every tune field (after cv)
.venv-export/bin/python -m export.localiser_net report --work DIR     # the final model on the REPORT split, once

- The network (CenterNet-style, from scratch, no weight shared with the classifier): a field resized so its long side is
  WORK_LONG px (padded with black to a multiple of 32), uint8 in; out: a white-cell centre heatmap at stride 4, the box
  size (log of width and height in stride units) at each cell, and log px/um at the working scale (regressed on the
  red-cell truth of export.fields: median RBC box width / 7.5 um). Depthwise-separable blocks down to stride 32 (the
  receptive field covers a white cell that fills a third of the frame) and a small feature pyramid back to stride 4.
- Training: only the TUNE fields of export/fields_split.csv (bccd, txl, phone; each image once), random crops of
  Config.crop px at a random zoom (Config.zoom around the working scale), rotations and flips, colour
  casts, desaturation, blur, noise, a black eyepiece circle and JPEG re-encoding.
- Cross-validation: folds by sha256 (so byte-identical fields, e.g. txl's copies of bccd fields, share a fold); each
  fold's model is exported to ONNX and run through onnxruntime (1 thread) and the numpy peak decoder below on its
  held-out fields; the peak threshold is the one maximising the mean F1 over the three sets on the out-of-fold
  outputs (as export/localiser_train.py chooses SCORE_MIN). The figures then come from export.fields.evaluate (the
  repo's matching rule), beside the current stain-based localiser on the same fields (whose parameters were fitted
  on all tune fields, so its tune figures are in-sample: optimistic for it).
- The decoder (decode, working_image, NetLocaliser) is pure numpy + Pillow + onnxruntime, as serving would need it.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

WORK_LONG = 320  # the working scale: the field's long side in px (phone WBCs ~17 px, bccd ~100 px)
MULTIPLE = 32  # the network's total stride: padded sides are multiples of it
STRIDE = 4  # the heatmap's stride
MAX_CELLS = 64
ONNX_NAME = "localiser_net.onnx"
OPSET = 17  # as export/convert.py


@dataclass
class Config:
    work_long: int = WORK_LONG
    crop: int = 160
    batch: int = 8
    steps: int = 1800
    lr: float = 4e-3
    folds: int = 3
    seed: int = 0
    zoom: tuple[float, float] = (0.6, 1.6)  # around the working scale: 40x to 100x objectives
    width: float = 1.0  # channel multiplier


# ------------------------------------------------------------------------------------------- pure numpy: serving side
@dataclass
class NetLocalisation:
    """Boxes (xmin, ymin, xmax, ymax) in the pixels of the image given, their peak scores, and the scale."""

    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    px_per_um: float | None = None


def working_image(image, long_side: int = WORK_LONG) -> tuple[np.ndarray, float]:
    """The field at the working scale, black-padded (bottom, right) to multiples of MULTIPLE, and the resize factor.

    A large array is first strided to about twice the working size, so a 12 MP photo costs little more than a
    640x480 one (the same shortcut as logic/localiser.py); the final step is Pillow's antialiased bilinear resize."""
    if isinstance(image, Image.Image):
        w, h = image.size
        factor = long_side / max(w, h)
        step = max(1, int(1 / (2 * factor)))
        if step > 1:
            image = image.reduce(step)
        pil = image.convert("RGB")
    else:
        rgb = np.asarray(image)
        h, w = rgb.shape[:2]
        factor = long_side / max(w, h)
        step = max(1, int(1 / (2 * factor)))
        pil = Image.fromarray(np.ascontiguousarray(rgb[::step, ::step, :3]))
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    small = np.asarray(pil.resize(size, Image.Resampling.BILINEAR, reducing_gap=None))
    padded = np.zeros((-(-size[1] // MULTIPLE) * MULTIPLE, -(-size[0] // MULTIPLE) * MULTIPLE, 3), np.uint8)
    padded[: size[1], : size[0]] = small
    # the factor actually applied per axis differs from `factor` by rounding only; x's is used for both
    return padded, size[0] / w


def local_maxima(heat: np.ndarray) -> np.ndarray:
    """True where a cell is >= its 8 neighbours (a 3x3 max-pool peak, CenterNet's NMS)."""
    padded = np.pad(heat, 1, mode="constant", constant_values=-np.inf)
    h, w = heat.shape
    neighbours = np.stack(
        [padded[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3) if (dy, dx) != (1, 1)]
    )
    return heat >= neighbours.max(axis=0)


def decode(
    heat: np.ndarray,
    size: np.ndarray,
    factor: float,
    image_size: tuple[int, int],
    threshold: float,
    stride: int = STRIDE,
    max_cells: int = MAX_CELLS,
) -> tuple[np.ndarray, np.ndarray]:
    """Heatmap peaks -> boxes in the original image's pixels, best first, and their scores.

    heat [h, w] in 0-1; size [h, w, 2]: log(width / stride), log(height / stride) at the working scale; factor: working
    px per original px; image_size: the original (width, height). A peak whose centre lies inside a box already kept
    is dropped (two peaks on one lobed nucleus), as logic/localiser.py does with its candidates. The centre is refined
    to the score-weighted mean of the peak's 3x3 neighbourhood (the heatmap's 4 px cells are coarse on phone cells)."""
    heat = np.asarray(heat, dtype=np.float32)
    peaks = local_maxima(heat) & (heat >= threshold)
    ys, xs = np.nonzero(peaks)
    order = np.argsort(-heat[ys, xs], kind="stable")
    ys, xs = ys[order], xs[order]
    h, w = heat.shape
    boxes, scores = [], []
    for y, x in zip(ys.tolist(), xs.tolist(), strict=True):
        y0, y1, x0, x1 = max(0, y - 1), min(h, y + 2), max(0, x - 1), min(w, x + 2)
        patch = heat[y0:y1, x0:x1]
        total = float(patch.sum())
        cy = (float((patch.sum(axis=1) * np.arange(y0, y1)).sum()) / total + 0.5) * stride
        cx = (float((patch.sum(axis=0) * np.arange(x0, x1)).sum()) / total + 0.5) * stride
        bw, bh = np.exp(np.clip(size[y, x], -3.0, 6.0)) * stride
        cx, cy = cx / factor, cy / factor
        if cx >= image_size[0] or cy >= image_size[1]:
            continue  # a peak in the black padding
        if any(k[0] <= cx <= k[2] and k[1] <= cy <= k[3] for k in boxes):
            continue
        half_w, half_h = bw / (2 * factor), bh / (2 * factor)
        boxes.append(
            (
                max(0.0, cx - half_w),
                max(0.0, cy - half_h),
                min(float(image_size[0]), cx + half_w),
                min(float(image_size[1]), cy + half_h),
            )
        )
        scores.append(float(heat[y, x]))
        if len(boxes) >= max_cells:
            break
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(scores, dtype=np.float64)


class NetLocaliser:
    """image (uint8 HxWx3 array or PIL image) -> NetLocalisation, through onnxruntime on 1 thread."""

    def __init__(self, onnx_path: Path, threshold: float, long_side: int = WORK_LONG):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.threshold = threshold
        self.long_side = long_side

    def raw(self, image) -> tuple[np.ndarray, np.ndarray, float, float, tuple[int, int]]:
        """(heat, size, log px/um at the working scale, factor, original size): the network's part, no decoding."""
        size = image.size if isinstance(image, Image.Image) else (image.shape[1], image.shape[0])
        work, factor = working_image(image, self.long_side)
        heat, box_size, log_scale = self.session.run(None, {"image": work[None]})
        return heat[0], box_size[0], float(np.ravel(log_scale)[0]), factor, size

    def __call__(self, image) -> NetLocalisation:
        heat, box_size, log_scale, factor, size = self.raw(image)
        boxes, scores = decode(heat, box_size, factor, size, self.threshold)
        return NetLocalisation(
            boxes=[tuple(int(round(v)) for v in b) for b in boxes],
            scores=scores.tolist(),
            px_per_um=math.exp(log_scale) / factor,
        )


# ------------------------------------------------------------------------------------------------ training data
def heat_targets(boxes: np.ndarray, side: int, stride: int = STRIDE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CenterNet targets for a side x side crop: heat [s, s] (1 at each centre's cell, a Gaussian around it whose sigma
    grows with the box), size [s, s, 2] (log box size in stride units at the centre cell) and its mask [s, s]."""
    s = side // stride
    heat = np.zeros((s, s), np.float32)
    size = np.zeros((s, s, 2), np.float32)
    mask = np.zeros((s, s), np.float32)
    grid = np.arange(s, dtype=np.float32)
    for x0, y0, x1, y1 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        cx, cy = (x0 + x1) / 2 / stride, (y0 + y1) / 2 / stride
        ix, iy = int(cx), int(cy)
        if not (0 <= ix < s and 0 <= iy < s):
            continue
        bw, bh = max(x1 - x0, 1.0) / stride, max(y1 - y0, 1.0) / stride
        sigma = max(0.7, 0.1 * min(bw, bh))
        g = np.exp(-((grid[None, :] - ix) ** 2 + (grid[:, None] - iy) ** 2) / (2 * sigma * sigma))
        heat = np.maximum(heat, g)
        heat[iy, ix] = 1.0
        size[iy, ix] = (math.log(bw), math.log(bh))
        mask[iy, ix] = 1.0
    return heat, size, mask


def augment(
    rng: np.random.Generator, image: Image.Image, wbc: np.ndarray, px_per_um: float | None, cfg: Config
) -> tuple[np.ndarray, np.ndarray, float]:
    """One training view: (uint8 crop [C, C, 3], its WBC boxes in crop px, log px/um at its scale or nan)."""
    w, h = image.size
    if rng.random() < 0.3:  # blur at the original's resolution, as a defocused camera does
        image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 2.5))))
    zoom = math.exp(rng.uniform(math.log(cfg.zoom[0]), math.log(cfg.zoom[1])))
    f = cfg.work_long / max(w, h) * zoom
    size = (max(8, round(w * f)), max(8, round(h * f)))
    small = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=None)
    fx, fy = size[0] / w, size[1] / h
    c = cfg.crop
    ox = int(rng.integers(min(0, c - size[0]), max(0, c - size[0]) + 1))
    oy = int(rng.integers(min(0, c - size[1]), max(0, c - size[1]) + 1))
    canvas = Image.new("RGB", (c, c), (0, 0, 0))
    canvas.paste(small, (ox, oy))
    boxes = np.asarray(wbc, dtype=np.float64).reshape(-1, 4) * np.array([fx, fy, fx, fy]) + np.array([ox, oy, ox, oy])
    if rng.random() < 0.25:  # the eyepiece's black circle
        r = c * rng.uniform(0.35, 0.7)
        mx, my = c / 2 + rng.uniform(-0.15, 0.15) * c, c / 2 + rng.uniform(-0.15, 0.15) * c
        mask = Image.new("L", (c, c), 0)
        ImageDraw.Draw(mask).ellipse([mx - r, my - r, mx + r, my + r], fill=255)
        canvas = Image.composite(canvas, Image.new("RGB", (c, c), (0, 0, 0)), mask)
        centre = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
        boxes = boxes[np.hypot(centre[:, 0] - mx, centre[:, 1] - my) <= r - 2]
    x = np.asarray(canvas, dtype=np.float32)
    black = x.max(axis=2, keepdims=True) == 0  # padding and vignette stay black under the colour changes
    gains = np.exp(rng.normal(0, 0.08, 3)) * math.exp(rng.uniform(-0.3, 0.2))
    if rng.random() < 0.3:  # a strong cast (yellow lamp, blue filter)
        gains *= rng.uniform(0.72, 1.08, 3)
    x = x * gains
    grey = x.mean(axis=2, keepdims=True)
    x = grey + (x - grey) * rng.uniform(0.6, 1.3)
    if rng.random() < 0.2:
        x = x + rng.normal(0, rng.uniform(2, 8), x.shape)
    x = np.where(black, 0, np.clip(x, 0, 255)).astype(np.uint8)
    k = int(rng.integers(4))  # rotations and a flip: the smear has no up
    if k:
        x = np.rot90(x, k)
        for _ in range(k):  # (x, y) -> (y, c - x) per quarter turn counter-clockwise
            boxes = np.stack([boxes[:, 1], c - boxes[:, 2], boxes[:, 3], c - boxes[:, 0]], axis=1)
    if rng.random() < 0.5:
        x = x[:, ::-1]
        boxes = np.stack([c - boxes[:, 2], boxes[:, 1], c - boxes[:, 0], boxes[:, 3]], axis=1)
    x = np.ascontiguousarray(x)
    if rng.random() < 0.3:  # phone JPEGs
        buffer = io.BytesIO()
        Image.fromarray(x).save(buffer, "JPEG", quality=int(rng.integers(30, 91)))
        x = np.asarray(Image.open(buffer).convert("RGB"))
    centre = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1).reshape(-1, 2)
    inside = (centre[:, 0] >= 0) & (centre[:, 0] < c) & (centre[:, 1] >= 0) & (centre[:, 1] < c)
    scale = math.log(px_per_um * fx) if px_per_um else math.nan
    return x, boxes[inside], scale


@dataclass
class Example:
    set: str
    sha256: str
    image: Image.Image
    wbc: np.ndarray
    px_per_um: float | None


def load_examples(fields, root) -> list[Example]:
    out = []
    for f in fields:
        with Image.open(f.path(root)) as opened:
            out.append(
                Example(f.set, f.sha256, opened.convert("RGB"), f.wbc, f.px_per_um if f.set != "phone" else None)
            )
    return out


def batches(examples: list[Example], cfg: Config, rng: np.random.Generator):
    """Endless batches (images, heat, size, mask, log scale, scale known) of augmented views, sets balanced."""
    by_set: dict[str, list[Example]] = {}
    for e in examples:
        by_set.setdefault(e.set, []).append(e)
    names = sorted(by_set)
    while True:
        xs, heats, sizes, masks, scales = [], [], [], [], []
        for _ in range(cfg.batch):
            pool = by_set[names[int(rng.integers(len(names)))]]
            e = pool[int(rng.integers(len(pool)))]
            x, boxes, scale = augment(rng, e.image, e.wbc, e.px_per_um, cfg)
            heat, size, mask = heat_targets(boxes, cfg.crop)
            xs.append(x)
            heats.append(heat)
            sizes.append(size)
            masks.append(mask)
            scales.append(scale)
        s = np.asarray(scales, np.float32)
        yield (
            np.stack(xs).astype(np.float32),
            np.stack(heats).astype(np.float32),
            np.stack(sizes).astype(np.float32),
            np.stack(masks).astype(np.float32),
            np.nan_to_num(s),
            (~np.isnan(s)).astype(np.float32),
        )


def prefetched(source, count: int, depth: int = 4):
    """The first `count` items of `source`, produced by a thread (Pillow and TF release the GIL, so augmenting the
    next batch overlaps the training step on a starved CPU)."""
    import queue
    import threading

    items: queue.Queue = queue.Queue(maxsize=depth)

    def produce() -> None:
        for _, item in zip(range(count), source, strict=False):
            items.put(item)
        items.put(None)

    threading.Thread(target=produce, daemon=True).start()
    while (item := items.get()) is not None:
        yield item


# ---------------------------------------------------------------------------------------------- the network (TF)
def build_model(cfg: Config):
    """Keras model: float32 RGB 0-255 [N, H, W, 3] (H, W multiples of 32) -> (heat logits, size, log px/um)."""
    import keras
    from keras import layers

    def ch(c: int) -> int:
        return max(8, int(round(c * cfg.width / 8)) * 8)

    def cbr(x, c, k=3, s=1):
        x = layers.Conv2D(ch(c), k, s, padding="same", use_bias=False)(x)
        return layers.ReLU()(layers.BatchNormalization()(x))

    def block(x, c, s=1, d=1):
        y = layers.DepthwiseConv2D(3, s, padding="same", dilation_rate=d, use_bias=False)(x)
        y = layers.ReLU()(layers.BatchNormalization()(y))
        y = layers.Conv2D(ch(c), 1, use_bias=False)(y)
        y = layers.BatchNormalization()(y)
        if s == 1 and x.shape[-1] == y.shape[-1]:
            y = layers.Add()([x, y])
        return layers.ReLU()(y)

    image = keras.Input((None, None, 3), name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(image)
    x = cbr(x, 16, 3, 2)  # 1/2
    x = block(x, 24, 2)
    c4 = block(x, 24)  # 1/4
    x = block(c4, 40, 2)
    c8 = block(x, 40)  # 1/8
    x = block(c8, 64, 2)
    c16 = block(x, 64)  # 1/16
    x = block(c16, 96, 2)
    x = block(x, 96)
    c32 = block(x, 96, d=2)  # 1/32: the receptive field spans a bccd white cell at zoom 2
    p = cbr(c32, 48, 1)
    for lateral in (c16, c8, c4):
        p = layers.Add()([layers.UpSampling2D(2)(p), cbr(lateral, 48, 1)])
        p = block(p, 48)
    trunk = block(p, 32)
    heat = layers.Conv2D(1, 1, bias_initializer=keras.initializers.Constant(-2.19), name="heat")(trunk)
    size = layers.Conv2D(2, 1, bias_initializer=keras.initializers.Constant(2.3), name="size")(trunk)
    g = layers.Dense(ch(32), activation="relu")(layers.GlobalAveragePooling2D()(c32))
    scale = layers.Dense(1, bias_initializer=keras.initializers.Constant(1.9), name="scale")(g)
    return keras.Model(image, [heat, size, scale], name="localiser_net")


def train(examples: list[Example], cfg: Config, log: Callable[[str], None]):
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(cfg.seed)
    model = build_model(cfg)
    schedule = keras.optimizers.schedules.CosineDecay(cfg.lr, cfg.steps, alpha=0.02, warmup_target=None)
    optimizer = keras.optimizers.Adam(schedule)

    @tf.function
    def step(x, heat, size, mask, scale, known):
        with tf.GradientTape() as tape:
            logits, size_out, scale_out = model(x, training=True)
            p = tf.clip_by_value(tf.sigmoid(logits[..., 0]), 1e-4, 1 - 1e-4)
            positive = tf.cast(heat >= 1.0, tf.float32)
            n = tf.maximum(tf.reduce_sum(positive), 1.0)
            focal = -tf.reduce_sum(
                positive * (1 - p) ** 2 * tf.math.log(p) + (1 - positive) * (1 - heat) ** 4 * p**2 * tf.math.log(1 - p)
            )
            size_loss = tf.reduce_sum(tf.abs(size_out - size) * mask[..., None]) / n
            scale_loss = tf.reduce_sum(tf.abs(scale_out[:, 0] - scale) * known) / tf.maximum(tf.reduce_sum(known), 1.0)
            loss = focal / n + size_loss + 0.5 * scale_loss
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return focal / n, size_loss, scale_loss

    rng = np.random.default_rng(cfg.seed)
    started, sums = time.time(), np.zeros(3)
    for i, batch in enumerate(prefetched(batches(examples, cfg, rng), cfg.steps)):
        sums += [float(v) for v in step(*[tf.constant(b) for b in batch])]
        if (i + 1) % 50 == 0:
            a = sums / 50
            seconds = time.time() - started
            log(f"  step {i + 1}/{cfg.steps}: focal {a[0]:.3f} size {a[1]:.3f} scale {a[2]:.3f} ({seconds:.0f} s)")
            sums[:] = 0
    return model


def export_onnx(model, path: Path) -> int:
    """uint8 [N, H, W, 3] 'image' -> 'heat' (sigmoid) [N, h, w], 'size' [N, h, w, 2], 'log_px_per_um' [N]."""
    import onnx
    import tensorflow as tf
    import tf2onnx

    spec = (tf.TensorSpec((None, None, None, 3), tf.uint8, name="image"),)

    @tf.function(input_signature=spec)
    def serve(image):
        logits, size, scale = model(tf.cast(image, tf.float32), training=False)
        return [tf.sigmoid(logits[..., 0]), size, scale[:, 0]]

    proto, _ = tf2onnx.convert.from_function(serve, input_signature=spec, opset=OPSET)
    names = ["heat", "size", "log_px_per_um"]
    renames = dict(zip([o.name for o in proto.graph.output], names, strict=True))
    for node in proto.graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    for output in proto.graph.output:
        output.name = renames[output.name]
    onnx.checker.check_model(proto)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, path)
    return path.stat().st_size


# ------------------------------------------------------------------------------------------------- evaluation
def fold_of(sha256: str, folds: int) -> int:
    """Digits of the sha256 that export.fields.split_of does not use (it reads the first 12)."""
    return int(sha256[12:24], 16) % folds


def threshold_sweep(raws: list[tuple], thresholds: np.ndarray) -> list[dict]:
    """Per threshold: recall and precision per set from cached network outputs (set, truth, raw) by the repo's match."""
    from export.fields import match

    rows = []
    for t in thresholds:
        counts: dict[str, list[int]] = {}
        for name, truth, (heat, size, _, factor, image_size) in raws:
            boxes, _ = decode(heat, size, factor, image_size, float(t))
            c = counts.setdefault(name, [0, 0, 0])
            c[0] += len(match(boxes, truth))
            c[1] += len(truth)
            c[2] += len(boxes)
        figs = {n: (m / max(tr, 1), m / max(p, 1)) for n, (m, tr, p) in counts.items()}
        mean_f1 = float(np.mean([2 * r * p / max(r + p, 1e-9) for r, p in figs.values()]))
        rows.append({"threshold": round(float(t), 3), "figures": figs, "mean_f1": mean_f1})
    return rows


def merge(tallies):
    from export.fields import Tally

    out = Tally()
    for t in tallies:
        for name in ("fields", "true", "predicted", "matched", "scale_fields", "scale_within"):
            setattr(out, name, getattr(out, name) + getattr(t, name))
        out.misses += t.misses
        out.scale_ratios += t.scale_ratios
    return out


def timings(locate: Callable, root: Path) -> dict[str, float]:
    """Median warm ms on a bccd field (640x480) and its 4000x3000 enlargement, as export.fields times the localiser."""
    from export.fields import load_fields, time_locate

    sample = next(f for f in load_fields(root, ["bccd"]))
    with Image.open(sample.path(root)) as opened:
        image = opened.convert("RGB")
    big = image.resize((4000, 3000), Image.Resampling.BILINEAR)
    return {
        "640x480_ms": round(time_locate(locate, image), 1),
        "12mp_array_ms": round(time_locate(locate, big), 1),
        "12mp_pil_ms": round(time_locate(locate, big, pil=True), 1),
    }


def network_only_ms(net: NetLocaliser, image: Image.Image, repeats: int = 15) -> float:
    """Median warm ms of session.run alone on the working-scale array (no resize, no peak decoding)."""
    work, _ = working_image(image, net.long_side)
    net.session.run(None, {"image": work[None]})
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        net.session.run(None, {"image": work[None]})
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))


def _logger(work: Path) -> Callable[[str], None]:
    log_file = open(work / "log.txt", "a")  # noqa: SIM115 - kept open for the run

    def log(message: str) -> None:
        print(message, flush=True)
        log_file.write(message + "\n")
        log_file.flush()

    return log


def _rows(evaluate, locate_for, fields_by_fold, sets, versions, root) -> dict[str, dict]:
    """{set/version: Tally.row()} with each fold's locate on its own held-out fields, merged."""
    out = {}
    for version in [None, *versions]:
        for name in sets:
            tallies = [
                evaluate(locate_for(k), [f for f in chosen if f.set == name], root, version)
                for k, chosen in fields_by_fold.items()
            ]
            out[f"{name}/{version or 'original'}"] = merge(tallies).row()
    return out


def cmd_cv(args) -> int:
    from export.fields import DATA_ROOT, SETS, VERSIONS, check_split, evaluate, format_row, load_fields, unique
    from hematovision.logic.localiser import locate as stain_locate

    cfg = Config(
        steps=args.steps,
        lr=args.lr,
        folds=args.folds,
        seed=args.seed,
        work_long=args.work_long,
        width=args.width,
        crop=args.crop,
        batch=args.batch,
        zoom=(args.zoom_min, args.zoom_max),
    )
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    log = _logger(work)
    if (work / "config.json").is_file():  # a run folder keeps the config its folds were trained with
        saved = json.loads((work / "config.json").read_text())
        cfg = Config(**{**saved, "zoom": tuple(saved["zoom"])})
    (work / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    root = Path(args.data) if args.data else DATA_ROOT
    fields = load_fields(root)
    check_split(fields)
    tune = [f for f in fields if f.split == "tune"]
    log(f"cv: {len(tune)} tune fields ({len(unique(tune))} unique images), {cfg.folds} folds by sha256; {asdict(cfg)}")
    raws, nets = [], {}
    chosen_folds = [int(k) for k in args.eval_folds.split(",")] if args.eval_folds else list(range(cfg.folds))
    for k in chosen_folds:
        onnx_path = work / f"fold{k}" / ONNX_NAME
        if args.only_fold is not None and k != args.only_fold:
            continue
        if not onnx_path.is_file():
            train_fields = unique([f for f in tune if fold_of(f.sha256, cfg.folds) != k])
            log(f"fold {k}: training on {len(train_fields)} images")
            model = train(load_examples(train_fields, root), cfg, log)
            log(f"fold {k}: ONNX {export_onnx(model, onnx_path)} bytes")
        if args.only_fold is not None:
            return 0  # one fold trained (folds in parallel processes); rerun without --only-fold to evaluate
        nets[k] = NetLocaliser(onnx_path, threshold=0.5, long_side=cfg.work_long)
        for f in tune:
            if fold_of(f.sha256, cfg.folds) == k:
                with Image.open(f.path(root)) as opened:
                    raws.append((f.set, f.wbc, nets[k].raw(np.asarray(opened.convert("RGB")))))
    sweep = threshold_sweep(raws, np.round(np.arange(0.05, 0.81, 0.05), 3))
    for row in sweep:
        figs = "  ".join(f"{n} {r:.3f}/{p:.3f}" for n, (r, p) in sorted(row["figures"].items()))
        log(f"  threshold {row['threshold']:.2f}: {figs}  mean F1 {row['mean_f1']:.3f}")
    best = max(sweep, key=lambda r: r["mean_f1"])
    threshold = best["threshold"]
    log(f"chosen threshold (out-of-fold mean F1 over the sets): {threshold}")
    for net in nets.values():
        net.threshold = threshold
    by_fold = {k: [f for f in tune if fold_of(f.sha256, cfg.folds) == k] for k in chosen_folds}
    versions = [] if args.no_versions else list(VERSIONS)
    results = {"config": asdict(cfg), "eval_folds": chosen_folds, "threshold": threshold, "sweep": sweep}
    out = work / ("results.json" if not args.eval_folds else f"results-folds{args.eval_folds.replace(',', '')}.json")
    for name, locate_for in (("net", lambda k: nets[k]), ("stain", lambda k: stain_locate)):
        rows = _rows(evaluate, locate_for, by_fold, SETS, versions, root)
        results[name] = rows
        for key, row in rows.items():
            log(format_row(f"{name} {key}", row))
        out.write_text(json.dumps(results, indent=2, default=float))
    first = chosen_folds[0]
    bccd = next(f for f in fields if f.set == "bccd")
    with Image.open(bccd.path(root)) as opened:
        sample = opened.convert("RGB")
    results["timing"] = {
        "net": {**timings(nets[first], root), "session_run_640x480_ms": round(network_only_ms(nets[first], sample), 1)},
        "stain": timings(stain_locate, root),
        "onnx_bytes": (work / f"fold{first}" / ONNX_NAME).stat().st_size,
        "load": os.getloadavg()[0],
    }
    log(f"timing (1 thread, warm; load average {os.getloadavg()[0]:.2f}): {json.dumps(results['timing'])}")
    out.write_text(json.dumps(results, indent=2, default=float))
    return 0


def cmd_final(args) -> int:
    from export.fields import DATA_ROOT, check_split, load_fields, unique

    work = Path(args.work)
    log = _logger(work)
    cv = json.loads((work / "results.json").read_text())
    cfg = Config(**{**cv["config"], "zoom": tuple(cv["config"]["zoom"])})
    root = Path(args.data) if args.data else DATA_ROOT
    fields = load_fields(root)
    check_split(fields)
    tune = unique([f for f in fields if f.split == "tune"])
    log(f"final: training on all {len(tune)} unique tune images, threshold {cv['threshold']} (from cv)")
    model = train(load_examples(tune, root), cfg, log)
    log(f"final: ONNX {export_onnx(model, work / 'final' / ONNX_NAME)} bytes")
    return 0


def cmd_report(args) -> int:
    """The final candidate on the REPORT split, once (export.fields' figures with Wilson intervals)."""
    from export.fields import DATA_ROOT, HEADER, SETS, VERSIONS, check_split, evaluate, format_row, load_fields

    work = Path(args.work)
    log = _logger(work)
    cv = json.loads((work / "results.json").read_text())
    root = Path(args.data) if args.data else DATA_ROOT
    fields = load_fields(root)
    check_split(fields)
    net = NetLocaliser(work / "final" / ONNX_NAME, cv["threshold"], cv["config"]["work_long"])
    log("REPORT split, final candidate")
    log(HEADER)
    out = {}
    for version in [None, *VERSIONS]:
        for name in SETS:
            chosen = [f for f in fields if f.set == name and f.split == "report"]
            row = evaluate(net, chosen, root, version).row()
            out[f"{name}/{version or 'original'}"] = row
            log(format_row(f"{name}/report/{version or ''}", row))
    (work / "report.json").write_text(json.dumps(out, indent=2, default=float))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.localiser_net", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("cv", "final", "report"):
        p = sub.add_parser(name)
        p.add_argument("--work", required=True, help="build/runs/localiser-net-<name>")
        p.add_argument("--data", default="", help="folder holding fields/ (default: ../shared/data)")
        if name == "cv":
            p.add_argument("--folds", type=int, default=3)
            p.add_argument("--steps", type=int, default=Config.steps)
            p.add_argument("--seed", type=int, default=0)
            p.add_argument("--work-long", type=int, default=WORK_LONG)
            p.add_argument("--width", type=float, default=1.0)
            p.add_argument("--lr", type=float, default=Config.lr)
            p.add_argument("--crop", type=int, default=Config.crop)
            p.add_argument("--batch", type=int, default=Config.batch)
            p.add_argument("--zoom-min", type=float, default=Config.zoom[0])
            p.add_argument("--zoom-max", type=float, default=Config.zoom[1])
            p.add_argument("--no-versions", action="store_true")
            p.add_argument("--only-fold", type=int, default=None, help="train this fold only, then stop")
            p.add_argument("--eval-folds", default="", help="comma-separated folds to evaluate (default: all)")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return {"cv": cmd_cv, "final": cmd_final, "report": cmd_report}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
