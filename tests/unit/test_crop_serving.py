"""A model whose card says crop == "cell" (model 2.0's input) is served on logic/cell_crop's crops; the card's crop
fields are checked at load. The stand-in model (random weights) only carries the plumbing: no label is asserted."""

import json

import pytest

from hematovision.logic.inference import Model, ModelLoadError
from hematovision.logic.localiser import LOCALISER_VERSION


def cell_card(model_dir, **changes) -> dict:
    """The stand-in's card, saying crop == "cell" (28 um, this localiser); `changes`: input keys to override (None
    removes one), or localiser=... for the localiser block."""
    card = json.loads((model_dir / "model_card.json").read_text())
    card["input"].update(crop="cell", crop_um=28.0)
    card["localiser"] = changes.pop("localiser", {"version": LOCALISER_VERSION})
    for key, value in changes.items():
        if value is None:
            card["input"].pop(key, None)
        else:
            card["input"][key] = value
    return card


def test_a_card_without_crop_is_a_frame_model(fake_model_dir):
    model = Model(fake_model_dir)
    assert (model.crop, model.crop_um) == ("frame", None)


def test_a_cell_card_is_read(fake_model_dir):
    model = Model(fake_model_dir, card=cell_card(fake_model_dir))
    assert (model.crop, model.crop_um) == ("cell", 28.0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"crop_um": None}, "without a positive crop_um"),
        ({"crop_um": 0}, "without a positive crop_um"),
        ({"crop_um": "28"}, "without a positive crop_um"),
        ({"crop": "nucleus"}, "neither 'cell' nor 'frame'"),
        ({"localiser": {"version": LOCALISER_VERSION + "-other"}}, "localiser version"),
        ({"localiser": {}}, "localiser version None"),
    ],
)
def test_a_cell_card_that_cannot_be_served_is_refused_at_load(fake_model_dir, changes, message):
    with pytest.raises(ModelLoadError, match=message):
        Model(fake_model_dir, card=cell_card(fake_model_dir, **changes))
