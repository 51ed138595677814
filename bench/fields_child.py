"""Whole-field timings, run in the serving venv (.venv) in a process of their own, 1 onnxruntime thread.

    python -m bench.fields_child --model-dir DIR --field FIELD.jpg [--repeats N] --result OUT

For the field as it is (a 640x480 microscope camera frame) and for a 12 MP (4000x3000) JPEG made from it: the
warm median of decoding, localisation (logic/localiser.py on the image as /v1/analyze decodes it), cropping +
inference of the cells it found (one session.run), and the whole POST /v1/analyze through the real Lambda entry
point (a REST proxy event, as API Gateway sends it).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HEMATOVISION_INTRA_OP_THREADS", "1")  # before the handler module loads its model

from PIL import Image  # noqa: E402

from bench.common import LambdaContext, peak_rss_mib, write_result  # noqa: E402
from bench.serving_child import api_event  # noqa: E402

TWELVE_MP = (4000, 3000)


def twelve_megapixel_jpeg(field: bytes) -> bytes:
    """The field enlarged to 4000x3000, as a phone camera's photo of the same smear would be (quality 90)."""
    with Image.open(io.BytesIO(field)) as image:
        large = image.convert("RGB").resize(TWELVE_MP, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    large.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def median_of(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def measure(analyzer, lambda_handler, data: bytes, repeats: int) -> dict:
    analyzer.analyze(data)  # warm-up: first-touch allocations, onnxruntime's first run
    phases: dict[str, list[float]] = {"decode_ms": [], "locate_ms": [], "inference_ms": [], "analyze_ms": []}
    cells = 0
    for _ in range(repeats):
        started = time.perf_counter()
        analysis = analyzer.analyze(data)
        phases["analyze_ms"].append((time.perf_counter() - started) * 1000)
        phases["decode_ms"].append(analysis.decode_ms)
        phases["locate_ms"].append(analysis.locate_ms)
        phases["inference_ms"].append(analysis.inference_ms or 0.0)
        cells = len(analysis.cells)
    handler_ms = []
    context = LambdaContext()
    for index in range(repeats):
        event = api_event("/v1/analyze", "image/jpeg", data, True, f"bench-fields-{index}")
        started = time.perf_counter()
        response = lambda_handler(event, context)
        json.dumps(response)  # the runtime serialises the answer
        handler_ms.append((time.perf_counter() - started) * 1000)
        if response["statusCode"] != 200:
            raise RuntimeError(f"/v1/analyze answered {response['statusCode']}: {response['body'][:300]}")
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
    result = {name: median_of(values) for name, values in phases.items()}
    per_cell = result["inference_ms"] / cells if cells else None
    return {
        "size": f"{width}x{height}",
        "bytes": len(data),
        "cells": cells,
        **result,
        "inference_per_cell_ms": None if per_cell is None else round(per_cell, 2),
        "handler_ms": median_of(handler_ms),
        "repeats": repeats,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--field", required=True)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--result")
    args = parser.parse_args(argv)
    os.environ["HEMATOVISION_MODEL_DIR"] = args.model_dir
    from hematovision.handlers import api
    from hematovision.logic.analysis import Analyzer

    analyzer = Analyzer(api.CLASSIFIER)
    field = Path(args.field).read_bytes()
    result = {
        "threads": api.MODEL.threads,
        "field": measure(analyzer, api.lambda_handler, field, args.repeats),
        "twelve_mp": measure(analyzer, api.lambda_handler, twelve_megapixel_jpeg(field), args.repeats),
        "peak_rss_mib": peak_rss_mib(),
    }
    write_result(args.result, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
