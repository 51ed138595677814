"""From model outputs to a verdict: label, confidence, probabilities and the model card's uncertainty rule."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hematovision.logic.descriptions import describe
from hematovision.logic.inference import Thresholds

LOW_CONFIDENCE = "low_confidence"
OUT_OF_DISTRIBUTION = "out_of_distribution"
# From the localiser (logic/localiser.py), for a photo meant to show one white cell (POST /v1/classify):
MULTIPLE_CELLS = "multiple_cells"  # it found more than one: the answer is about the whole frame, not one cell
NO_CELL = "no_cell"  # it found none
ANALYZE_ROUTE = "POST /v1/analyze"


@dataclass
class Verdict:
    label: str
    label_index: int
    confidence: float
    probabilities: dict[str, float]
    uncertain: bool
    uncertain_reasons: list[str] = field(default_factory=list)
    ood_similarity: float | None = None
    description: str = ""


def verdict(
    probabilities: np.ndarray, classes: list[str], thresholds: Thresholds, ood_similarity: float | None = None
) -> Verdict:
    """The card's rule: uncertain = max probability < confidence threshold OR ood similarity < ood threshold."""
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if probabilities.shape[0] != len(classes) or not np.all(np.isfinite(probabilities)):
        raise ValueError("model output does not match the card's classes")
    index = int(np.argmax(probabilities))
    confidence = float(probabilities[index])
    reasons = []
    if confidence < thresholds.confidence:
        reasons.append(LOW_CONFIDENCE)
    similarity = None if ood_similarity is None else float(ood_similarity)
    if similarity is not None and thresholds.ood_similarity is not None and not similarity >= thresholds.ood_similarity:
        reasons.append(OUT_OF_DISTRIBUTION)
    label = classes[index]
    return Verdict(
        label=label,
        label_index=index,
        confidence=round(confidence, 6),
        probabilities={name: round(float(p), 6) for name, p in zip(classes, probabilities, strict=True)},
        uncertain=bool(reasons),
        uncertain_reasons=reasons,
        ood_similarity=None if similarity is None else round(similarity, 6),
        description=describe(label),
    )


def flag_cell_count(v: Verdict, cells_found: int | None, crop: str = "frame") -> Verdict:
    """The localiser's reasons on a classify verdict: more than one white cell, or none, makes it uncertain, and the
    description says so and points to /v1/analyze. `cells_found` None: no localisation, no flag. `crop`: what the
    verdict is about, the whole frame or the crop of the best-scoring cell ("cell").
    """
    if cells_found is None or cells_found == 1:
        return v
    if cells_found > 1:
        reason = MULTIPLE_CELLS
        about = "the cell the localiser scored highest" if crop == "cell" else "the whole frame, not for one cell"
        note = (
            f"{cells_found} white cells were found in this photo: this answer is for {about}. Send the photo to "
            f"{ANALYZE_ROUTE} to classify each cell."
        )
    else:
        reason = NO_CELL
        note = (
            "No white cell was found in this photo: send a photo centred on one white cell, or a whole field to "
            f"{ANALYZE_ROUTE}."
        )
    v.uncertain_reasons = [*v.uncertain_reasons, reason]
    v.uncertain = True
    v.description = f"{v.description} {note}".strip()
    return v
