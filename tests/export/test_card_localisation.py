"""The model card's localisation section: export.fields.card_section builds it from evaluation rows, export.card
writes it into a card and renders it, and the committed card holds the figures README states."""

import json
import math
import re
import shutil

import pytest
from export_helpers import MODEL_DIR, ROOT

from export import fields
from export.card import committed_localisation, localisation_lines, markdown, write_localisation
from hematovision.logic.localiser import LOCALISER_VERSION

CARD = MODEL_DIR / "model_card.json"


def _row(recall: float, precision: float, scale: float = math.nan) -> dict:
    return {
        "fields": 10,
        "wbc": 20,
        "predicted": 19,
        "recall": recall,
        "recall_ci": (recall - 0.05, min(1.0, recall + 0.02)),
        "precision": precision,
        "precision_ci": (precision - 0.05, min(1.0, precision + 0.02)),
        "scale_fields": 0 if math.isnan(scale) else 10,
        "scale_within": scale,
        "scale_ci": (math.nan, math.nan) if math.isnan(scale) else (scale - 0.1, scale + 0.05),
        "scale_median_ratio": math.nan if math.isnan(scale) else 1.0,
    }


def _section(phone_recall: float = 0.95, bccd_scale: float = 0.95) -> dict:
    rows = {"bccd": _row(0.98, 0.99, bccd_scale), "txl": _row(0.975, 0.98, 0.92), "phone": _row(phone_recall, 0.94)}
    versions = {v: {name: _row(0.95, 0.95, 0.9) for name in rows} for v in ("blur", "vignette")}
    return fields.card_section(rows, versions)


def test_the_section_is_plain_json_with_the_localiser_version():
    section = _section()
    assert section["localiser_version"] == LOCALISER_VERSION
    assert section["split"] == "report"
    assert section["sets"]["phone"]["scale_within"] is None  # no scale truth: NaN is stored as null
    assert section["sets"]["phone"]["scale_ci"] == [None, None]
    assert section["versions"]["blur"]["txl"] == {"recall": 0.95, "precision": 0.95, "scale_within": 0.9}
    assert json.loads(json.dumps(section, allow_nan=False)) == section


def test_the_rendered_bars_name_each_figure_under_them():
    assert localisation_lines({"localisation": _section()})[-2].endswith("All met.")
    text = "\n".join(localisation_lines({"localisation": _section(phone_recall=0.907, bccd_scale=0.788)}))
    assert "| fields/phone (phone through the eyepiece, 416×416) | 10 | 20 | 0.907 [0.857-0.927] |" in text
    assert "Not met: phone recall 0.907 < 0.93; bccd scale within ±15% 0.788 < 0.9." in text
    assert "| blur | 0.950 / 0.950 | 0.950 / 0.950 | 0.950 / 0.950 |" in text
    assert localisation_lines({}) == []


def test_writing_the_section_keeps_the_rest_of_the_card(tmp_path):
    card_path = tmp_path / "model_card.json"
    shutil.copy(CARD, card_path)
    before = json.loads(card_path.read_text())
    before.pop("localisation", None)
    section = _section(phone_recall=0.5)
    card = write_localisation(section, card_path, tmp_path)
    written = json.loads(card_path.read_text())
    assert written == card and written["localisation"] == section
    assert {k: v for k, v in written.items() if k != "localisation"} == before
    keys = list(written)
    assert keys.index("localisation") == keys.index("robustness") + 1
    assert (tmp_path / "model-card.md").read_text() == markdown(written)
    assert "Not met: phone recall 0.500 < 0.93." in markdown(written)
    assert committed_localisation(card_path) == section
    written["localisation"]["localiser_version"] = LOCALISER_VERSION + "-other"
    card_path.write_text(json.dumps(written))
    assert committed_localisation(card_path) is None  # another localiser's figures are not carried to a new card


def test_the_card_option_needs_the_whole_report(capsys):
    for argv in (["--card", "--sets", "bccd"], ["--card", "--no-versions"], ["--card", "--split", "tune"]):
        with pytest.raises(SystemExit) as stopped:
            fields.main(argv)
        assert stopped.value.code == 2
    assert "--card needs the report split" in capsys.readouterr().err


def test_a_tune_run_makes_its_versions_of_tune_fields(monkeypatch):
    """`--split tune` must never print report figures unasked: its robustness versions are of the tune fields too."""
    made_of = {}
    monkeypatch.setattr(
        fields, "load_fields", lambda root: [fields.FieldImage("bccd", f"{s}.png", s, s) for s in ("tune", "report")]
    )
    monkeypatch.setattr(fields, "check_split", lambda chosen: None)

    def evaluate(locate, chosen, root, version=None, edge_cut="count"):
        made_of.setdefault(version, set()).update(f.split for f in chosen)
        return fields.Tally()

    monkeypatch.setattr(fields, "evaluate", evaluate)
    for argv, expected in (
        (["--split", "tune"], "tune"),
        (["--split", "report"], "report"),
        (["--split", "both"], "report"),
        (["--split", "tune", "--versions-split", "report"], "report"),
    ):
        made_of.clear()
        assert fields.main([*argv, "--sets", "bccd", "--versions", "blur", "--no-timing"]) == 0
        assert made_of["blur"] == {expected}, argv


# ------------------------------------------------------------------------------------------ the committed card
def test_the_committed_card_holds_this_localisers_figures():
    """A localiser change bumps LOCALISER_VERSION; its figures must then be re-measured (python -m export.fields
    --card). Whether they are the code's figures is checked by tests/integration/test_localiser_fields.py."""
    section = json.loads(CARD.read_text())["localisation"]
    assert section["localiser_version"] == LOCALISER_VERSION
    assert set(section["sets"]) == set(fields.SETS)
    assert set(section["versions"]) == set(fields.VERSIONS)
    assert (ROOT / "docs" / "model-card.md").read_text() == markdown(json.loads(CARD.read_text()))


def test_readme_states_the_cards_localisation_figures():
    """README's localisation table is the card's section, rounded as printed."""
    readme = (ROOT / "README.md").read_text()
    for name, row in json.loads(CARD.read_text())["localisation"]["sets"].items():
        recall = f"{row['recall']:.3f} [{row['recall_ci'][0]:.3f}-{row['recall_ci'][1]:.3f}]"
        precision = f"{row['precision']:.3f} [{row['precision_ci'][0]:.3f}-{row['precision_ci'][1]:.3f}]"
        scale = "—" if row["scale_within"] is None else f"{row['scale_within']:.3f}"
        pattern = (
            rf"\| fields/{name} [^|]*\| {row['fields']} \| {re.escape(recall)} \| {re.escape(precision)} \| {scale} \|"
        )
        assert re.search(pattern, readme), f"README's fields/{name} row should read {recall} | {precision} | {scale}"
