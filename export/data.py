"""Dataset listing and the fixed, recorded splits. No TensorFlow here (the serving venv can import it).

bccd (../shared/data/bccd): TRAIN holds 16-155 augmentations of each original smear. A random split of TRAIN
would put augmentations of one cell on both sides, so the validation split holds out whole originals. The file
names do not identify the original; the groups come from export/bccd_train_groups.csv (see export/groups.py).
TEST and TEST_SIMPLE are never used for any choice.
pbc (../shared/data/pbc): no official split; a fixed split by a hash of the file name into train/val/test.
dbn (../shared/data/dbn): a third lab that never trains a model we ship (its repository has no licence). Split once
by the sha256 of the file name into dbn-select (choosing among recipes, calibrating) and dbn-report (the reported
figures only). Not in all_splits, so nothing that trains can reach it by accident.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

CLASSES = ("EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL")
DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
BCCD_VAL_FRACTION = 0.20
BCCD_GROUPS_FILE = Path(__file__).resolve().parent / "bccd_train_groups.csv"
PBC_FRACTIONS = {"train": 0.70, "val": 0.15, "test": 0.15}
DBN_SELECT_FRACTION = 0.5


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int
    dataset: str
    split: str

    @property
    def class_name(self) -> str:
        return CLASSES[self.label]


def _stable_unit(text: str) -> float:
    """A number in [0, 1) fixed by the text: the split rule is the same on every machine."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) / float(1 << 48)


def list_class_folders(root: Path) -> list[tuple[Path, int]]:
    """(image path, class index) for every image under root/<CLASS>/, sorted."""
    root = Path(root)
    found = []
    for label, name in enumerate(CLASSES):
        folder = root / name
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is missing: expected <CLASS>/<image> folders for {', '.join(CLASSES)}")
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                found.append((path, label))
    if not found:
        raise FileNotFoundError(f"No images under {root}")
    return found


def read_groups(path: Path = BCCD_GROUPS_FILE) -> dict[str, str]:
    """{'TRAIN/<CLASS>/<file>': group} as written by `python -m export groups`."""
    with open(path, newline="") as handle:
        return {row["path"]: row["group"] for row in csv.DictReader(handle)}


def validation_groups(groups: set[str], fraction: float = BCCD_VAL_FRACTION) -> set[str]:
    """The groups of one class held out for validation: the first round(fraction * n) (at least one) in an order
    fixed by a hash of the group name."""
    ordered = sorted(groups, key=lambda group: _stable_unit(f"bccd/{group}"))
    return set(ordered[: max(1, round(fraction * len(ordered)))]) if len(ordered) > 1 else set()


def bccd_splits(root: Path = DATA_ROOT / "bccd", groups: dict[str, str] | None = None) -> dict[str, list[Sample]]:
    """train/val from TRAIN with whole original smears held out; test and test_simple as given."""
    groups = read_groups() if groups is None else groups
    found = list_class_folders(Path(root) / "TRAIN")
    group_of = {}
    for path, label in found:
        key = f"TRAIN/{CLASSES[label]}/{path.name}"
        if key not in groups:
            raise KeyError(f"{key} has no group in {BCCD_GROUPS_FILE.name}: rebuild it with `python -m export groups`")
        group_of[path] = groups[key]
    held_out = set()
    for label in range(len(CLASSES)):
        held_out |= validation_groups({group_of[p] for p, lab in found if lab == label})
    splits: dict[str, list[Sample]] = {"train": [], "val": [], "test": [], "test_simple": []}
    for path, label in found:
        split = "val" if group_of[path] in held_out else "train"
        splits[split].append(Sample(path, label, "bccd", split))
    for folder, split in (("TEST", "test"), ("TEST_SIMPLE", "test_simple")):
        splits[split] = [Sample(p, label, "bccd", split) for p, label in list_class_folders(Path(root) / folder)]
    return splits


def pbc_splits(root: Path = DATA_ROOT / "pbc") -> dict[str, list[Sample]]:
    splits: dict[str, list[Sample]] = {"train": [], "val": [], "test": []}
    for path, label in list_class_folders(Path(root)):
        u = _stable_unit(f"pbc/{path.name}")
        split = (
            "train"
            if u < PBC_FRACTIONS["train"]
            else "val"
            if u < PBC_FRACTIONS["train"] + PBC_FRACTIONS["val"]
            else "test"
        )
        splits[split].append(Sample(path, label, "pbc", split))
    return splits


def dbn_split_of(name: str) -> str:
    """ "select" or "report" for a dbn file name: the first 12 hex digits of sha256(name) as a fraction of 2^48."""
    return "select" if _stable_unit(name) < DBN_SELECT_FRACTION else "report"


def dbn_splits(root: Path = DATA_ROOT / "dbn") -> dict[str, list[Sample]]:
    """dbn-select and dbn-report (Sample.split "select" / "report", dataset "dbn"): validation and reporting only."""
    splits: dict[str, list[Sample]] = {"select": [], "report": []}
    for path, label in list_class_folders(Path(root)):
        split = dbn_split_of(path.name)
        splits[split].append(Sample(path, label, "dbn", split))
    return splits


def dbn_named(data_root: Path = DATA_ROOT) -> dict[str, list[Sample]]:
    """dbn_select and dbn_report under the names the card uses (evaluation only; see dbn_splits)."""
    return {f"dbn_{name}": samples for name, samples in dbn_splits(Path(data_root) / "dbn").items()}


def fixed_subsample(samples: list[Sample], per_class: int | None) -> list[Sample]:
    """The first `per_class` samples of each class in the order of sha256 of '<dataset>/<file name>': the same files
    on every machine, whatever the listing order. None: all of them."""
    if per_class is None:
        return list(samples)
    picked = []
    for label in range(len(CLASSES)):
        ordered = sorted(
            (s for s in samples if s.label == label), key=lambda s: _stable_unit(f"{s.dataset}/{s.path.name}")
        )
        picked += ordered[:per_class]
    return picked


def all_splits(data_root: Path = DATA_ROOT) -> dict[str, list[Sample]]:
    """Named evaluation/training sets: bccd_train, bccd_val, bccd_test, bccd_test_simple, pbc_train, pbc_val,
    pbc_test."""
    named = {}
    for name, samples in bccd_splits(Path(data_root) / "bccd").items():
        named[f"bccd_{name}"] = samples
    for name, samples in pbc_splits(Path(data_root) / "pbc").items():
        named[f"pbc_{name}"] = samples
    return named


def split_digest(samples: list[Sample], root: Path) -> str:
    """sha256 of the sorted relative paths of a split: records exactly which files it holds."""
    lines = sorted(f"{s.path.relative_to(root)}\t{s.class_name}" for s in samples)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def class_counts(samples: list[Sample]) -> dict[str, int]:
    counts = dict.fromkeys(CLASSES, 0)
    for sample in samples:
        counts[sample.class_name] += 1
    return counts
