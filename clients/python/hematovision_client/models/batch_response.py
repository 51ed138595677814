from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.batch_result import BatchResult
    from ..models.model_ref import ModelRef
    from ..models.timings import Timings


T = TypeVar("T", bound="BatchResponse")


@_attrs_define
class BatchResponse:
    """
    Attributes:
        count (int):
        disclaimer (str):
        failed (int):
        model (ModelRef):
        results (list[BatchResult]):
        succeeded (int):
        timings (Timings):
        request_id (None | str | Unset):
    """

    count: int
    disclaimer: str
    failed: int
    model: ModelRef
    results: list[BatchResult]
    succeeded: int
    timings: Timings
    request_id: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        count = self.count

        disclaimer = self.disclaimer

        failed = self.failed

        model = self.model.to_dict()

        results = []
        for results_item_data in self.results:
            results_item = results_item_data.to_dict()
            results.append(results_item)

        succeeded = self.succeeded

        timings = self.timings.to_dict()

        request_id: None | str | Unset
        if isinstance(self.request_id, Unset):
            request_id = UNSET
        else:
            request_id = self.request_id

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "count": count,
                "disclaimer": disclaimer,
                "failed": failed,
                "model": model,
                "results": results,
                "succeeded": succeeded,
                "timings": timings,
            }
        )
        if request_id is not UNSET:
            field_dict["request_id"] = request_id

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.batch_result import BatchResult  # noqa: PLC0415
        from ..models.model_ref import ModelRef  # noqa: PLC0415
        from ..models.timings import Timings  # noqa: PLC0415

        d = dict(src_dict)
        count = d.pop("count")

        disclaimer = d.pop("disclaimer")

        failed = d.pop("failed")

        model = ModelRef.from_dict(d.pop("model"))

        results = []
        _results = d.pop("results")
        for results_item_data in _results:
            results_item = BatchResult.from_dict(results_item_data)

            results.append(results_item)

        succeeded = d.pop("succeeded")

        timings = Timings.from_dict(d.pop("timings"))

        def _parse_request_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        request_id = _parse_request_id(d.pop("request_id", UNSET))

        batch_response = cls(
            count=count,
            disclaimer=disclaimer,
            failed=failed,
            model=model,
            results=results,
            succeeded=succeeded,
            timings=timings,
            request_id=request_id,
        )

        batch_response.additional_properties = d
        return batch_response

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
