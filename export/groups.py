"""Which bccd TRAIN images are augmentations of the same original smear.

The file names do not say: in `_<i>_<n>.jpeg`, `<i>` is the image's position in the upstream generator's
batch, and the batch was shuffled, so one `<i>` holds augmentations of many originals (checked on TEST, whose
originals are known: every `<i>` spreads evenly over the TEST_SIMPLE cells). A validation split by `<i>`
therefore shares cells with training.

An original's augmentations (rotations, shifts, shears, flips, black fill) keep the smear's colours, so the
colour histogram of the non-black pixels identifies the original well. Per class: average-linkage clustering
of those histograms, cut at as many clusters as the class has batch positions (the batch held every original
of the class once), then clusters smaller than half the median size are merged into the nearest large one
(they are fragments of an original; merging too much is safe, splitting an original is not). On TEST this
recovers the known TEST_SIMPLE originals (tests/export/test_groups.py).

The result is committed (export/bccd_train_groups.csv); `python -m export groups` rebuilds it.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
from PIL import Image

from export.data import BCCD_GROUPS_FILE, CLASSES, DATA_ROOT

HISTOGRAM_LEVELS = 16  # per channel: 4096 bins
BLACK_FILL_MAX_SUM = 40  # R+G+B at or below this is the augmentation's black fill, not the smear
_BATCH_POSITION = re.compile(r"^_(\d+)_")


def batch_position(path: Path) -> str | None:
    """The `<i>` of `_<i>_<n>.jpeg`: the upstream generator's batch position, not the original smear."""
    match = _BATCH_POSITION.match(path.name)
    return match.group(1) if match else None


def colour_signature(path: Path) -> np.ndarray:
    """Unit-length square root of the colour histogram of the non-black pixels."""
    pixels = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3).astype(np.int64)
    pixels = pixels[pixels.sum(axis=1) > BLACK_FILL_MAX_SUM]
    q = pixels // (256 // HISTOGRAM_LEVELS)
    counts = np.bincount(
        (q[:, 0] * HISTOGRAM_LEVELS + q[:, 1]) * HISTOGRAM_LEVELS + q[:, 2], minlength=HISTOGRAM_LEVELS**3
    )
    signature = np.sqrt(counts / max(counts.sum(), 1))
    return signature / max(np.linalg.norm(signature), 1e-12)


def cluster_originals(signatures: np.ndarray, n_originals: int) -> np.ndarray:
    """Cluster index per image (0..k-1, k <= n_originals), fragments merged into their nearest large cluster."""
    from scipy.cluster.hierarchy import fcluster, linkage

    if len(signatures) <= 1:
        return np.zeros(len(signatures), dtype=int)
    labels = fcluster(linkage(signatures, "average", metric="cosine"), n_originals, "maxclust") - 1
    sizes = np.bincount(labels)
    large = np.flatnonzero(sizes >= 0.5 * np.median(sizes[sizes > 0]))
    centroids = np.stack([signatures[labels == c].mean(axis=0) for c in large])
    for small in np.flatnonzero((sizes > 0) & ~np.isin(np.arange(len(sizes)), large)):
        members = labels == small
        labels[members] = large[int(np.argmax(signatures[members].mean(axis=0) @ centroids.T))]
    _, labels = np.unique(labels, return_inverse=True)
    return labels


def train_groups(bccd_root: Path = DATA_ROOT / "bccd", classes: tuple[str, ...] = CLASSES) -> dict[str, str]:
    """{'TRAIN/<CLASS>/<file>': '<CLASS>/<first file name of its group>'} for every TRAIN image of the classes."""
    groups: dict[str, str] = {}
    for name in classes:
        paths = sorted((Path(bccd_root) / "TRAIN" / name).iterdir())
        n_originals = len({batch_position(p) for p in paths} - {None}) or len(paths)
        labels = cluster_originals(np.stack([colour_signature(p) for p in paths]), n_originals)
        first_name = {}
        for path, label in zip(paths, labels, strict=True):
            first_name.setdefault(label, path.name)
        for path, label in zip(paths, labels, strict=True):
            groups[f"TRAIN/{name}/{path.name}"] = f"{name}/{first_name[label]}"
    return groups


def write_groups(groups: dict[str, str], out: Path = BCCD_GROUPS_FILE) -> None:
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["path", "group"])
        for path in sorted(groups):
            writer.writerow([path, groups[path]])
