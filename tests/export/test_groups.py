"""The grouping of bccd TRAIN images by original smear (export/groups.py), which the validation split relies on."""

import numpy as np
import pytest
from export_helpers import SHARED_DATA, require

from export.data import BCCD_GROUPS_FILE, read_groups
from export.groups import batch_position, cluster_originals, colour_signature, train_groups


def test_clusters_are_found_and_fragments_join_their_nearest_cluster():
    rng = np.random.default_rng(0)
    centres = np.eye(6)[:3] * 5
    blobs = [centre + rng.normal(0, 0.05, (40, 6)) for centre in centres]
    fragment = centres[1] + np.array([0, 0, 0, 0.8, 0, 0]) + rng.normal(0, 0.05, (3, 6))
    signatures = np.concatenate(blobs + [fragment])
    signatures /= np.linalg.norm(signatures, axis=1, keepdims=True)
    labels = cluster_originals(signatures, 4)  # one cluster too many: the fragment gets its own, then is merged
    assert len(set(labels)) == 3
    assert [len(set(labels[i * 40 : (i + 1) * 40])) for i in range(3)] == [1, 1, 1]
    assert set(labels[120:]) == {labels[40]}


@pytest.fixture(scope="module")
def bccd_test_monocytes():
    """Signatures of the 620 TEST monocytes, their batch positions, and the nearest of the 4 TEST_SIMPLE cells."""
    folder = SHARED_DATA / "bccd"
    require(folder.is_dir(), f"shared data not found at {SHARED_DATA}")
    test = sorted((folder / "TEST" / "MONOCYTE").iterdir())
    originals = sorted((folder / "TEST_SIMPLE" / "MONOCYTE").iterdir())
    signatures = np.stack([colour_signature(p) for p in test])
    nearest_original = (signatures @ np.stack([colour_signature(p) for p in originals]).T).argmax(axis=1)
    positions = np.array([batch_position(p) for p in test])
    return signatures, positions, nearest_original


def test_grouping_recovers_the_known_originals_of_bccd_test(bccd_test_monocytes):
    """TEST holds augmentations of the TEST_SIMPLE cells: 4 monocytes, 155 views each. The clustering, told
    only the count, must put each cell's views together, one cluster per cell."""
    signatures, _, nearest_original = bccd_test_monocytes
    labels = cluster_originals(signatures, 4)
    assert sorted(np.bincount(labels).tolist()) == [154, 155, 155, 156]
    for cluster in set(labels):
        assert len(set(nearest_original[labels == cluster])) == 1
    assert len(set(nearest_original)) == 4


def test_the_batch_position_in_the_file_name_is_not_the_original(bccd_test_monocytes):
    """Why export/groups.py exists: every `_<i>_` of TEST spreads over all four monocyte cells."""
    _, positions, nearest_original = bccd_test_monocytes
    for position in set(positions):
        assert len(set(nearest_original[positions == position])) == 4


def test_committed_groups_match_a_rebuild():
    require((SHARED_DATA / "bccd").is_dir(), f"shared data not found at {SHARED_DATA}")
    committed = read_groups(BCCD_GROUPS_FILE)
    rebuilt = train_groups(SHARED_DATA / "bccd", classes=("MONOCYTE",))  # one class keeps the test short
    assert rebuilt == {path: group for path, group in committed.items() if path.startswith("TRAIN/MONOCYTE/")}
    assert len(set(rebuilt.values())) == 14
