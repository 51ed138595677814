"""The model's sha256 checked at build time (functions/classifier/verify_model.py) and the cheap check at init that
the packaged file is still the one the build verified (hematovision.logic.inference.verify_model_file)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hematovision.logic import inference
from hematovision.logic.inference import BUILD_CHECK_FILE, Model, ModelLoadError

VERIFY = Path(__file__).resolve().parents[2] / "functions" / "classifier" / "verify_model.py"


def build(package: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-I", str(VERIFY), str(package)], capture_output=True, text=True)


@pytest.fixture
def package(tmp_path, fake_model_dir) -> Path:
    """A package directory with the fake model as the build copies it (package/model)."""
    shutil.copytree(fake_model_dir, tmp_path / "model")
    return tmp_path


def test_build_records_the_verified_model_and_init_skips_the_hash(package, monkeypatch):
    completed = build(package)
    assert completed.returncode == 0, completed.stderr
    record = json.loads((package / "model" / BUILD_CHECK_FILE).read_text())
    card = json.loads((package / "model" / "model_card.json").read_text())
    assert record["sha256"] == card["sha256"]
    assert record["bytes"] == (package / "model" / "hematovision.onnx").stat().st_size

    def no_hash(path):
        raise AssertionError("the init hashed a model the build verified")

    monkeypatch.setattr(inference, "sha256_file", no_hash)
    assert Model(package / "model", intra_op_threads=1).classes == card["classes"]


def test_build_refuses_a_model_its_card_does_not_name(package):
    state_sha256_in_card(package, "0" * 64)
    completed = build(package)
    assert completed.returncode == 1 and "sha256" in completed.stderr
    assert not (package / "model" / BUILD_CHECK_FILE).exists()


def test_init_refuses_a_file_changed_since_the_build(package):
    assert build(package).returncode == 0
    onnx = package / "model" / "hematovision.onnx"
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, same size
    onnx.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="changed since the build"):
        Model(package / "model", intra_op_threads=1)
    onnx.write_bytes(bytes(data[:-10]))  # truncated
    with pytest.raises(ModelLoadError, match="changed since the build"):
        Model(package / "model", intra_op_threads=1)


def state_sha256_in_card(package, sha256: str) -> None:
    card_path = package / "model" / "model_card.json"
    card = json.loads(card_path.read_text())
    card["sha256"] = sha256
    card_path.write_text(json.dumps(card))


def test_init_refuses_a_card_other_than_the_one_the_build_verified(package):
    assert build(package).returncode == 0
    state_sha256_in_card(package, "f" * 64)
    with pytest.raises(ModelLoadError, match="another sha256"):
        Model(package / "model", intra_op_threads=1)


def test_without_the_record_the_init_hashes_the_file(package):
    state_sha256_in_card(package, "0" * 64)
    with pytest.raises(ModelLoadError, match="does not match the sha256"):
        Model(package / "model", intra_op_threads=1)
