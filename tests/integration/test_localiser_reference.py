"""The localiser's answers must not move: model 2.0 is trained on crops of the current LOCALISER_VERSION (issue #19).

Speed changes to logic/localiser.py have to keep every answer. This test replays a small fixed sample (a few images of
each dataset, robustness versions, a 12 MP photo as the classify path decodes it, events/*.jpg, corner cases; see
bench.locate_equality.inputs(small=True)) and compares with localiser_reference.json, recorded from the reference
revision (bench.locate_equality.BASELINE), not from the code under test:

    .venv/bin/python -m tests.integration.test_localiser_reference --record

Boxes and rulers exactly; px_per_um and the scores to 1e-6 (the JSON's rounding). The full check, bit for bit and on
~2,400 images, is `python -m bench.locate_equality`. Images from ../shared skip locally when it is absent (a failure
in CI, CI=true); the events/ and synthetic ones always run. A localiser that changes its answers on purpose bumps
LOCALISER_VERSION and re-records.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.ci import require

EXPECTED = Path(__file__).with_name("localiser_reference.json")


def _plain(result) -> dict:
    return {
        "boxes": [list(b) for b in result.boxes],
        "scores": [round(s, 6) for s in result.scores],
        "px_per_um": None if result.px_per_um is None else round(result.px_per_um, 6),
        "ruler": result.ruler,
        "size": [result.width, result.height],
    }


def _answers(locate) -> dict:
    from bench.locate_equality import as_form, inputs

    out = {}
    for name, load, forms in inputs(small=True):
        value = load()
        for form in forms:
            out[f"{name} [{form}]"] = _plain(locate(as_form(value, form)))
    return out


@pytest.fixture(scope="module")
def answers():
    from hematovision.logic.localiser import locate

    return _answers(locate)


@pytest.fixture(scope="module")
def expected():
    return json.loads(EXPECTED.read_text())


def test_recorded_from_this_localiser_version(expected):
    from hematovision.logic.localiser import LOCALISER_VERSION

    assert expected["localiser_version"] == LOCALISER_VERSION


def test_sample_covers_the_shared_data(expected, answers):
    from bench.locate_equality import DATA

    shared = [k for k in expected["answers"] if not k.startswith(("events/", "synthetic/"))]
    assert len(shared) >= 80  # the recorded sample holds the shared images (a few dozen, two forms each)
    require(DATA.is_dir(), f"{DATA} is missing: most of the localiser's reference sample comes from it")
    assert sorted(answers) == sorted(expected["answers"])


def test_answers_unchanged(expected, answers):
    assert answers, "no input to compare"
    moved = []
    for key, got in answers.items():
        want = expected["answers"][key]
        same = (
            got["boxes"] == want["boxes"]
            and got["ruler"] == want["ruler"]
            and got["size"] == want["size"]
            and len(got["scores"]) == len(want["scores"])
            and all(abs(a - b) <= 1.5e-6 for a, b in zip(got["scores"], want["scores"], strict=True))
            and (got["px_per_um"] is None) == (want["px_per_um"] is None)
            and (got["px_per_um"] is None or abs(got["px_per_um"] - want["px_per_um"]) <= 1.5e-6)
        )
        if not same:
            moved.append(f"{key}: {got} != {want}")
    assert not moved, "\n".join(moved[:10])


def record() -> None:
    from bench.locate_equality import BASELINE, load_reference

    reference = load_reference(BASELINE)
    payload = {
        "localiser_version": reference.LOCALISER_VERSION,
        "recorded_from": BASELINE,
        "answers": _answers(reference.locate),
    }
    lines = [f"  {json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in sorted(payload.pop("answers").items())]
    head = json.dumps(payload, sort_keys=True)[1:-1]  # one answer a line, so a diff shows which moved
    EXPECTED.write_text("{" + head + ', "answers": {\n' + ",\n".join(lines) + "\n}}\n")
    print(f"{EXPECTED}: {len(lines)} answers")


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        raise SystemExit(__doc__)
    record()
