from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="UncertaintyRule")


@_attrs_define
class UncertaintyRule:
    """
    Attributes:
        confidence_threshold (float): Answers whose top probability is below it are uncertain.
        ood_similarity_threshold (float | None | Unset): Answers whose ood_similarity is below it are uncertain
            (out_of_distribution).
        rule (None | str | Unset): The rule in words.
    """

    confidence_threshold: float
    ood_similarity_threshold: float | None | Unset = UNSET
    rule: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        confidence_threshold = self.confidence_threshold

        ood_similarity_threshold: float | None | Unset
        if isinstance(self.ood_similarity_threshold, Unset):
            ood_similarity_threshold = UNSET
        else:
            ood_similarity_threshold = self.ood_similarity_threshold

        rule: None | str | Unset
        if isinstance(self.rule, Unset):
            rule = UNSET
        else:
            rule = self.rule

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "confidence_threshold": confidence_threshold,
            }
        )
        if ood_similarity_threshold is not UNSET:
            field_dict["ood_similarity_threshold"] = ood_similarity_threshold
        if rule is not UNSET:
            field_dict["rule"] = rule

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        confidence_threshold = d.pop("confidence_threshold")

        def _parse_ood_similarity_threshold(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        ood_similarity_threshold = _parse_ood_similarity_threshold(d.pop("ood_similarity_threshold", UNSET))

        def _parse_rule(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        rule = _parse_rule(d.pop("rule", UNSET))

        uncertainty_rule = cls(
            confidence_threshold=confidence_threshold,
            ood_similarity_threshold=ood_similarity_threshold,
            rule=rule,
        )

        uncertainty_rule.additional_properties = d
        return uncertainty_rule

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
