"""CLI classify / evaluate on synthetic images with the random-weights model (no label assertions)."""

import json

import pytest

from hematovision import cli
from tests import fakes


@pytest.fixture
def image_tree(tmp_path):
    for index, name in enumerate(fakes.CLASSES):
        folder = tmp_path / "data" / name
        folder.mkdir(parents=True)
        for seed in range(3):
            (folder / f"{seed}.jpg").write_bytes(fakes.synthetic_cell(seed=10 * index + seed))
    (tmp_path / "data" / "EOSINOPHIL" / "broken.jpg").write_bytes(b"not an image")
    return tmp_path / "data"


def test_classify_json_lines(image_tree, fake_model_dir, capsys):
    code = cli.main(
        [
            "classify",
            str(image_tree / "LYMPHOCYTE"),
            str(image_tree / "EOSINOPHIL" / "broken.jpg"),
            "--json",
            "--model-dir",
            str(fake_model_dir),
        ]
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1  # one unreadable image
    assert len(lines) == 4
    for line in lines[:3]:
        assert set(line) == {"path", "label", "confidence", "probabilities", "uncertain", "crop", "crop_ruler"}
        assert line["label"] in fakes.CLASSES
        assert (line["crop"], line["crop_ruler"]) == ("frame", "none")  # a frame model (its card says no crop)
    assert lines[3]["error"]["code"] == "unsupported_image"


def test_evaluate_json(image_tree, fake_model_dir, capsys):
    assert cli.main(["evaluate", str(image_tree), "--json", "--model-dir", str(fake_model_dir)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["n"] == 12 and len(metrics["errors"]) == 1
    assert set(metrics) >= {"accuracy", "macro_f1", "per_class", "confusion_matrix", "uncertain_fraction"}
    assert sum(map(sum, metrics["confusion_matrix"])) == 12
    assert cli.main(["evaluate", str(image_tree), "--model-dir", str(fake_model_dir)]) == 0
    assert "macro-F1" in capsys.readouterr().out


def test_missing_model_is_a_clean_error(tmp_path, capsys):
    assert cli.main(["classify", str(tmp_path), "--model-dir", str(tmp_path / "none")]) == 2
    assert "No model" in capsys.readouterr().err


def test_folder_scan_takes_every_supported_format(tmp_path, fake_model_dir, capsys):
    for fmt, suffix in (("GIF", ".gif"), ("PNG", ".png"), ("TIFF", ".tif"), ("WEBP", ".webp")):
        (tmp_path / f"cell{suffix}").write_bytes(fakes.synthetic_cell(fmt=fmt))
    (tmp_path / "notes.txt").write_text("not an image")
    assert cli.main(["classify", str(tmp_path), "--json", "--model-dir", str(fake_model_dir)]) == 0
    paths = [json.loads(line)["path"] for line in capsys.readouterr().out.splitlines()]
    assert sorted(p.rsplit(".", 1)[1] for p in paths) == ["gif", "png", "tif", "webp"]
