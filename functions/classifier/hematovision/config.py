"""Runtime configuration from the environment, with the defaults the function ships with (request limits: limits.py)."""

from __future__ import annotations

import os
from pathlib import Path

import hematovision

MODEL_DIR_ENV = "HEMATOVISION_MODEL_DIR"
INTRA_OP_THREADS_ENV = "HEMATOVISION_INTRA_OP_THREADS"
UNCERTAINTY_THRESHOLD_ENV = "HEMATOVISION_UNCERTAINTY_THRESHOLD"
CORS_ALLOW_ORIGIN_ENV = "HEMATOVISION_CORS_ALLOW_ORIGIN"

MODEL_FILE = "hematovision.onnx"
CARD_FILE = "model_card.json"

DISCLAIMER = "Decision support, not a diagnosis: results must be reviewed by a qualified professional."


def default_model_dir() -> Path:
    """functions/classifier/model, next to the package (the SAM CodeUri root in Lambda)."""
    return Path(hematovision.__file__).resolve().parent.parent / "model"


def model_dir() -> Path:
    override = os.environ.get(MODEL_DIR_ENV, "").strip()
    return Path(override) if override else default_model_dir()


def intra_op_threads() -> int:
    """onnxruntime intra-op threads: env override, else 1 (Lambda below 1769 MB has < 1 vCPU)."""
    raw = os.environ.get(INTRA_OP_THREADS_ENV, "").strip()
    try:
        value = int(raw) if raw else 1
    except ValueError:
        value = 1
    return max(1, min(value, os.cpu_count() or 1, 16))


def uncertainty_threshold_override() -> float | None:
    raw = os.environ.get(UNCERTAINTY_THRESHOLD_ENV, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if 0.0 <= value <= 1.0 else None


def cors_allow_origin() -> str:
    return os.environ.get(CORS_ALLOW_ORIGIN_ENV, "").strip() or "*"


def serving_locally() -> bool:
    """True under `hematovision serve` and `sam local`: both set AWS_SAM_LOCAL=true in the function's environment."""
    return os.environ.get("AWS_SAM_LOCAL", "").strip().lower() == "true"
