from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.analyzed_cell_probabilities import AnalyzedCellProbabilities


T = TypeVar("T", bound="AnalyzedCell")


@_attrs_define
class AnalyzedCell:
    """
    Attributes:
        box (list[int]): [xmin, ymin, xmax, ymax] in the pixels of the upright original photo.
        confidence (float): Probability of `label`.
        label (str): Most probable cell type.
        probabilities (AnalyzedCellProbabilities): Probability of each of the four classes.
        uncertain (bool): True when confidence or similarity is below the card's thresholds.
        uncertain_reasons (list[str] | Unset): low_confidence and/or out_of_distribution.
    """

    box: list[int]
    confidence: float
    label: str
    probabilities: AnalyzedCellProbabilities
    uncertain: bool
    uncertain_reasons: list[str] | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        box = self.box

        confidence = self.confidence

        label = self.label

        probabilities = self.probabilities.to_dict()

        uncertain = self.uncertain

        uncertain_reasons: list[str] | Unset = UNSET
        if not isinstance(self.uncertain_reasons, Unset):
            uncertain_reasons = self.uncertain_reasons

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "box": box,
                "confidence": confidence,
                "label": label,
                "probabilities": probabilities,
                "uncertain": uncertain,
            }
        )
        if uncertain_reasons is not UNSET:
            field_dict["uncertain_reasons"] = uncertain_reasons

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.analyzed_cell_probabilities import AnalyzedCellProbabilities  # noqa: PLC0415

        d = dict(src_dict)
        box = cast(list[int], d.pop("box"))

        confidence = d.pop("confidence")

        label = d.pop("label")

        probabilities = AnalyzedCellProbabilities.from_dict(d.pop("probabilities"))

        uncertain = d.pop("uncertain")

        uncertain_reasons = cast(list[str], d.pop("uncertain_reasons", UNSET))

        analyzed_cell = cls(
            box=box,
            confidence=confidence,
            label=label,
            probabilities=probabilities,
            uncertain=uncertain,
            uncertain_reasons=uncertain_reasons,
        )

        analyzed_cell.additional_properties = d
        return analyzed_cell

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
