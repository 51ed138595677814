from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.batch_item import BatchItem


T = TypeVar("T", bound="BatchJsonRequest")


@_attrs_define
class BatchJsonRequest:
    """
    Attributes:
        images (list[BatchItem | str]): 1 to 16 images, each a base64 string or {image, filename}.
    """

    images: list[BatchItem | str]

    def to_dict(self) -> dict[str, Any]:
        from ..models.batch_item import BatchItem  # noqa: PLC0415

        images = []
        for images_item_data in self.images:
            images_item: dict[str, Any] | str
            if isinstance(images_item_data, BatchItem):
                images_item = images_item_data.to_dict()
            else:
                images_item = images_item_data
            images.append(images_item)

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "images": images,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.batch_item import BatchItem  # noqa: PLC0415

        d = dict(src_dict)
        images = []
        _images = d.pop("images")
        for images_item_data in _images:

            def _parse_images_item(data: object) -> BatchItem | str:
                try:
                    if not isinstance(data, dict):
                        raise TypeError()
                    images_item_type_1 = BatchItem.from_dict(data)

                    return images_item_type_1
                except (TypeError, ValueError, AttributeError, KeyError):
                    pass
                return cast(BatchItem | str, data)

            images_item = _parse_images_item(images_item_data)

            images.append(images_item)

        batch_json_request = cls(
            images=images,
        )

        return batch_json_request
