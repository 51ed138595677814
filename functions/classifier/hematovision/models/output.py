"""Response bodies. These models generate the OpenAPI spec's schemas."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hematovision.limits import MAX_ANALYZE_CELLS


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable error code: one of hematovision.errors.ErrorCode.")
    message: str = Field(description="Human-readable explanation.")


class ErrorResponse(BaseModel):
    error: ErrorBody
    request_id: str | None = None


class ModelRef(BaseModel):
    name: str
    version: str


class Timings(BaseModel):
    decode_ms: float = Field(description="Decoding and preprocessing of the image(s).")
    inference_ms: float = Field(description="onnxruntime inference (one batched call).")
    total_ms: float = Field(description="Whole request inside the function, body parsing included.")
    locate_ms: float | None = Field(default=None, description="Finding the white cells (logic/localiser.py).")


class Heatmap(BaseModel):
    label: str = Field(description="The class whose activation map is drawn (the predicted one).")
    media_type: Literal["image/png"] = "image/png"
    width: int
    height: int
    data: str = Field(description="Base64 PNG: the resized input with the class activation map overlaid.")


class Prediction(BaseModel):
    label: str = Field(description="Most probable cell type.")
    confidence: float = Field(description="Probability of `label`.")
    probabilities: dict[str, float] = Field(description="Probability of each of the four classes.")
    uncertain: bool = Field(
        description="True when confidence or similarity to the training data is below the card's thresholds."
    )
    uncertain_reasons: list[str] = Field(
        default_factory=list,
        description=(
            "low_confidence, out_of_distribution; on /v1/classify also multiple_cells (more than one white cell in "
            "the photo: send it to /v1/analyze) or no_cell (no white cell found)."
        ),
    )
    ood_similarity: float | None = Field(
        default=None, description="Cosine similarity to the nearest class centroid of the training data."
    )
    description: str = Field(description="One sentence about the predicted cell type.")
    filename: str | None = None
    width: int | None = Field(default=None, description="Width of the decoded (upright) image.")
    height: int | None = Field(default=None, description="Height of the decoded (upright) image.")
    heatmap: Heatmap | None = None
    crop: Literal["cell", "frame"] = Field(
        description=(
            "What the model classified: cell, a square of fixed physical size centred on the white cell the localiser "
            "scored highest (models whose card says so, from 2.0); frame, the whole photo resized (model 1.2.0, or "
            "no white cell found)."
        )
    )
    crop_ruler: Literal["red_cells", "box", "none"] = Field(
        description=(
            "How the crop's size was measured: red_cells (the photo's scale from its red cells, ~7.5 um across), box "
            "(no red-cell ruler: a multiple of the cell's own box), none (crop is frame)."
        )
    )


class ClassifyResponse(Prediction):
    model: ModelRef
    timings: Timings
    disclaimer: str
    request_id: str | None = None


class AnalyzedCell(BaseModel):
    box: list[int] = Field(
        min_length=4, max_length=4, description="[xmin, ymin, xmax, ymax] in the pixels of the upright original photo."
    )
    label: str = Field(description="Most probable cell type.")
    confidence: float = Field(description="Probability of `label`.")
    probabilities: dict[str, float] = Field(description="Probability of each of the four classes.")
    uncertain: bool = Field(description="True when confidence or similarity is below the card's thresholds.")
    uncertain_reasons: list[str] = Field(default_factory=list, description="low_confidence and/or out_of_distribution.")


class AnnotatedImage(BaseModel):
    media_type: Literal["image/png"] = "image/png"
    width: int
    height: int
    data: str = Field(description="Base64 PNG: the photo (<= 1024 px on its long side, <= 1 MB) with labelled boxes.")


class AnalyzeResponse(BaseModel):
    cells: list[AnalyzedCell] = Field(
        description=f"Each white cell found, top to bottom then left to right; at most {MAX_ANALYZE_CELLS}."
    )
    cell_count: int = Field(description="White cells found (the listed ones and any beyond the cap).")
    counts: dict[str, int] = Field(description="The differential: cells per class, over every cell found.")
    uncertain_count: int = Field(description="Cells found whose answer is uncertain.")
    truncated: bool = Field(description=f"True when more than {MAX_ANALYZE_CELLS} cells were found: `cells` is cut.")
    note: str | None = Field(default=None, description="Set when no white cell was found (an empty `cells`).")
    filename: str | None = None
    width: int = Field(description="Width of the decoded (upright) photo.")
    height: int = Field(description="Height of the decoded (upright) photo.")
    px_per_um: float | None = Field(
        default=None, description="Scale estimate: pixels per micrometre of the upright photo (red cells ~7.5 um)."
    )
    ruler: str = Field(
        description="What the scale comes from: red_cells (measured), default (no usable red cells: a guess from the "
        "largest nucleus or the photo's size), none."
    )
    annotated: AnnotatedImage | None = Field(default=None, description="With annotate=true: the labelled photo.")
    model: ModelRef
    timings: Timings
    disclaimer: str
    request_id: str | None = None


class BatchResult(BaseModel):
    index: int
    ok: bool
    result: Prediction | None = None
    error: ErrorBody | None = None
    status: int = Field(description="The HTTP status this item would have had on its own (200 or 4xx).")


class BatchResponse(BaseModel):
    count: int
    succeeded: int
    failed: int
    results: list[BatchResult]
    model: ModelRef
    timings: Timings
    disclaimer: str
    request_id: str | None = None


class UncertaintyRule(BaseModel):
    model_config = ConfigDict(extra="allow")

    confidence_threshold: float = Field(description="Answers whose top probability is below it are uncertain.")
    ood_similarity_threshold: float | None = Field(
        default=None, description="Answers whose ood_similarity is below it are uncertain (out_of_distribution)."
    )
    rule: str | None = Field(default=None, description="The rule in words.")


class ModelCard(BaseModel):
    """GET /v1/model: model_card.json as shipped. The fields a client relies on are typed; the card's other
    sections (training, data, robustness, parity, tools, ...) pass through as they are."""

    model_config = ConfigDict(extra="allow")

    name: str
    version: str = Field(description="Semantic version; every answer's model.version is this.")
    classes: list[str] = Field(description="Class names, in the order of the model's outputs.")
    sha256: str | None = Field(default=None, description="sha256 of the ONNX file.")
    input: dict[str, Any] | None = Field(default=None, description="Input tensor, preprocessing and crop contract.")
    outputs: dict[str, Any] | None = None
    uncertainty: UncertaintyRule | None = None
    metrics: dict[str, dict[str, Any]] | None = Field(
        default=None, description="Per evaluation set: accuracy, macro_f1, per-class figures, confusion matrix, n."
    )
    intended_use: str | None = None
    not_a_diagnosis: bool | None = None
    limitations: list[str] | None = None
    created_at: str | None = None


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"
    model: ModelRef
    classes: list[str]


class IndexResponse(BaseModel):
    name: str
    description: str
    disclaimer: str
    model: ModelRef
    endpoints: dict[str, str]
