"""Contains all the data models used in inputs/outputs"""

from .analyze_response import AnalyzeResponse
from .analyze_response_counts import AnalyzeResponseCounts
from .analyze_v1_analyze_post_files_body import AnalyzeV1AnalyzePostFilesBody
from .analyzed_cell import AnalyzedCell
from .analyzed_cell_probabilities import AnalyzedCellProbabilities
from .annotated_image import AnnotatedImage
from .batch_item import BatchItem
from .batch_json_request import BatchJsonRequest
from .batch_response import BatchResponse
from .batch_result import BatchResult
from .classify_batch_v1_classify_batch_post_files_body import ClassifyBatchV1ClassifyBatchPostFilesBody
from .classify_json_request import ClassifyJsonRequest
from .classify_response import ClassifyResponse
from .classify_response_crop import ClassifyResponseCrop
from .classify_response_crop_ruler import ClassifyResponseCropRuler
from .classify_response_probabilities import ClassifyResponseProbabilities
from .classify_v1_classify_post_files_body import ClassifyV1ClassifyPostFilesBody
from .error_body import ErrorBody
from .error_code import ErrorCode
from .error_response import ErrorResponse
from .health_response import HealthResponse
from .heatmap import Heatmap
from .index_response import IndexResponse
from .index_response_endpoints import IndexResponseEndpoints
from .model_card import ModelCard
from .model_card_input_type_0 import ModelCardInputType0
from .model_card_metrics_type_0 import ModelCardMetricsType0
from .model_card_metrics_type_0_additional_property import ModelCardMetricsType0AdditionalProperty
from .model_card_outputs_type_0 import ModelCardOutputsType0
from .model_ref import ModelRef
from .prediction import Prediction
from .prediction_crop import PredictionCrop
from .prediction_crop_ruler import PredictionCropRuler
from .prediction_probabilities import PredictionProbabilities
from .timings import Timings
from .uncertainty_rule import UncertaintyRule

__all__ = (
    "AnalyzedCell",
    "AnalyzedCellProbabilities",
    "AnalyzeResponse",
    "AnalyzeResponseCounts",
    "AnalyzeV1AnalyzePostFilesBody",
    "AnnotatedImage",
    "BatchItem",
    "BatchJsonRequest",
    "BatchResponse",
    "BatchResult",
    "ClassifyBatchV1ClassifyBatchPostFilesBody",
    "ClassifyJsonRequest",
    "ClassifyResponse",
    "ClassifyResponseCrop",
    "ClassifyResponseCropRuler",
    "ClassifyResponseProbabilities",
    "ClassifyV1ClassifyPostFilesBody",
    "ErrorBody",
    "ErrorCode",
    "ErrorResponse",
    "HealthResponse",
    "Heatmap",
    "IndexResponse",
    "IndexResponseEndpoints",
    "ModelCard",
    "ModelCardInputType0",
    "ModelCardMetricsType0",
    "ModelCardMetricsType0AdditionalProperty",
    "ModelCardOutputsType0",
    "ModelRef",
    "Prediction",
    "PredictionCrop",
    "PredictionCropRuler",
    "PredictionProbabilities",
    "Timings",
    "UncertaintyRule",
)
