from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.analyze_response_counts import AnalyzeResponseCounts
    from ..models.analyzed_cell import AnalyzedCell
    from ..models.annotated_image import AnnotatedImage
    from ..models.model_ref import ModelRef
    from ..models.timings import Timings


T = TypeVar("T", bound="AnalyzeResponse")


@_attrs_define
class AnalyzeResponse:
    """
    Attributes:
        cell_count (int): White cells found (the listed ones and any beyond the cap).
        cells (list[AnalyzedCell]): Each white cell found, top to bottom then left to right; at most 64.
        counts (AnalyzeResponseCounts): The differential: cells per class, over every cell found.
        disclaimer (str):
        height (int): Height of the decoded (upright) photo.
        model (ModelRef):
        ruler (str): What the scale comes from: red_cells (measured), default (no usable red cells: a guess from the
            largest nucleus or the photo's size), none.
        timings (Timings):
        truncated (bool): True when more than 64 cells were found: `cells` is cut.
        uncertain_count (int): Cells found whose answer is uncertain.
        width (int): Width of the decoded (upright) photo.
        annotated (AnnotatedImage | None | Unset): With annotate=true: the labelled photo.
        filename (None | str | Unset):
        note (None | str | Unset): Set when no white cell was found (an empty `cells`).
        px_per_um (float | None | Unset): Scale estimate: pixels per micrometre of the upright photo (red cells ~7.5
            um).
        request_id (None | str | Unset):
    """

    cell_count: int
    cells: list[AnalyzedCell]
    counts: AnalyzeResponseCounts
    disclaimer: str
    height: int
    model: ModelRef
    ruler: str
    timings: Timings
    truncated: bool
    uncertain_count: int
    width: int
    annotated: AnnotatedImage | None | Unset = UNSET
    filename: None | str | Unset = UNSET
    note: None | str | Unset = UNSET
    px_per_um: float | None | Unset = UNSET
    request_id: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.annotated_image import AnnotatedImage  # noqa: PLC0415

        cell_count = self.cell_count

        cells = []
        for cells_item_data in self.cells:
            cells_item = cells_item_data.to_dict()
            cells.append(cells_item)

        counts = self.counts.to_dict()

        disclaimer = self.disclaimer

        height = self.height

        model = self.model.to_dict()

        ruler = self.ruler

        timings = self.timings.to_dict()

        truncated = self.truncated

        uncertain_count = self.uncertain_count

        width = self.width

        annotated: dict[str, Any] | None | Unset
        if isinstance(self.annotated, Unset):
            annotated = UNSET
        elif isinstance(self.annotated, AnnotatedImage):
            annotated = self.annotated.to_dict()
        else:
            annotated = self.annotated

        filename: None | str | Unset
        if isinstance(self.filename, Unset):
            filename = UNSET
        else:
            filename = self.filename

        note: None | str | Unset
        if isinstance(self.note, Unset):
            note = UNSET
        else:
            note = self.note

        px_per_um: float | None | Unset
        if isinstance(self.px_per_um, Unset):
            px_per_um = UNSET
        else:
            px_per_um = self.px_per_um

        request_id: None | str | Unset
        if isinstance(self.request_id, Unset):
            request_id = UNSET
        else:
            request_id = self.request_id

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "cell_count": cell_count,
                "cells": cells,
                "counts": counts,
                "disclaimer": disclaimer,
                "height": height,
                "model": model,
                "ruler": ruler,
                "timings": timings,
                "truncated": truncated,
                "uncertain_count": uncertain_count,
                "width": width,
            }
        )
        if annotated is not UNSET:
            field_dict["annotated"] = annotated
        if filename is not UNSET:
            field_dict["filename"] = filename
        if note is not UNSET:
            field_dict["note"] = note
        if px_per_um is not UNSET:
            field_dict["px_per_um"] = px_per_um
        if request_id is not UNSET:
            field_dict["request_id"] = request_id

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.analyze_response_counts import AnalyzeResponseCounts  # noqa: PLC0415
        from ..models.analyzed_cell import AnalyzedCell  # noqa: PLC0415
        from ..models.annotated_image import AnnotatedImage  # noqa: PLC0415
        from ..models.model_ref import ModelRef  # noqa: PLC0415
        from ..models.timings import Timings  # noqa: PLC0415

        d = dict(src_dict)
        cell_count = d.pop("cell_count")

        cells = []
        _cells = d.pop("cells")
        for cells_item_data in _cells:
            cells_item = AnalyzedCell.from_dict(cells_item_data)

            cells.append(cells_item)

        counts = AnalyzeResponseCounts.from_dict(d.pop("counts"))

        disclaimer = d.pop("disclaimer")

        height = d.pop("height")

        model = ModelRef.from_dict(d.pop("model"))

        ruler = d.pop("ruler")

        timings = Timings.from_dict(d.pop("timings"))

        truncated = d.pop("truncated")

        uncertain_count = d.pop("uncertain_count")

        width = d.pop("width")

        def _parse_annotated(data: object) -> AnnotatedImage | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                annotated_type_0 = AnnotatedImage.from_dict(data)

                return annotated_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(AnnotatedImage | None | Unset, data)

        annotated = _parse_annotated(d.pop("annotated", UNSET))

        def _parse_filename(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        filename = _parse_filename(d.pop("filename", UNSET))

        def _parse_note(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        note = _parse_note(d.pop("note", UNSET))

        def _parse_px_per_um(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        px_per_um = _parse_px_per_um(d.pop("px_per_um", UNSET))

        def _parse_request_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        request_id = _parse_request_id(d.pop("request_id", UNSET))

        analyze_response = cls(
            cell_count=cell_count,
            cells=cells,
            counts=counts,
            disclaimer=disclaimer,
            height=height,
            model=model,
            ruler=ruler,
            timings=timings,
            truncated=truncated,
            uncertain_count=uncertain_count,
            width=width,
            annotated=annotated,
            filename=filename,
            note=note,
            px_per_um=px_per_um,
            request_id=request_id,
        )

        analyze_response.additional_properties = d
        return analyze_response

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
