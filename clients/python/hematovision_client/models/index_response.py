from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.index_response_endpoints import IndexResponseEndpoints
    from ..models.model_ref import ModelRef


T = TypeVar("T", bound="IndexResponse")


@_attrs_define
class IndexResponse:
    """
    Attributes:
        description (str):
        disclaimer (str):
        endpoints (IndexResponseEndpoints):
        model (ModelRef):
        name (str):
    """

    description: str
    disclaimer: str
    endpoints: IndexResponseEndpoints
    model: ModelRef
    name: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        description = self.description

        disclaimer = self.disclaimer

        endpoints = self.endpoints.to_dict()

        model = self.model.to_dict()

        name = self.name

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "description": description,
                "disclaimer": disclaimer,
                "endpoints": endpoints,
                "model": model,
                "name": name,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.index_response_endpoints import IndexResponseEndpoints  # noqa: PLC0415
        from ..models.model_ref import ModelRef  # noqa: PLC0415

        d = dict(src_dict)
        description = d.pop("description")

        disclaimer = d.pop("disclaimer")

        endpoints = IndexResponseEndpoints.from_dict(d.pop("endpoints"))

        model = ModelRef.from_dict(d.pop("model"))

        name = d.pop("name")

        index_response = cls(
            description=description,
            disclaimer=disclaimer,
            endpoints=endpoints,
            model=model,
            name=name,
        )

        index_response.additional_properties = d
        return index_response

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
