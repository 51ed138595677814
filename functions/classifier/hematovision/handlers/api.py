"""Lambda entry point behind API Gateway (REST API, proxy integration): the routes.

Thin routes: body parsing lives in handlers/utils/parsing.py, decoding and inference in hematovision.logic, the
OpenAPI document in handlers/utils/openapi.py and the exception -> error response mapping in
handlers/utils/errors.py. The model is loaded once per execution environment at import (init phase,
snapshotted by SnapStart). Errors are JSON {"error": {"code", "message"}, "request_id"} with a 4xx status; an
unexpected exception becomes a 500 with the same shape (never a stack trace, never a 502).
"""

# No `from __future__ import annotations`: Powertools validation reads the route signatures at runtime.
import json
import time
from typing import Annotated

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from hematovision import config, web
from hematovision.errors import ClientError
from hematovision.handlers.utils.errors import register_error_handlers, request_id, unresolvable_event_response
from hematovision.handlers.utils.observability import logger, metrics
from hematovision.handlers.utils.openapi import (
    BATCH_ROUTE,
    EVERY_ROUTE,
    KEY_SECURITY,
    UPLOAD_ROUTE,
    error_responses,
    local_server_url,
    openapi_document,
)
from hematovision.handlers.utils.parsing import body_bytes, parse_batch, parse_single
from hematovision.limits import MAX_ANALYZE_CELLS, MAX_BATCH_BYTES, MAX_BATCH_ITEMS
from hematovision.logic.analysis import Analysis, Analyzer
from hematovision.logic.classifier import Classifier, ItemOutcome, Outcome
from hematovision.logic.inference import Model
from hematovision.logic.localiser import candidate_network
from hematovision.logic.verdict import Verdict
from hematovision.models.output import (
    AnalyzedCell,
    AnalyzeResponse,
    AnnotatedImage,
    BatchResponse,
    BatchResult,
    ClassifyResponse,
    ErrorBody,
    HealthResponse,
    IndexResponse,
    ModelCard,
    ModelRef,
    Prediction,
    Timings,
)

# ---------------------------------------------------------------- init (once per environment)
MODEL = Model(config.model_dir())
CLASSIFIER = Classifier(MODEL)
ANALYZER = Analyzer(CLASSIFIER)
candidate_network()  # the localiser's candidate network: loaded (and its sha256 checked) in the init phase too
web.page()  # the upload page served at GET /, read once in the init phase
logger.info(
    "model loaded",
    extra={"model": MODEL.summary, "intra_op_threads": MODEL.threads, "thresholds": MODEL.thresholds.__dict__},
)

app = APIGatewayRestResolver(
    enable_validation=True,
    cors=CORSConfig(allow_origin=config.cors_allow_origin(), allow_headers=["x-api-key"], max_age=600),
)
register_error_handlers(app)


def model_ref() -> ModelRef:
    return ModelRef(name=MODEL.name, version=MODEL.version)


def explain_flag(value: bool) -> bool:
    if value and not MODEL.has_cam:
        raise ClientError("explain_unavailable", "This model has no class activation map output.", 400)
    return value


def raw_body() -> bytes:
    """The body as bytes. Not `decoded_body`: Powertools decodes it as text, breaking binaries."""
    event = app.current_event
    return body_bytes(event.get("body"), bool(event.get("isBase64Encoded")))


def verdict_fields(v: Verdict) -> dict:
    """What every answer says of one cell: label, confidence, probabilities and the uncertainty verdict."""
    return {
        "label": v.label,
        "confidence": v.confidence,
        "probabilities": v.probabilities,
        "uncertain": v.uncertain,
        "uncertain_reasons": v.uncertain_reasons,
    }


def to_prediction(item: ItemOutcome) -> Prediction:
    v = item.verdict
    return Prediction(
        **verdict_fields(v),
        ood_similarity=v.ood_similarity,
        description=v.description,
        filename=item.filename,
        width=item.width,
        height=item.height,
        heatmap=item.heatmap,
        crop=item.crop,
        crop_ruler=item.crop_ruler,
    )


def record(
    started: float, decode_ms: float, inference_ms: float | None, locate_ms: float | None, counts: dict, uncertain: int
) -> Timings:
    """The answer's timings, and the request's EMF metrics (latencies, predictions per class, uncertain ones)."""
    timings = Timings(
        decode_ms=decode_ms,
        inference_ms=inference_ms,
        total_ms=round((time.perf_counter() - started) * 1000, 3),
        locate_ms=locate_ms,
    )
    metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=timings.total_ms)
    if locate_ms is not None:
        metrics.add_metric(name="LocateLatency", unit=MetricUnit.Milliseconds, value=locate_ms)
    metrics.add_metric(name="InferenceLatency", unit=MetricUnit.Milliseconds, value=timings.inference_ms)
    for label, count in counts.items():
        if count:
            metrics.add_metric(name=f"Predictions{label.title()}", unit=MetricUnit.Count, value=count)
    if uncertain:
        metrics.add_metric(name="UncertainPredictions", unit=MetricUnit.Count, value=uncertain)
    return timings


