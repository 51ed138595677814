from __future__ import annotations

from collections.abc import Mapping
from io import BytesIO
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from .. import types
from ..types import File

T = TypeVar("T", bound="ClassifyBatchV1ClassifyBatchPostFilesBody")


@_attrs_define
class ClassifyBatchV1ClassifyBatchPostFilesBody:
    """
    Attributes:
        image (list[File]):
    """

    image: list[File]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        image = []
        for image_item_data in self.image:
            image_item = image_item_data.to_tuple()

            image.append(image_item)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "image": image,
            }
        )

        return field_dict

    def to_multipart(self) -> types.RequestFiles:
        files: types.RequestFiles = []

        for image_item_element in self.image:
            files.append(("image", image_item_element.to_tuple()))

        for prop_name, prop in self.additional_properties.items():
            files.append((prop_name, (None, str(prop).encode(), "text/plain")))

        return files

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        image = []
        _image = d.pop("image")
        for image_item_data in _image:
            image_item = File(payload=BytesIO(image_item_data))

            image.append(image_item)

        classify_batch_v1_classify_batch_post_files_body = cls(
            image=image,
        )

        classify_batch_v1_classify_batch_post_files_body.additional_properties = d
        return classify_batch_v1_classify_batch_post_files_body

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
