"""From model outputs to a verdict: label, confidence, probabilities and the model card's uncertainty rule."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hematovision.logic.descriptions import describe
from hematovision.logic.inference import Thresholds

LOW_CONFIDENCE = "low_confidence"
OUT_OF_DISTRIBUTION = "out_of_distribution"


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