def record_outcome(outcome: Outcome, started: float) -> Timings:
    uncertain = sum(1 for i in outcome.items if i.verdict is not None and i.verdict.uncertain)
    return record(started, outcome.decode_ms, outcome.inference_ms, outcome.locate_ms, outcome.counts, uncertain)


def single_upload():
    """The one photo of a classify or analyze request, in any of the three upload forms."""
    return parse_single(app.current_event.headers, raw_body(), bool(app.current_event.get("isBase64Encoded")))


def answer_fields(timings: Timings) -> dict:
    """What every answer about photos ends with: the model, the timings, the disclaimer and the request id."""
    return {"model": model_ref(), "timings": timings, "disclaimer": config.DISCLAIMER, "request_id": request_id(app)}


def keyed(tag: str, answer: str, model, errors: tuple[int, ...] = UPLOAD_ROUTE) -> dict:
    """The OpenAPI options of a route that needs the API key: its tag, the key, its 200 answer and its errors."""
    return {
        "tags": [tag],
        "security": KEY_SECURITY,
        "responses": {
            200: {"description": answer, "content": {"application/json": {"model": model}}},
            **error_responses(errors),
        },
    }


def public(answer: str, content: dict) -> dict:
    """The responses of a route without the API key: its 200 answer and the errors any route can get."""
    return {200: {"description": answer, "content": content}, **error_responses(EVERY_ROUTE, keyed=False)}


# ---------------------------------------------------------------- route documentation (OpenAPI)
CLASSIFY_DOCS = {
    "summary": "Classify one white-blood-cell photo",
    "description": (
        "The photo: ONE white cell, roughly centred, in a stained blood-smear frame like the bccd set's (a 320x240 "
        "microscope frame, the cell about a third of its width). The model classifies the whole frame (model "
        "1.2.0) or, when its card says so, a crop of fixed physical size centred on the white cell the localiser "
        "scores highest (`crop` says which); when the localiser finds more than one white cell the answer is "
        "flagged uncertain (multiple_cells: send the photo to /v1/analyze), and when it finds none, no_cell. "
        "Send the image as the raw body (Content-Type image/jpeg, image/png, image/webp, image/bmp, image/tiff, "
        'image/gif), as JSON {"image": "<base64>"}, or as multipart/form-data field `image`.'
    ),
}
BATCH_DOCS = {
    "summary": "Classify several photos, each answered on its own",
    "description": (
        f'JSON {{"images": ["<base64>", ...]}} or multipart/form-data with several `image` fields; at most '
        f"{MAX_BATCH_ITEMS} images and {MAX_BATCH_BYTES} bytes. A bad image yields an error entry "
        "for that item, not a failed batch."
    ),
}
ANALYZE_DOCS = {
    "summary": "Find every white cell in a whole-field photo, classify each, count them",
    "description": (
        "The photo: a whole field of a stained blood smear as it is (a microscope camera frame, or a phone held to "
        "the eyepiece, black circle included), with zero, one or several white cells, at 40x-100x. Returns each "
        "white cell's box [xmin, ymin, xmax, ymax] in the upright photo's pixels with its label, probabilities and "
        f"uncertain flag (at most {MAX_ANALYZE_CELLS} listed; `truncated` says when more were found), the "
        "differential `counts` over every cell found, and the scale estimate (px_per_um). No white cell: 200 with "
        "an empty list and a note. annotate=true adds the photo with labelled boxes (PNG, <= 1024 px, <= 1 MB). "
        "Same upload forms and errors as /v1/classify; one call is one metered request."
    ),
}
ExplainFlag = Annotated[bool, Query(description="Add a class activation heatmap (base64 PNG).")]
BatchExplainFlag = Annotated[bool, Query(description="Add class activation heatmaps.")]
AnnotateFlag = Annotated[bool, Query(description="Add the photo with labelled boxes (base64 PNG).")]


# ---------------------------------------------------------------- routes
@app.post("/v1/classify", **CLASSIFY_DOCS, **keyed("classify", "The prediction", ClassifyResponse))
def classify(explain: ExplainFlag = False) -> ClassifyResponse:
    started = time.perf_counter()
    explain = explain_flag(explain)
    upload = single_upload()
    outcome = CLASSIFIER.classify([upload], explain=explain)
    item = outcome.items[0]
    if item.error is not None:
        raise item.error
    timings = record_outcome(outcome, started)
    prediction = to_prediction(item)
    logger.info(
        "classified",
        extra={
            "label": prediction.label,
            "confidence": prediction.confidence,
            "uncertain": prediction.uncertain,
            "width": item.width,
            "height": item.height,
            "timings": timings.model_dump(),
        },
    )
    return ClassifyResponse(
        **prediction.model_dump(),
        **answer_fields(timings),
    )


