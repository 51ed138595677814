"""The training recipe: every hyperparameter of a run and the version of the model it makes, as data.

export/recipe.json is the recipe of the shipped model. Changing the recipe means changing that file and its
version in one commit; an experiment is a run with another recipe file
(`python -m export train --recipe FILE --work build/runs/NAME`). Each run records the recipe it used
(`recipe.json` in its folder), and the model card is rendered from that record.

No TensorFlow here: the serving venv imports this module too.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECIPE_FILE = Path(__file__).resolve().parent / "recipe.json"
RUN_RECIPE_NAME = "recipe.json"  # the recipe a run used, in its folder

# The selection rules a recipe may name, and how the card states them.
SELECTION_RULES = {
    "best_val_macro_f1": "epoch with the best macro-F1 on the validation split (bccd_val + pbc_val)",
    "step_average": "no epoch chosen: the mean of the trained weights after every training step from the start of "
    "epoch {average_from_epoch} to the end (dense weight averaging, SWAD: Cha et al., NeurIPS 2021)",
}

# The smoke run is the recipe on a few dozen images; only its size shrinks.
SMOKE_EPOCHS = 2
SMOKE_BATCH_SIZE = 16


CROP_MODES = ("frame", "cell")
NORMALISATIONS = ("none", "background")  # = hematovision.logic.cell_crop.NORMALISATIONS (tests/export/test_recipe.py)
EDGE_CUT_SIDE = 0.5  # Augmentation.edge_cut: the chance that each side of a cut view's photo is moved in
TEST_TIMES = ("none", "mirror")  # = hematovision.logic.inference.TEST_TIMES (tests/export/test_recipe.py)


@dataclass(frozen=True)
class Augmentation:
    """Each training view: an optional zoom-out (pbc only), one of the 8 flips/quarter-turns, a colour jitter, then
    (from model 2.0, each off at its default 0) stain and camera augmentations (export/augment.py: stain_camera)."""

    brightness: float  # factor 1 + U(-b, b)
    contrast: float
    saturation: float
    stain_tint: float  # per-channel gain 1 + U(-t, t)
    pbc_zoom_out_probability: float
    zoom_out_scale: tuple[float, float]  # cell size relative to the pbc frame
    zoom_out_squeeze: tuple[float, float]  # extra horizontal factor (bccd's 320 -> 224 squeeze is 0.7)
    # model 2.0 (the defaults keep 1.2.0's views exactly: an augmentation at 0 draws no random number)
    crop_scale_jitter: float = 0.0  # crop == "cell": the crop's side x exp(U(-j, j)) (the ruler's error)
    hed_jitter: float = 0.0  # HED stain space: each stain's density x (1 + U(-h, h)) + U(-h, h) / 4
    colour_cast: float = 0.0  # white-balance/stain cast: per-channel gain 1 + U(-c, c), after the mild stain_tint
    hue_shift: float = 0.0  # hue rotation by U(-d, d) degrees
    desaturation: float = 0.0  # saturation x (1 - U(0, d))
    blur_radius: float = 0.0  # Gaussian blur of radius U(0, r) px, on half of the views
    jpeg_quality: int = 0  # JPEG re-encoding at quality U(q, 95), on half of the views; 0: off
    greyscale: float = 0.0  # this share of the views turned grey (ITU-R 601 luma in each channel), last
    # crop == "cell": this share of the views come from the photo cut short near the cell (export/augment.edge_cut),
    # so that the crop is padded where the photo ends, as a cell near the edge of an enlarged or small photo is
    edge_cut: float = 0.0

    def stain_camera_on(self) -> bool:
        return any(
            (
                self.hed_jitter,
                self.colour_cast,
                self.hue_shift,
                self.desaturation,
                self.blur_radius,
                self.jpeg_quality,
                self.greyscale,
            )
        )


@dataclass(frozen=True)
class Recipe:
    version: str  # the model's semantic version
    seed: int  # initialisation, shuffling and the training views
    input_size: int  # square model input, pixels
    frozen_blocks: int  # the stem and MobileNetV2 blocks 1..n stay frozen and cached (a block ending in an add)
    dropout: float
    epochs: int
    batch_size: int
    peak_lr: float
    warmup_epochs: float  # linear warm-up to peak_lr, then cosine decay
    warmup_start_divisor: int  # the warm-up starts at peak_lr / this
    cosine_alpha: float  # the cosine schedule ends at alpha * peak_lr
    weight_decay: float  # AdamW
    label_smoothing: float
    pbc_views: int  # augmented views per pbc training image (bccd TRAIN, already augmented, gets one)
    augmentation: Augmentation
    selection: str  # a key of SELECTION_RULES
    # model 2.0: "cell" = the cell-centred crop of crop_um micrometres (logic/cell_crop.py) for training, validation
    # and evaluation, the whole frame where no cell is found; "frame" = the whole frame (model 1.2.0)
    crop: str = "frame"
    crop_um: float = 0.0
    # the colour normalisation of the model input, the last step before the model in training and serving
    # (logic/cell_crop.normalise, the card's input.normalise): "none" or "background"
    normalise: str = "none"
    # MixStyle (export/train.MixStyle): in training only, with this probability per view, the cached features'
    # channel means and spreads are re-mixed with another view's, weight ~ Beta(alpha, alpha); 0 = off
    mixstyle: float = 0.0
    mixstyle_alpha: float = 0.1
    # how the served model is run (the card's input.test_time, logic/inference.Model): "none", one pass; "mirror", the
    # outputs averaged over the input and its left-right mirror (training is unchanged)
    test_time: str = "none"
    # selection "step_average": the weights averaged over every step from the start of this epoch (1-based) to the end
    average_from_epoch: int = 2
    # ensemble distillation (export/train.teacher_probabilities): the training targets are (1 - w) x the label + w x
    # the mean probabilities of these runs' models (folders, relative to the repository) on each cached training view
    teachers: tuple[str, ...] = ()
    distill_weight: float = 0.0
    # outlier exposure (export/outliers.py): this many synthetic non-blood views join the training views, trained
    # towards the uniform distribution over the classes at outlier_weight x a blood view's mean weight; 0 = off
    outlier_views: int = 0
    outlier_weight: float = 0.5  # Hendrycks et al. 2019: lambda = 0.5

    def __post_init__(self):
        if self.selection not in SELECTION_RULES:
            raise ValueError(f"unknown selection rule {self.selection!r}; known: {', '.join(SELECTION_RULES)}")
        if self.crop not in CROP_MODES:
            raise ValueError(f"unknown crop {self.crop!r}; known: {', '.join(CROP_MODES)}")
        if self.crop == "cell" and not self.crop_um > 0:
            raise ValueError("crop 'cell' needs crop_um > 0 (micrometres)")
        if self.normalise not in NORMALISATIONS:
            raise ValueError(f"unknown normalise {self.normalise!r}; known: {', '.join(NORMALISATIONS)}")
        if self.normalise != "none" and self.crop != "cell":
            raise ValueError("normalise applies to cell crops (crop 'cell'); a frame model has none")
        if self.test_time not in TEST_TIMES:
            raise ValueError(f"unknown test_time {self.test_time!r}; known: {', '.join(TEST_TIMES)}")
        if self.selection == "step_average" and not 1 <= self.average_from_epoch <= self.epochs:
            raise ValueError(f"average_from_epoch must be within 1..{self.epochs} (the recipe's epochs)")
        if not 0.0 <= self.mixstyle <= 1.0 or not self.mixstyle_alpha > 0:
            raise ValueError("mixstyle is a probability in [0, 1] and mixstyle_alpha > 0")
        if not 0.0 <= self.augmentation.edge_cut <= 1.0 or (self.augmentation.edge_cut and self.crop != "cell"):
            raise ValueError("edge_cut is a share of the views in [0, 1], for cell crops (crop 'cell') only")
        if not 0.0 <= self.distill_weight <= 1.0 or bool(self.teachers) != (self.distill_weight > 0):
            raise ValueError("distill_weight is in (0, 1] with teachers, 0 without")
        if self.outlier_views < 0:
            raise ValueError("outlier_views is a number of views, >= 0")
        if not self.outlier_weight > 0:
            raise ValueError("outlier_weight is a loss weight, > 0")

    @classmethod
    def from_dict(cls, data: dict) -> Recipe:
        augmentation = {
            key: tuple(value) if isinstance(value, list) else value for key, value in data["augmentation"].items()
        }
        teachers = tuple(data.get("teachers", ()))
        return cls(**{**data, "augmentation": Augmentation(**augmentation), "teachers": teachers})

    @classmethod
    def load(cls, path: Path) -> Recipe:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    def smoke_sized(self) -> Recipe:
        return replace(self, epochs=SMOKE_EPOCHS, batch_size=SMOKE_BATCH_SIZE)

    def differences(self, other: Recipe) -> list[str]:
        """'field: mine != other' for each field that differs."""
        return [
            f"{field.name}: {getattr(self, field.name)!r} != {getattr(other, field.name)!r}"
            for field in fields(self)
            if getattr(self, field.name) != getattr(other, field.name)
        ]

    def card_training(self, selected_epoch: int | str) -> dict:
        """The recipe part of the model card's "training" section, in words."""
        a = self.augmentation
        warmup = "half-epoch" if self.warmup_epochs == 0.5 else f"{self.warmup_epochs:g}-epoch"
        return {
            "frozen": f"stem + blocks 1-{self.frozen_blocks} (up to block_{self.frozen_blocks}_add), "
            "features cached once per training view",
            "trained": f"blocks {self.frozen_blocks + 1}-16, Conv_1 and the head "
            f"(GAP -> dropout {self.dropout} -> Dense(4) softmax); BatchNorm frozen",
            "optimizer": f"AdamW (weight decay {_scientific(self.weight_decay)}), cosine schedule with {warmup} "
            f"warm-up, peak lr {self.peak_lr}",
            "loss": f"categorical cross-entropy, label smoothing {self.label_smoothing}, class-balanced sample weights",
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "selected_epoch": selected_epoch,
            "selection_rule": SELECTION_RULES[self.selection].format(average_from_epoch=self.average_from_epoch),
            "augmentation": "per training view: one of 8 flips/quarter-turns + brightness/contrast/saturation/"
            "stain-tint jitter; pbc views are zoomed out to bccd-like cell size and position with probability "
            f"{a.pbc_zoom_out_probability}",
            "views": {"bccd_train": 1, "pbc_train": self.pbc_views},
            "seed": self.seed,
            **self._card_model_2(),
        }

    def _card_model_2(self) -> dict:
        """The model-2.0 parts of the card's training section; nothing for a recipe without them (1.2.0)."""
        a = self.augmentation
        extra = {}
        if self.crop == "cell":
            extra["crop"] = (
                f"cell-centred square of {self.crop_um:g} um (logic/cell_crop.py): the red-cell ruler, else the "
                "cell's box; the whole frame where no cell is found; crop side x exp(U(-j, j)) in training, "
                f"j = {a.crop_scale_jitter:g}"
            )
        if self.normalise == "background":
            extra["normalise"] = (
                "each model input's channels scaled so that their 90th percentile (the crop's background) is the same "
                "in every photo (logic/cell_crop.balance_background), after augmentation in training"
            )
        if self.mixstyle > 0:
            extra["mixstyle"] = (
                f"in training, with probability {self.mixstyle:g} per view, the cached block-{self.frozen_blocks} "
                "features' channel means and standard deviations replaced by a mix with another view's of the batch, "
                f"weight ~ Beta({self.mixstyle_alpha:g}, {self.mixstyle_alpha:g}) (Zhou et al., ICLR 2021); "
                "not part of the exported graph"
            )
        if self.teachers:
            extra["distillation"] = (
                f"targets: {1 - self.distill_weight:g} x the label + {self.distill_weight:g} x the mean probabilities "
                f"of {len(self.teachers)} models of the same data and crops on each training view (ensemble "
                f"distillation, Hinton et al. 2015): {', '.join(Path(t).name for t in self.teachers)}"
            )
        if self.outlier_views:
            extra["outlier_exposure"] = (
                f"{self.outlier_views} synthetic non-blood views (export/outliers.py: shapes, stripes, text) trained "
                f"towards the uniform distribution at {self.outlier_weight:g} x a blood view's mean weight "
                "(Hendrycks et al., ICLR 2019)"
            )
        if a.edge_cut:
            extra["edge_cut"] = (
                f"{a.edge_cut:g} of the training views are cropped from the photo cut short near the cell: each side "
                f"with probability {EDGE_CUT_SIDE:g} moved in to a uniform point between the cell's box and the crop's "
                "edge, the rest of the crop padded with the border colour as serving pads it"
            )
        if a.stain_camera_on():
            extra["stain_camera_augmentation"] = {
                "hed_jitter": a.hed_jitter,
                "colour_cast": a.colour_cast,
                "hue_shift_degrees": a.hue_shift,
                "desaturation": a.desaturation,
                "blur_radius": a.blur_radius,
                "jpeg_quality": a.jpeg_quality,
            }
        return extra


def _scientific(value: float) -> str:
    """1e-4, not 0.0001 or 1e-04."""
    mantissa, exponent = f"{value:e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


def committed_recipe() -> Recipe:
    """The recipe in the repository at HEAD; uncommitted edits of export/recipe.json do not count.
    Outside a git checkout (an unpacked release), the file itself."""
    relative = RECIPE_FILE.relative_to(REPO).as_posix()
    try:
        shown = subprocess.run(
            ["git", "show", f"HEAD:{relative}"], cwd=REPO, capture_output=True, text=True, check=True, timeout=30
        )
    except (OSError, subprocess.CalledProcessError):
        return Recipe.load(RECIPE_FILE)
    return Recipe.from_dict(json.loads(shown.stdout))
