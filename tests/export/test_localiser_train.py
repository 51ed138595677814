"""export.localiser_train on the tune fields (../shared/data/fields): its figures of the committed scorer are
export.fields' (the two code paths agree), --check-version reports the plain and the versioned fields apart, and
--fit-scale gives the committed SCALE_FIT.
Skipped without ../shared (a failure in CI, CI=true)."""

from pathlib import Path

import pytest

from tests.ci import require

ROOT = Path(__file__).resolve().parents[2]
SHARED_FIELDS = ROOT.parent / "shared" / "data" / "fields"


@pytest.fixture(scope="module")
def tune_bccd():
    require(SHARED_FIELDS.is_dir(), f"{SHARED_FIELDS} is missing: the scorer's tune figures need the shared fields")
    from export.fields import load_fields

    return [f for f in load_fields(SHARED_FIELDS.parent, ("bccd",)) if f.split == "tune"]


@pytest.mark.slow
def test_the_served_scores_figures_are_export_fields_figures(tune_bccd):
    from export import localiser_train as T
    from export.fields import evaluate
    from hematovision.logic import localiser as L

    candidates = T.collect(tune_bccd, root=SHARED_FIELDS.parent, with_patches=True)
    # the served score (localiser.candidate_scores): the logistic's and the network's mean, every patch scored here
    scores = L.served_score(L.score(candidates.features), L.network_probability(candidates.patches))
    recall, precision = T.figures(candidates, T.select(candidates, scores, L.SCORE_MIN))["bccd"]
    row = evaluate(L.locate, tune_bccd, SHARED_FIELDS.parent).row()
    assert recall == pytest.approx(row["recall"]) and precision == pytest.approx(row["precision"])


@pytest.mark.slow
def test_check_version_prints_plain_and_versioned_figures_for_each_scorer(tune_bccd, capsys):
    from export import localiser_train as T

    T.check_version(tune_bccd[:40], "saturation_x0.5", folds=3)
    lines = [line for line in capsys.readouterr().out.splitlines() if " @ " in line]
    assert [line.split(" @ ")[0] for line in lines] == [
        "committed scorer (in-sample)",
        "refit on plain (out of fold)",
        "refit on plain + saturation_x0.5 (out of fold)",
    ]
    parts = [[part.split()[0] for part in line.split(": ", 1)[1].split(" | ")] for line in lines]
    assert parts == [["plain", "saturation_x0.5"]] * 3
    f1 = [[float(part.rsplit(" F1 ", 1)[1]) for part in line.split(" | ")] for line in lines]
    assert all(0.0 <= v <= 1.0 for pair in f1 for v in pair)
    # the committed scorer (version 2: field-relative colour, fitted on every version) finds the washed-out cells
    # (these 40 fields: mean F1 1.000; version 1's scorer lost ~1 in 5 of them on the bccd tune fields)
    assert f1[0][1] >= 0.95


@pytest.mark.slow
def test_training_with_versions_scores_every_version_out_of_fold(tune_bccd):
    from export import localiser_train as T

    fields = tune_bccd[:30]
    parts = T.collect_versions(fields, ["blur"])
    scores = T.out_of_fold(parts, list(parts), len(fields), folds=3)
    assert set(scores) == {None, "blur"}
    assert all(len(scores[v]) == len(parts[v].group) and ((scores[v] >= 0) & (scores[v] <= 1)).all() for v in parts)
    # folds by field: a field's versions share a fold, so its own copy never trains the scorer that scores it
    assert (parts["blur"].group % len(fields) == parts["blur"].group - len(fields)).all()
    threshold, f1 = T.best_threshold(parts[None], scores[None])
    assert 0.05 <= threshold <= 0.95 and f1 > 0.8
    # the committed threshold's choice: the best mean F1 over the plain fields and every version, so at least what the
    # plain fields' choice gives them
    chosen, f1_all = T.best_threshold_over_versions(parts, scores)
    sets = {"bccd"}

    def mean_over_versions(t: float) -> float:
        return sum(T._mean_f1(T.figures(c, T.select(c, scores[v], t)), sets) for v, c in parts.items()) / len(parts)

    assert 0.05 <= chosen <= 0.95 and f1_all == pytest.approx(mean_over_versions(chosen))
    assert f1_all >= mean_over_versions(threshold)


@pytest.mark.slow
def test_the_committed_scale_fit_is_the_tune_fields_least_squares_fit(capsys):
    require(SHARED_FIELDS.is_dir(), f"{SHARED_FIELDS} is missing: the scale's fit needs the shared fields")
    from export import localiser_train as T
    from export.fields import load_fields
    from hematovision.logic import localiser as L

    tune = [f for f in load_fields(SHARED_FIELDS.parent, T.SCALE_SETS) if f.split == "tune"]
    a, b = T.fit_scale(tune, SHARED_FIELDS.parent)
    assert (a, b) == pytest.approx(L.SCALE_FIT, abs=5e-4)
    assert "within +-15%" in capsys.readouterr().out


def test_eyepiece_passes_run_only_on_a_photo_inside_an_eyepiece_circle(monkeypatch):
    import numpy as np
    from PIL import Image, ImageDraw

    from export import localiser_train as T
    from hematovision.logic import localiser as L

    monkeypatch.setattr(L, "EYEPIECE_PASSES", L.EYEPIECE_PASSES)  # undone after the test
    rng = np.random.default_rng(0)
    field = Image.new("RGB", (480, 480), (232, 220, 232))
    draw = ImageDraw.Draw(field)
    for x, y in rng.uniform(40, 440, (60, 2)):
        draw.ellipse([x - 12, y - 12, x + 12, y + 12], fill=(214, 150, 170))  # red cells
    draw.ellipse([220, 220, 250, 250], fill=(90, 50, 140))  # a nucleus
    circle = Image.new("L", field.size, 0)
    ImageDraw.Draw(circle).ellipse([10, 10, 470, 470], fill=255)
    in_eyepiece = Image.composite(field, Image.new("RGB", field.size), circle)
    served, eyepiece = L.PASSES, L.EYEPIECE_PASSES
    T.add_eyepiece_passes("0.15,1.3,1.6,0.35")
    seen = []
    candidates = L._candidates

    def recording(*args):
        seen.append(args[-1])  # the threshold sets the generator runs
        return candidates(*args)

    monkeypatch.setattr(L, "_candidates", recording)
    L.locate(np.asarray(field))
    assert seen and all(passes == served for passes in seen)
    seen.clear()
    L.locate(np.asarray(in_eyepiece))
    added = (0.15, 1.3, 1.6, 0.35, len(served) + len(eyepiece))
    assert seen and all(passes == (*served, *eyepiece, added) for passes in seen)
    seen.clear()
    L.locate(np.asarray(field))  # the next photo starts again from the served passes
    assert seen and all(passes == served for passes in seen)
