"""Split rules: grouped by original smear for bccd, fixed by file name for pbc, deterministic, disjoint."""

import hashlib
from collections import Counter

import pytest
from export_helpers import SHARED_DATA, require

from export.data import (
    BCCD_GROUPS_FILE,
    CLASSES,
    DBN_SELECT_FRACTION,
    all_splits,
    bccd_splits,
    dbn_split_of,
    dbn_splits,
    list_class_folders,
    pbc_splits,
    read_groups,
)
from export.train import training_data


def make_layout(root, names_per_class):
    for name in CLASSES:
        folder = root / name
        folder.mkdir(parents=True)
        for file_name in names_per_class:
            (folder / file_name).write_bytes(b"not read by the split code")


def test_bccd_validation_holds_out_whole_groups(tmp_path):
    names = [f"_{i}_{n}.jpeg" for i in range(40) for n in range(5)]
    make_layout(tmp_path / "TRAIN", names)
    make_layout(tmp_path / "TEST", ["_0_1.jpeg"])
    make_layout(tmp_path / "TEST_SIMPLE", ["_0_1.jpeg"])
    # groups cut across the batch position in the name, as in the real data
    groups = {
        f"TRAIN/{c}/_{i}_{n}.jpeg": f"{c}/original-{(i + n) % 10}" for c in CLASSES for i in range(40) for n in range(5)
    }
    splits = bccd_splits(tmp_path, groups)
    for label, name in enumerate(CLASSES):
        train_groups = {groups[f"TRAIN/{name}/{s.path.name}"] for s in splits["train"] if s.label == label}
        val_groups = {groups[f"TRAIN/{name}/{s.path.name}"] for s in splits["val"] if s.label == label}
        assert len(val_groups) == 2 and len(train_groups) == 8  # 20% of 10 groups
        assert not train_groups & val_groups
    assert len(splits["train"]) + len(splits["val"]) == 40 * 5 * len(CLASSES)
    assert splits == bccd_splits(tmp_path, groups)  # deterministic


def test_a_train_image_without_a_group_is_an_error(tmp_path):
    make_layout(tmp_path / "TRAIN", ["_0_1.jpeg", "_0_2.jpeg"])
    groups = {f"TRAIN/{c}/_0_1.jpeg": f"{c}/a" for c in CLASSES}
    with pytest.raises(KeyError, match="python -m export groups"):
        bccd_splits(tmp_path, groups)


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
    manifest_rows = sum(
        len((SHARED_DATA / name / "MANIFEST.csv").read_text().splitlines()) - 1 for name in ("bccd", "pbc")
    )
    assert len(paths) == manifest_rows
    assert {len(named[k]) for k in ("bccd_test",)} == {2487} and len(named["bccd_test_simple"]) == 71
    assert len(read_groups(BCCD_GROUPS_FILE)) == len(named["bccd_train"]) + len(named["bccd_val"]) == 9957


def test_dbn_split_is_fixed_by_the_sha256_of_the_file_name(tmp_path):
    make_layout(tmp_path, [f"{i:03d}.jpg" for i in range(200)])
    splits = dbn_splits(tmp_path)
    assert set(splits) == {"select", "report"}
    for name, samples in splits.items():
        for sample in samples:
            digest = hashlib.sha256(sample.path.name.encode()).hexdigest()
            assert (int(digest[:12], 16) / 2**48 < DBN_SELECT_FRACTION) == (name == "select")
            assert sample.dataset == "dbn" and sample.split == name
    total = sum(len(s) for s in splits.values())
    assert total == 200 * len(CLASSES) and 0.4 < len(splits["select"]) / total < 0.6
    assert splits == dbn_splits(tmp_path)
    # fixed: these names always fall on these sides
    assert [dbn_split_of(n) for n in ("01.jpg", "02.jpg", "03.jpg", "156.jpg")] == [
        "report",
        "report",
        "select",
        "select",
    ]


def test_real_dbn_split_sizes_and_never_in_training_data():
    require((SHARED_DATA / "dbn" / "MANIFEST.csv").is_file(), f"shared data not found at {SHARED_DATA}")
    splits = dbn_splits(SHARED_DATA / "dbn")
    assert (len(splits["select"]), len(splits["report"])) == (157, 204)
    assert not {s.path for s in splits["select"]} & {s.path for s in splits["report"]}
    named = all_splits(SHARED_DATA)
    assert not any(s.dataset == "dbn" for samples in named.values() for s in samples)
    data = training_data(SHARED_DATA, smoke=True)
    assert not any(s.dataset == "dbn" for samples in (*data.train.values(), data.val) for s in samples)
