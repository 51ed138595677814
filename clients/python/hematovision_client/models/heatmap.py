from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="Heatmap")


@_attrs_define
class Heatmap:
    """
    Attributes:
        data (str): Base64 PNG: the resized input with the class activation map overlaid.
        height (int):
        label (str): The class whose activation map is drawn (the predicted one).
        width (int):
        media_type (Literal['image/png'] | Unset):  Default: 'image/png'.
    """

    data: str
    height: int
    label: str
    width: int
    media_type: Literal["image/png"] | Unset = "image/png"
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = self.data

        height = self.height

        label = self.label

        width = self.width

        media_type = self.media_type

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "data": data,
                "height": height,
                "label": label,
                "width": width,
            }
        )
        if media_type is not UNSET:
            field_dict["media_type"] = media_type

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        data = d.pop("data")

        height = d.pop("height")

        label = d.pop("label")

        width = d.pop("width")

        media_type = cast(Literal["image/png"] | Unset, d.pop("media_type", UNSET))
        if media_type != "image/png" and not isinstance(media_type, Unset):
            raise ValueError(f"media_type must match const 'image/png', got '{media_type}'")

        heatmap = cls(
            data=data,
            height=height,
            label=label,
            width=width,
            media_type=media_type,
        )

        heatmap.additional_properties = d
        return heatmap

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
