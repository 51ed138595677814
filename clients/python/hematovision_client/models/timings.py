from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="Timings")


@_attrs_define
class Timings:
    """
    Attributes:
        decode_ms (float): Decoding and preprocessing of the image(s).
        inference_ms (float): onnxruntime inference (one batched call).
        total_ms (float): Whole request inside the function, body parsing included.
        locate_ms (float | None | Unset): Finding the white cells (logic/localiser.py).
    """

    decode_ms: float
    inference_ms: float
    total_ms: float
    locate_ms: float | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        decode_ms = self.decode_ms

        inference_ms = self.inference_ms

        total_ms = self.total_ms

        locate_ms: float | None | Unset
        if isinstance(self.locate_ms, Unset):
            locate_ms = UNSET
        else:
            locate_ms = self.locate_ms

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "decode_ms": decode_ms,
                "inference_ms": inference_ms,
                "total_ms": total_ms,
            }
        )
        if locate_ms is not UNSET:
            field_dict["locate_ms"] = locate_ms

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        decode_ms = d.pop("decode_ms")

        inference_ms = d.pop("inference_ms")

        total_ms = d.pop("total_ms")

        def _parse_locate_ms(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        locate_ms = _parse_locate_ms(d.pop("locate_ms", UNSET))

        timings = cls(
            decode_ms=decode_ms,
            inference_ms=inference_ms,
            total_ms=total_ms,
            locate_ms=locate_ms,
        )

        timings.additional_properties = d
        return timings

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
