"""export/card.py's crop contract (read by logic/inference.Model) and its words for each kind of model."""

from export_helpers import ROOT

from export.card import crop_fields, preprocessing_text
from export.recipe import REPO, Recipe
from hematovision.logic.localiser import LOCALISER_VERSION

CANDIDATE = ROOT / "export" / "recipes" / "2.0.0-candidate-160.json"


def test_a_cell_model_card_states_its_crop_and_localiser():
    input_fields, localiser = crop_fields(Recipe.load(CANDIDATE))
    assert input_fields == {"crop": "cell", "crop_um": 28.0}
    assert localiser == {"version": LOCALISER_VERSION}
    text = preprocessing_text(Recipe.load(CANDIDATE))
    assert "28 um" in text and "resize to 160x160" in text and "cell_crop.model_input" in text


def test_a_frame_model_card_is_unchanged():
    """1.2.0's card says nothing about crops (absent = the frame) and keeps its preprocessing text word for word."""
    recipe = Recipe.load(REPO / "export" / "recipes" / "1.2.0.json")
    assert crop_fields(recipe) == ({}, None)
    assert preprocessing_text(recipe) == (
        "decode (Pillow) -> apply EXIF orientation -> RGB (alpha composited on white) -> resize to 224x224, bilinear, "
        "aspect ratio not kept (hematovision.logic.preprocessing)"
    )
