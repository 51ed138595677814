"""`hematovision analyze PATH... [--json]` with the random-weights model and a stand-in localiser."""

import json
import subprocess
import sys

import pytest

from hematovision import cli
from hematovision.logic import analysis
from hematovision.logic.localiser import Localisation
from tests import fakes

KEYS = {"file", "width", "height", "cells", "counts"}
CELL_KEYS = {"box", "label", "confidence", "probabilities", "uncertain", "uncertain_reasons"}


@pytest.fixture
def two_cells(monkeypatch):
    def fake(image):
        w, h = image.size
        return Localisation(boxes=[(0, 0, w // 4, h // 4), (w // 2, h // 2, w, h)], scores=[1.0, 1.0])

    monkeypatch.setattr(analysis, "locate", fake)


def test_json_lines_one_per_image_and_errors_continue(tmp_path, fake_model_dir, capsys, two_cells):
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a.jpg").write_bytes(fakes.synthetic_cell(width=400, height=300))
    (tmp_path / "dir" / "b.png").write_bytes(fakes.synthetic_cell(fmt="PNG"))
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    code = cli.main(
        ["analyze", str(tmp_path / "bad.jpg"), str(tmp_path / "dir"), "--json", "--model-dir", str(fake_model_dir)]
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1 and len(lines) == 3
    assert lines[0] == {
        "file": str(tmp_path / "bad.jpg"),
        "error": {"code": "unsupported_image", "message": lines[0]["error"]["message"]},
    }
    first = lines[1]
    assert set(first) == KEYS and first["file"].endswith("a.jpg") and (first["width"], first["height"]) == (400, 300)
    assert [c["box"] for c in first["cells"]] == [[0, 0, 100, 75], [200, 150, 400, 300]]
    assert all(set(c) == CELL_KEYS for c in first["cells"])
    assert sum(first["counts"].values()) == 2 and set(first["counts"]) == set(fakes.CLASSES)


def test_human_output(tmp_path, fake_model_dir, capsys, two_cells):
    path = tmp_path / "field.jpg"
    path.write_bytes(fakes.synthetic_cell())
    assert cli.main(["analyze", str(path), "--model-dir", str(fake_model_dir)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{path}\t320x240\t2 white cell(s): ") and len(out) == 3
    assert out[1].strip().startswith("1  [0, 0, 80, 60]")


def test_no_images_found(tmp_path, capsys):
    assert cli.main(["analyze", str(tmp_path)]) == 2


def test_a_closed_pipe_is_quiet(tmp_path, fake_model_dir):
    """`hematovision analyze DIR | head -1`: no traceback when the reader leaves (real localiser, many files)."""
    for index in range(40):
        (tmp_path / f"{index:02}.jpg").write_bytes(fakes.synthetic_cell(seed=index))
    command = [sys.executable, "-m", "hematovision.cli", "analyze", str(tmp_path), "--model-dir", str(fake_model_dir)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        process.stdout.readline()
        process.stdout.close()
        stderr = process.stderr.read().decode()
        code = process.wait(timeout=120)
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    assert code == 0


def test_annotate_writes_each_photo_with_its_boxes(tmp_path, fake_model_dir, capsys, two_cells):
    from PIL import Image

    path = tmp_path / "field.jpg"
    path.write_bytes(fakes.synthetic_cell(width=400, height=300))
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    out = tmp_path / "annotated"
    arguments = ["analyze", str(path), str(tmp_path / "bad.jpg"), "--annotate", str(out)]
    assert cli.main([*arguments, "--model-dir", str(fake_model_dir)]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["field.annotated.png"]
    with Image.open(out / "field.annotated.png") as png:
        assert png.format == "PNG" and png.size == (400, 300)
        original = Image.open(path).convert("RGB")
        assert png.convert("RGB").tobytes() != original.tobytes()  # the boxes are drawn on it
