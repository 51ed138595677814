from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.model_card_input_type_0 import ModelCardInputType0
    from ..models.model_card_metrics_type_0 import ModelCardMetricsType0
    from ..models.model_card_outputs_type_0 import ModelCardOutputsType0
    from ..models.uncertainty_rule import UncertaintyRule


T = TypeVar("T", bound="ModelCard")


@_attrs_define
class ModelCard:
    """GET /v1/model: model_card.json as shipped. The fields a client relies on are typed; the card's other
    sections (training, data, robustness, parity, tools, ...) pass through as they are.

        Attributes:
            classes (list[str]): Class names, in the order of the model's outputs.
            name (str):
            version (str): Semantic version; every answer's model.version is this.
            created_at (None | str | Unset):
            input_ (ModelCardInputType0 | None | Unset): Input tensor, preprocessing and crop contract.
            intended_use (None | str | Unset):
            limitations (list[str] | None | Unset):
            metrics (ModelCardMetricsType0 | None | Unset): Per evaluation set: accuracy, macro_f1, per-class figures,
                confusion matrix, n.
            not_a_diagnosis (bool | None | Unset):
            outputs (ModelCardOutputsType0 | None | Unset):
            sha256 (None | str | Unset): sha256 of the ONNX file.
            uncertainty (None | UncertaintyRule | Unset):
    """

    classes: list[str]
    name: str
    version: str
    created_at: None | str | Unset = UNSET
    input_: ModelCardInputType0 | None | Unset = UNSET
    intended_use: None | str | Unset = UNSET
    limitations: list[str] | None | Unset = UNSET
    metrics: ModelCardMetricsType0 | None | Unset = UNSET
    not_a_diagnosis: bool | None | Unset = UNSET
    outputs: ModelCardOutputsType0 | None | Unset = UNSET
    sha256: None | str | Unset = UNSET
    uncertainty: None | UncertaintyRule | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.model_card_input_type_0 import ModelCardInputType0  # noqa: PLC0415
        from ..models.model_card_metrics_type_0 import ModelCardMetricsType0  # noqa: PLC0415
        from ..models.model_card_outputs_type_0 import ModelCardOutputsType0  # noqa: PLC0415
        from ..models.uncertainty_rule import UncertaintyRule  # noqa: PLC0415

        classes = self.classes

        name = self.name

        version = self.version

        created_at: None | str | Unset
        if isinstance(self.created_at, Unset):
            created_at = UNSET
        else:
            created_at = self.created_at

        input_: dict[str, Any] | None | Unset
        if isinstance(self.input_, Unset):
            input_ = UNSET
        elif isinstance(self.input_, ModelCardInputType0):
            input_ = self.input_.to_dict()
        else:
            input_ = self.input_

        intended_use: None | str | Unset
        if isinstance(self.intended_use, Unset):
            intended_use = UNSET
        else:
            intended_use = self.intended_use

        limitations: list[str] | None | Unset
        if isinstance(self.limitations, Unset):
            limitations = UNSET
        elif isinstance(self.limitations, list):
            limitations = self.limitations

        else:
            limitations = self.limitations

        metrics: dict[str, Any] | None | Unset
        if isinstance(self.metrics, Unset):
            metrics = UNSET
        elif isinstance(self.metrics, ModelCardMetricsType0):
            metrics = self.metrics.to_dict()
        else:
            metrics = self.metrics

        not_a_diagnosis: bool | None | Unset
        if isinstance(self.not_a_diagnosis, Unset):
            not_a_diagnosis = UNSET
        else:
            not_a_diagnosis = self.not_a_diagnosis

        outputs: dict[str, Any] | None | Unset
        if isinstance(self.outputs, Unset):
            outputs = UNSET
        elif isinstance(self.outputs, ModelCardOutputsType0):
            outputs = self.outputs.to_dict()
        else:
            outputs = self.outputs

        sha256: None | str | Unset
        if isinstance(self.sha256, Unset):
            sha256 = UNSET
        else:
            sha256 = self.sha256

        uncertainty: dict[str, Any] | None | Unset
        if isinstance(self.uncertainty, Unset):
            uncertainty = UNSET
        elif isinstance(self.uncertainty, UncertaintyRule):
            uncertainty = self.uncertainty.to_dict()
        else:
            uncertainty = self.uncertainty

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "classes": classes,
                "name": name,
                "version": version,
            }
        )
        if created_at is not UNSET:
            field_dict["created_at"] = created_at
        if input_ is not UNSET:
            field_dict["input"] = input_
        if intended_use is not UNSET:
            field_dict["intended_use"] = intended_use
        if limitations is not UNSET:
            field_dict["limitations"] = limitations
        if metrics is not UNSET:
            field_dict["metrics"] = metrics
        if not_a_diagnosis is not UNSET:
            field_dict["not_a_diagnosis"] = not_a_diagnosis
        if outputs is not UNSET:
            field_dict["outputs"] = outputs
        if sha256 is not UNSET:
            field_dict["sha256"] = sha256
        if uncertainty is not UNSET:
            field_dict["uncertainty"] = uncertainty

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.model_card_input_type_0 import ModelCardInputType0  # noqa: PLC0415
        from ..models.model_card_metrics_type_0 import ModelCardMetricsType0  # noqa: PLC0415
        from ..models.model_card_outputs_type_0 import ModelCardOutputsType0  # noqa: PLC0415
        from ..models.uncertainty_rule import UncertaintyRule  # noqa: PLC0415

        d = dict(src_dict)
        classes = cast(list[str], d.pop("classes"))

        name = d.pop("name")

        version = d.pop("version")

        def _parse_created_at(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        created_at = _parse_created_at(d.pop("created_at", UNSET))

        def _parse_input_(data: object) -> ModelCardInputType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                input_type_0 = ModelCardInputType0.from_dict(data)

                return input_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ModelCardInputType0 | None | Unset, data)

        input_ = _parse_input_(d.pop("input", UNSET))

        def _parse_intended_use(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        intended_use = _parse_intended_use(d.pop("intended_use", UNSET))

        def _parse_limitations(data: object) -> list[str] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                limitations_type_0 = cast(list[str], data)

                return limitations_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None | Unset, data)

        limitations = _parse_limitations(d.pop("limitations", UNSET))

        def _parse_metrics(data: object) -> ModelCardMetricsType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                metrics_type_0 = ModelCardMetricsType0.from_dict(data)

                return metrics_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ModelCardMetricsType0 | None | Unset, data)

        metrics = _parse_metrics(d.pop("metrics", UNSET))

        def _parse_not_a_diagnosis(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        not_a_diagnosis = _parse_not_a_diagnosis(d.pop("not_a_diagnosis", UNSET))

        def _parse_outputs(data: object) -> ModelCardOutputsType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                outputs_type_0 = ModelCardOutputsType0.from_dict(data)

                return outputs_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ModelCardOutputsType0 | None | Unset, data)

        outputs = _parse_outputs(d.pop("outputs", UNSET))

        def _parse_sha256(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        sha256 = _parse_sha256(d.pop("sha256", UNSET))

        def _parse_uncertainty(data: object) -> None | UncertaintyRule | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                uncertainty_type_0 = UncertaintyRule.from_dict(data)

                return uncertainty_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | UncertaintyRule | Unset, data)

        uncertainty = _parse_uncertainty(d.pop("uncertainty", UNSET))

        model_card = cls(
            classes=classes,
            name=name,
            version=version,
            created_at=created_at,
            input_=input_,
            intended_use=intended_use,
            limitations=limitations,
            metrics=metrics,
            not_a_diagnosis=not_a_diagnosis,
            outputs=outputs,
            sha256=sha256,
            uncertainty=uncertainty,
        )

        model_card.additional_properties = d
        return model_card

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
