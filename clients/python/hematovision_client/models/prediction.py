from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.prediction_crop import PredictionCrop
from ..models.prediction_crop_ruler import PredictionCropRuler
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.heatmap import Heatmap
    from ..models.prediction_probabilities import PredictionProbabilities


T = TypeVar("T", bound="Prediction")


@_attrs_define
class Prediction:
    """
    Attributes:
        confidence (float): Probability of `label`.
        crop (PredictionCrop): What the model classified: cell, a square of fixed physical size centred on the white
            cell the localiser scored highest (models whose card says so, from 2.0); frame, the whole photo resized (model
            1.2.0, or no white cell found).
        crop_ruler (PredictionCropRuler): How the crop's size was measured: red_cells (the photo's scale from its red
            cells, ~7.5 um across), box (no red-cell ruler: a multiple of the cell's own box), none (crop is frame).
        description (str): One sentence about the predicted cell type.
        label (str): Most probable cell type.
        probabilities (PredictionProbabilities): Probability of each of the four classes.
        uncertain (bool): True when confidence or similarity to the training data is below the card's thresholds.
        filename (None | str | Unset):
        heatmap (Heatmap | None | Unset):
        height (int | None | Unset): Height of the decoded (upright) image.
        ood_similarity (float | None | Unset): Cosine similarity to the nearest class centroid of the training data.
        uncertain_reasons (list[str] | Unset): low_confidence, out_of_distribution; on /v1/classify also multiple_cells
            (more than one white cell in the photo: send it to /v1/analyze) or no_cell (no white cell found).
        width (int | None | Unset): Width of the decoded (upright) image.
    """

    confidence: float
    crop: PredictionCrop
    crop_ruler: PredictionCropRuler
    description: str
    label: str
    probabilities: PredictionProbabilities
    uncertain: bool
    filename: None | str | Unset = UNSET
    heatmap: Heatmap | None | Unset = UNSET
    height: int | None | Unset = UNSET
    ood_similarity: float | None | Unset = UNSET
    uncertain_reasons: list[str] | Unset = UNSET
    width: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.heatmap import Heatmap  # noqa: PLC0415

        confidence = self.confidence

        crop = self.crop.value

        crop_ruler = self.crop_ruler.value

        description = self.description

        label = self.label

        probabilities = self.probabilities.to_dict()

        uncertain = self.uncertain

        filename: None | str | Unset
        if isinstance(self.filename, Unset):
            filename = UNSET
        else:
            filename = self.filename

        heatmap: dict[str, Any] | None | Unset
        if isinstance(self.heatmap, Unset):
            heatmap = UNSET
        elif isinstance(self.heatmap, Heatmap):
            heatmap = self.heatmap.to_dict()
        else:
            heatmap = self.heatmap

        height: int | None | Unset
        if isinstance(self.height, Unset):
            height = UNSET
        else:
            height = self.height

        ood_similarity: float | None | Unset
        if isinstance(self.ood_similarity, Unset):
            ood_similarity = UNSET
        else:
            ood_similarity = self.ood_similarity

        uncertain_reasons: list[str] | Unset = UNSET
        if not isinstance(self.uncertain_reasons, Unset):
            uncertain_reasons = self.uncertain_reasons

        width: int | None | Unset
        if isinstance(self.width, Unset):
            width = UNSET
        else:
            width = self.width

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "confidence": confidence,
                "crop": crop,
                "crop_ruler": crop_ruler,
                "description": description,
                "label": label,
                "probabilities": probabilities,
                "uncertain": uncertain,
            }
        )
        if filename is not UNSET:
            field_dict["filename"] = filename
        if heatmap is not UNSET:
            field_dict["heatmap"] = heatmap
        if height is not UNSET:
            field_dict["height"] = height
        if ood_similarity is not UNSET:
            field_dict["ood_similarity"] = ood_similarity
        if uncertain_reasons is not UNSET:
            field_dict["uncertain_reasons"] = uncertain_reasons
        if width is not UNSET:
            field_dict["width"] = width

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.heatmap import Heatmap  # noqa: PLC0415
        from ..models.prediction_probabilities import PredictionProbabilities  # noqa: PLC0415

        d = dict(src_dict)
        confidence = d.pop("confidence")

        crop = PredictionCrop(d.pop("crop"))

        crop_ruler = PredictionCropRuler(d.pop("crop_ruler"))

        description = d.pop("description")

        label = d.pop("label")

        probabilities = PredictionProbabilities.from_dict(d.pop("probabilities"))

        uncertain = d.pop("uncertain")

        def _parse_filename(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        filename = _parse_filename(d.pop("filename", UNSET))

        def _parse_heatmap(data: object) -> Heatmap | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                heatmap_type_0 = Heatmap.from_dict(data)

                return heatmap_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(Heatmap | None | Unset, data)

        heatmap = _parse_heatmap(d.pop("heatmap", UNSET))

        def _parse_height(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        height = _parse_height(d.pop("height", UNSET))

        def _parse_ood_similarity(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        ood_similarity = _parse_ood_similarity(d.pop("ood_similarity", UNSET))

        uncertain_reasons = cast(list[str], d.pop("uncertain_reasons", UNSET))

        def _parse_width(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        width = _parse_width(d.pop("width", UNSET))

        prediction = cls(
            confidence=confidence,
            crop=crop,
            crop_ruler=crop_ruler,
            description=description,
            label=label,
            probabilities=probabilities,
            uncertain=uncertain,
            filename=filename,
            heatmap=heatmap,
            height=height,
            ood_similarity=ood_similarity,
            uncertain_reasons=uncertain_reasons,
            width=width,
        )

        prediction.additional_properties = d
        return prediction

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
