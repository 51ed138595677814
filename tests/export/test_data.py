"""Split rules: grouped by original smear for bccd, fixed by file name for pbc, deterministic, disjoint."""

from collections import Counter

import pytest
from export_helpers import SHARED_DATA, require

from export.data import CLASSES, all_splits, bccd_original_id, bccd_splits, list_class_folders, pbc_splits


def make_layout(root, names_per_class):
    for name in CLASSES:
        folder = root / name
        folder.mkdir(parents=True)
        for file_name in names_per_class:
            (folder / file_name).write_bytes(b"not read by the split code")


def test_bccd_validation_holds_out_whole_originals(tmp_path):
    names = [f"_{original}_{n}.jpeg" for original in range(40) for n in range(5)]
    make_layout(tmp_path / "TRAIN", names)
    make_layout(tmp_path / "TEST", ["_0_1.jpeg"])
    make_layout(tmp_path / "TEST_SIMPLE", ["_0_1.jpeg"])
    splits = bccd_splits(tmp_path)
    assert splits["val"] and splits["train"]
    for label in range(len(CLASSES)):
        train_ids = {bccd_original_id(s.path) for s in splits["train"] if s.label == label}
        val_ids = {bccd_original_id(s.path) for s in splits["val"] if s.label == label}
        assert not train_ids & val_ids
    assert len(splits["train"]) + len(splits["val"]) == 40 * 5 * len(CLASSES)
    assert splits == bccd_splits(tmp_path)  # deterministic


def test_pbc_split_is_fixed_and_roughly_70_15_15(tmp_path):
    make_layout(tmp_path, [f"X_{i}.jpg" for i in range(400)])
    splits = pbc_splits(tmp_path)
    sizes = {name: len(samples) for name, samples in splits.items()}
    total = sum(sizes.values())
    assert total == 400 * len(CLASSES)
    assert abs(sizes["train"] / total - 0.70) < 0.05 and abs(sizes["test"] / total - 0.15) < 0.05
    assert splits == pbc_splits(tmp_path)


def test_listing_names_the_missing_class_folder(tmp_path):
    (tmp_path / "EOSINOPHIL").mkdir()
    with pytest.raises(FileNotFoundError, match="LYMPHOCYTE"):
        list_class_folders(tmp_path)


def test_real_splits_are_disjoint_and_complete():
    require((SHARED_DATA / "bccd" / "MANIFEST.csv").is_file(), f"shared data not found at {SHARED_DATA}")
    named = all_splits(SHARED_DATA)
    paths = Counter(str(s.path) for samples in named.values() for s in samples)
    assert max(paths.values()) == 1, "a file sits in two splits"
    manifest_rows = sum(1 for _ in open(SHARED_DATA / "bccd" / "MANIFEST.csv")) - 1 + sum(1 for _ in open(SHARED_DATA / "pbc" / "MANIFEST.csv")) - 1
    assert len(paths) == manifest_rows
    assert {len(named[k]) for k in ("bccd_test",)} == {2487} and len(named["bccd_test_simple"]) == 71
