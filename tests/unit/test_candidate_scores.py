"""localiser.candidate_scores: a candidate's score is the mean of the logistic's probability and the candidate
network's on its patch; the network runs only where that mean can still reach SCORE_MIN; the served network is the
file whose sha256 the localiser pins, and a quarter turn of a patch does not change its answer (the turns are averaged
inside the graph)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hematovision.logic import localiser as L

FIELD = Path(__file__).resolve().parents[2] / "events" / "field.jpg"


@pytest.fixture(scope="module")
def field():
    rgb = np.asarray(Image.open(FIELD).convert("RGB"))
    prepared = L._working_copy(rgb)
    _, boxes, features, _ = L._features_and_boxes(rgb, prepared=prepared)
    assert len(boxes) >= 3, "the sample field should give the generator several candidates"
    return rgb, prepared[1], boxes, features


def test_the_score_is_the_mean_of_the_logistic_and_the_network(field, monkeypatch):
    _, copy, boxes, features = field
    seen = []

    def network(patches):
        seen.append(len(patches))
        return np.linspace(0.0, 1.0, len(patches))

    monkeypatch.setattr(L, "network_probability", network)
    logistic = L.score(features)
    reachable = logistic >= 2 * L.SCORE_MIN - 1
    scores = L.candidate_scores(copy, boxes, features)
    expected = logistic / 2
    expected[reachable] += np.linspace(0.0, 1.0, int(reachable.sum())) / 2
    np.testing.assert_allclose(scores, expected)
    assert seen == ([int(reachable.sum())] if reachable.any() else [])


def test_candidates_whose_logistic_cannot_reach_the_threshold_get_no_patch(field, monkeypatch):
    _, copy, boxes, features = field
    monkeypatch.setattr(L, "network_probability", lambda patches: pytest.fail("the network should not run"))
    hopeless = np.full(len(features), 2 * L.SCORE_MIN - 1 - 1e-3)
    monkeypatch.setattr(L, "score", lambda _: hopeless)
    scores = L.candidate_scores(copy, boxes, features)
    assert np.all(scores < L.SCORE_MIN)


def test_locate_keeps_the_best_candidates_at_their_mean_score(field):
    rgb, copy, boxes, features = field
    scores = L.candidate_scores(copy, boxes, features)
    result = L.locate(rgb)
    assert result.boxes, "the sample field holds two white cells"
    assert result.scores == sorted(result.scores, reverse=True)
    assert all(s >= L.SCORE_MIN for s in result.scores)
    for box, s in zip(result.boxes, result.scores, strict=True):
        i = next(i for i in range(len(boxes)) if tuple(int(v) for v in boxes[i]) == box)
        assert s == pytest.approx(scores[i])


def test_the_served_network_answers_the_same_for_a_quarter_turned_patch(field):
    _, copy, boxes, _ = field
    red_cells_only = np.array([(400, 0, 520, 120), (100, 20, 220, 140)], dtype=np.float64)  # the field's top edge
    patches = L.candidate_patches(copy, np.concatenate([boxes, red_cells_only]))
    p = L.network_probability(patches)
    assert p.shape == (len(boxes) + 2,) and np.all((p >= 0) & (p <= 1))
    assert p[: len(boxes)].max() > 0.9 > 0.1 > p[len(boxes) :].max(), "white cells high, red cells low"
    turned = np.ascontiguousarray(np.rot90(patches, 1, axes=(1, 2)))
    np.testing.assert_allclose(L.network_probability(turned), p, atol=1e-5)


def test_a_network_file_other_than_the_pinned_one_is_refused(tmp_path, monkeypatch):
    other = tmp_path / L.CANDIDATE_NET.name
    other.write_bytes(L.CANDIDATE_NET.read_bytes() + b"\0")
    monkeypatch.setattr(L, "CANDIDATE_NET", other)
    L.candidate_network.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="sha256"):
            L.candidate_network()
    finally:
        L.candidate_network.cache_clear()