@app.post("/v1/classify/batch", **BATCH_DOCS, **keyed("classify", "Per-item results", BatchResponse, BATCH_ROUTE))
def classify_batch(explain: BatchExplainFlag = False) -> BatchResponse:
    started = time.perf_counter()
    explain = explain_flag(explain)
    uploads = parse_batch(app.current_event.headers, raw_body())
    outcome = CLASSIFIER.classify(uploads, explain=explain)
    timings = record_outcome(outcome, started)
    results = [
        BatchResult(index=i.index, ok=True, result=to_prediction(i), status=200)
        if i.ok
        else BatchResult(
            index=i.index, ok=False, error=ErrorBody(code=i.error.code, message=i.error.message), status=i.error.status
        )
        for i in outcome.items
    ]
    succeeded = sum(1 for r in results if r.ok)
    logger.info(
        "classified batch",
        extra={
            "count": len(results),
            "succeeded": succeeded,
            "labels": outcome.counts,
            "timings": timings.model_dump(),
        },
    )
    return BatchResponse(
        count=len(results),
        succeeded=succeeded,
        failed=len(results) - succeeded,
        results=results,
        **answer_fields(timings),
    )


def to_cell(cell) -> AnalyzedCell:
    return AnalyzedCell(box=list(cell.box), **verdict_fields(cell.verdict))


def record_analysis(analysis: Analysis, started: float) -> Timings:
    metrics.add_metric(name="AnalyzedCells", unit=MetricUnit.Count, value=len(analysis.cells))
    return record(
        started,
        analysis.decode_ms,
        analysis.inference_ms,
        analysis.locate_ms,
        analysis.counts,
        analysis.uncertain_count,
    )


@app.post("/v1/analyze", **ANALYZE_DOCS, **keyed("analyze", "The cells and the differential", AnalyzeResponse))
def analyze(annotate: AnnotateFlag = False) -> AnalyzeResponse:
    started = time.perf_counter()
    upload = single_upload()
    analysis = ANALYZER.analyze(upload)
    annotated = None
    if annotate:
        # imported on first use: PIL's ImageDraw/ImageFont are for this option only, not for a cold classify
        from hematovision.logic.annotate import annotated_png

        annotated = AnnotatedImage(**annotated_png(analysis))
    timings = record_analysis(analysis, started)
    logger.info(
        "analyzed",
        extra={
            "cells": len(analysis.cells),
            "counts": analysis.counts,
            "uncertain": analysis.uncertain_count,
            "px_per_um": analysis.px_per_um,
            "ruler": analysis.ruler,
            "width": analysis.width,
            "height": analysis.height,
            "timings": timings.model_dump(),
        },
    )
    return AnalyzeResponse(
        cells=[to_cell(cell) for cell in analysis.listed],
        cell_count=len(analysis.cells),
        counts=analysis.counts,
        uncertain_count=analysis.uncertain_count,
        truncated=analysis.truncated,
        note=analysis.note,
        filename=analysis.filename,
        width=analysis.width,
        height=analysis.height,
        px_per_um=analysis.px_per_um,
        ruler=analysis.ruler,
        annotated=annotated,
        **answer_fields(timings),
    )


@app.get(
    "/v1/model",
    summary="The model card",
    **keyed("model", "model_card.json as shipped with the function", ModelCard, EVERY_ROUTE),
)
def model_card():
    return Response(status_code=200, content_type="application/json", body=json.dumps(MODEL.card))


@app.get(
    "/health",
    summary="Liveness (no API key)",
    tags=["ops"],
    responses=public("Alive, with the model loaded", {"application/json": {"model": HealthResponse}}),
)
def health() -> HealthResponse:
    return HealthResponse(model=model_ref(), classes=MODEL.classes)


@app.get(
    "/",
    summary="The upload page for browsers (Accept: text/html), else what this API is (no API key)",
    tags=["ops"],
    responses=public(
        "text/html upload page, or this JSON",
        {"text/html": {"schema": {"type": "string"}}, "application/json": {"model": IndexResponse}},
    ),
)
def index():  # Response (text/html) or IndexResponse
    if "text/html" in (app.current_event.headers.get("accept") or ""):
        html, headers = web.page()
        return Response(status_code=200, content_type="text/html; charset=utf-8", body=html, headers=headers)
    return IndexResponse(
        name="HematoVision",
        description=(
            "Classifies white-blood-cell microscope photos: EOSINOPHIL, LYMPHOCYTE, MONOCYTE, NEUTROPHIL. "
            "/v1/classify takes a photo of one white cell; /v1/analyze a whole field with any number of them."
        ),
        disclaimer=config.DISCLAIMER,
        model=model_ref(),
        endpoints={
            "classify": "POST /v1/classify",
            "batch": "POST /v1/classify/batch",
            "analyze": "POST /v1/analyze",
            "model": "GET /v1/model",
            "health": "GET /health",
            "openapi": "GET /openapi.json",
        },
    )


@app.get("/openapi.json", summary="This API's OpenAPI 3 document (no API key)", tags=["ops"], include_in_schema=False)
def openapi():
    document = openapi_document(app, local_server_url(app.current_event.headers))
    return Response(status_code=200, content_type="application/json", body=document)


# ---------------------------------------------------------------- entry point
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    try:
        return app.resolve(event, context)
    except Exception:  # not an API Gateway event, or a failure before routing
        logger.exception("could not resolve the event")
        return unresolvable_event_response()
