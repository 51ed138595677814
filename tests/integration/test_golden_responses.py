"""Golden responses: the committed model through the real Lambda handler, compared with recorded answers.

Every route and every row of the error table, in each upload form, with a real bccd TEST_SIMPLE photo. A
refactor that changes any status, header, error code, message, probability or heatmap fails here.

Volatile fields are masked (request ids, timings); floats compare within FLOAT_TOLERANCE (BLAS noise across
machines can move the 6th decimal), heatmap PNGs by their decoded pixels.

The goldens live in tests/integration/golden/<case>.json. Recording them is deliberate, never automatic:

    HEMATOVISION_RECORD_GOLDEN=1 .venv/bin/python -m pytest tests/integration/test_golden_responses.py

rewrites every file (the test then skips, saying so); review the diff before committing it. Recording is refused
with CI=true. Skipped locally while the committed model or ../shared/data is absent; with CI=true that fails.
"""

import base64
import hashlib
import importlib
import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from hematovision.local.events import build_event
from hematovision.local.template import load_api_config
from tests import fakes
from tests.integration.serve_helpers import IN_CI, REAL_MODEL_DIR, ROOT, SHARED_DATA, require

GOLDEN_DIR = ROOT / "tests" / "integration" / "golden"
RECORD_ENV = "HEMATOVISION_RECORD_GOLDEN"
RECORDING = os.environ.get(RECORD_ENV, "").strip() not in ("", "0")
TEST_SIMPLE = SHARED_DATA / "bccd" / "TEST_SIMPLE"
FIELDS = SHARED_DATA / "fields" / "bccd" / "images"
TWO_CELL_FIELD = "BloodImage_00010.jpg"  # two white cells in fields/bccd/boxes.csv (also events/field.jpg)
CLASSES = ("EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL")
FLOAT_TOLERANCE = 2e-6
# Per-channel difference allowed between a recorded and a current heatmap pixel (palette quantisation of a
# map that moved by BLAS noise may pick a neighbouring colour).
HEATMAP_PIXEL_TOLERANCE = 8
MASK = "<masked>"
VOLATILE_KEYS = frozenset({"request_id", "timings"})
NOW = 1767225600.0  # 2026-01-01T00:00:00Z: events are built deterministically
KEY = "golden-api-key"


# ---------------------------------------------------------------- inputs
def photo(label: str) -> tuple[str, bytes]:
    """The first TEST_SIMPLE photo of a class (sorted by name), as (name, bytes)."""
    path = sorted(p for p in (TEST_SIMPLE / label).iterdir() if p.is_file())[0]
    return path.name, path.read_bytes()


def png_of(jpeg: bytes) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(jpeg)).convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def tiny_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (120, 60, 150)).save(buffer, format="PNG")
    return buffer.getvalue()


def bomb_png() -> bytes:
    """A valid PNG header declaring 20000x20000 pixels (400 MP) with almost no data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def blank_field_png() -> bytes:
    """A 640x480 smear background with no cell at all."""
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (236, 205, 210)).save(buffer, format="PNG")
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def cases() -> dict[str, dict]:
    """name -> {method, path, headers, body, query, raw_event (optional)}."""
    images = {label: photo(label) for label in CLASSES}
    name, jpeg = images["NEUTROPHIL"]
    json_type = [("Content-Type", "application/json")]
    jpeg_type = [("Content-Type", "image/jpeg")]

    def post(path, headers, body, query=()):
        return {"method": "POST", "path": path, "headers": headers, "body": body, "query": query}

    def get(path, headers=()):
        return {"method": "GET", "path": path, "headers": list(headers), "body": None, "query": ()}

    def multipart(fields):
        content_type, body = fakes.encode_multipart(fields)
        return [("Content-Type", content_type)], body

    found: dict[str, dict] = {}
    for label, (_, data) in images.items():
        found[f"classify-raw-jpeg-{label.lower()}"] = post("/v1/classify", jpeg_type, data)
    found["classify-raw-png"] = post("/v1/classify", [("Content-Type", "image/png")], png_of(jpeg))
    found["classify-json"] = post(
        "/v1/classify", json_type, json.dumps({"image": b64(jpeg), "filename": name}).encode()
    )
    found["classify-json-data-url"] = post(
        "/v1/classify", json_type, json.dumps({"image": "data:image/jpeg;base64," + b64(jpeg)}).encode()
    )
    found["classify-multipart"] = post("/v1/classify", *multipart([("image", name, "image/jpeg", jpeg)]))
    found["classify-explain"] = post("/v1/classify", jpeg_type, jpeg, query=[("explain", "true")])
    found["classify-cors"] = post("/v1/classify", [*jpeg_type, ("Origin", "https://lab.example")], jpeg)
    found["preflight-options"] = {
        **get("/v1/classify", [("Origin", "https://lab.example"), ("Access-Control-Request-Method", "POST")]),
        "method": "OPTIONS",
    }
    found["classify-explain-invalid-value"] = post("/v1/classify", jpeg_type, jpeg, query=[("explain", "perhaps")])

    batch_items = [{"image": b64(data), "filename": file} for file, data in images.values()]
    found["batch-json"] = post(
        "/v1/classify/batch",
        json_type,
        json.dumps(
            {"images": [batch_items[0], b64(images["LYMPHOCYTE"][1]), *batch_items[2:], "not base64!"]}
        ).encode(),
    )
    found["batch-json-explain"] = post(
        "/v1/classify/batch", json_type, json.dumps({"images": batch_items[:2]}).encode(), query=[("explain", "true")]
    )
    found["batch-json-bad-items"] = post(
        "/v1/classify/batch",
        json_type,
        json.dumps(
            {
                "images": [
                    {"image": "", "filename": "empty.jpg"},
                    b64(b"not an image at all"),
                    b64(jpeg[: len(jpeg) // 3]),
                    b64(tiny_png()),
                    b64(bomb_png()),
                    b64(jpeg),
                ]
            }
        ).encode(),
    )
    found["batch-multipart"] = post(
        "/v1/classify/batch",
        *multipart(
            [
                ("image", images["EOSINOPHIL"][0], "image/jpeg", images["EOSINOPHIL"][1]),
                ("image", "notes.txt", "text/plain", b"this is not an image"),
                ("image", images["MONOCYTE"][0], "image/jpeg", images["MONOCYTE"][1]),
                ("comment", None, "text/plain", b"ignored field"),
            ]
        ),
    )

    # The error table (403 is answered by API Gateway, not the function).
    too_large = b"\xff\xd8\xff" + b"\0" * (6 * 1024 * 1024 + 1)
    found["error-400-malformed-json"] = post("/v1/classify", json_type, b'{"image": ')
    found["error-400-missing-body"] = post("/v1/classify", jpeg_type, None)
    found["error-400-json-missing-image"] = post("/v1/classify", json_type, b'{"picture": "x"}')
    found["error-400-invalid-base64-json"] = post("/v1/classify", json_type, b'{"image": "not base64!"}')
    found["error-400-invalid-base64-body"] = {**post("/v1/classify", jpeg_type, jpeg), "raw_body": "%%%not base64"}
    found["error-400-multipart-no-image"] = post("/v1/classify", *multipart([("file", name, "image/jpeg", jpeg)]))
    found["error-400-multipart-two-images"] = post(
        "/v1/classify", *multipart([("image", "a.jpg", "image/jpeg", jpeg), ("image", "b.jpg", "image/jpeg", jpeg)])
    )
    found["error-400-multipart-truncated"] = post(
        "/v1/classify",
        multipart([("image", name, "image/jpeg", jpeg)])[0],
        multipart([("image", name, "image/jpeg", jpeg)])[1][:-40],
    )
    found["error-400-batch-empty"] = post("/v1/classify/batch", json_type, b'{"images": []}')
    found["error-413-body-too-large"] = post("/v1/classify", jpeg_type, too_large)
    found["error-413-too-many-pixels"] = post("/v1/classify", [("Content-Type", "image/png")], bomb_png())
    found["error-413-batch-too-many-images"] = post(
        "/v1/classify/batch", json_type, json.dumps({"images": [b64(tiny_png())] * 17}).encode()
    )
    found["error-415-text-plain"] = post("/v1/classify", [("Content-Type", "text/plain")], b"hello")
    found["error-415-not-an-image"] = post("/v1/classify", jpeg_type, b"GIF89 this is not an image" * 4)
    found["error-415-batch-raw-image"] = post("/v1/classify/batch", jpeg_type, jpeg)
    found["error-422-truncated-jpeg"] = post("/v1/classify", jpeg_type, jpeg[: len(jpeg) // 3])
    found["error-422-too-small"] = post("/v1/classify", [("Content-Type", "image/png")], tiny_png())
    found["error-404-unknown-route"] = post("/v1/unknown", jpeg_type, jpeg)
    found["error-404-wrong-method"] = {**post("/v1/classify", jpeg_type, jpeg), "method": "DELETE"}
    found["error-500-not-an-api-gateway-event"] = {"raw_event": {"unexpected": True}}

    # POST /v1/analyze: its error table is classify's (no localiser involved); a photo without a white cell. The
    # answers with cells are not recorded here: they move with every tuning of the localiser (tests/integration/
    # test_analyze_fields.py checks them against the annotated boxes instead).
    found["analyze-no-cell"] = post("/v1/analyze", [("Content-Type", "image/png")], blank_field_png())
    found["error-400-analyze-malformed-json"] = post("/v1/analyze", json_type, b'{"image": ')
    found["error-400-analyze-multipart-two-images"] = post(
        "/v1/analyze", *multipart([("image", "a.jpg", "image/jpeg", jpeg), ("image", "b.jpg", "image/jpeg", jpeg)])
    )
    found["error-413-analyze-too-many-pixels"] = post("/v1/analyze", [("Content-Type", "image/png")], bomb_png())
    found["error-415-analyze-text-plain"] = post("/v1/analyze", [("Content-Type", "text/plain")], b"hello")
    found["error-422-analyze-truncated-jpeg"] = post("/v1/analyze", jpeg_type, jpeg[: len(jpeg) // 3])
    # a whole field with two white cells sent to /v1/classify: flagged multiple_cells (issue #17)
    found["classify-field-multiple-cells"] = post("/v1/classify", jpeg_type, (FIELDS / TWO_CELL_FIELD).read_bytes())

    found["health"] = get("/health")
    found["model"] = get("/v1/model")
    found["openapi"] = get("/openapi.json")
    found["root-json"] = get("/")
    found["root-html"] = get("/", [("Accept", "text/html,application/xhtml+xml")])
    return found


def event_for(name: str, case: dict, api_config) -> dict:
    if "raw_event" in case:
        return case["raw_event"]
    headers = [("User-Agent", "golden-test"), *case["headers"], ("x-api-key", KEY)]
    content_type = next((v for k, v in headers if k.lower() == "content-type"), None)
    event = build_event(
        case["method"],
        case["path"],
        case["path"],
        headers=headers,
        query=case["query"],
        body=case["body"],
        binary=api_config.is_binary(content_type),
        stage=api_config.stage,
        api_key=KEY,
        request_id=f"golden-{name}",
        now=NOW,
    )
    if "raw_body" in case:
        event["body"], event["isBase64Encoded"] = case["raw_body"], True
    return event


# ---------------------------------------------------------------- normalisation
def heatmap_pixels(data: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"), dtype=np.int16)


def mask(value, key: str | None = None):
    if key in VOLATILE_KEYS and value is not None:
        return MASK
    if isinstance(value, dict):
        return {k: mask(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


def normalise(response: dict) -> dict:
    """The parts of a Lambda proxy response a client sees, volatile fields masked; HTML by its sha256."""
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    headers.update({k.lower(): ", ".join(v) for k, v in (response.get("multiValueHeaders") or {}).items()})
    content_type = headers.get("content-type", "")
    body = response.get("body") or ""
    if content_type.startswith("application/json"):
        shown = mask(json.loads(body))
    else:
        shown = {"sha256": hashlib.sha256(body.encode("utf-8")).hexdigest(), "length": len(body)}
    return {
        "statusCode": response["statusCode"],
        "headers": dict(sorted(headers.items())),
        "isBase64Encoded": response.get("isBase64Encoded", False),
        "body": shown,
    }


def assert_same(recorded, current, where: str = "$") -> None:
    """Equality, except floats (within FLOAT_TOLERANCE) and heatmap PNGs (by decoded pixels)."""
    if isinstance(recorded, dict) and isinstance(current, dict):
        assert sorted(recorded) == sorted(current), f"{where}: keys {sorted(recorded)} != {sorted(current)}"
        for key in recorded:
            if key == "data" and recorded.get("media_type") == "image/png":
                expected, actual = heatmap_pixels(recorded[key]), heatmap_pixels(current[key])
                assert expected.shape == actual.shape, f"{where}.data: heatmap size {actual.shape}"
                difference = int(np.abs(expected - actual).max())
                assert difference <= HEATMAP_PIXEL_TOLERANCE, f"{where}.data: heatmap pixels differ by {difference}"
            else:
                assert_same(recorded[key], current[key], f"{where}.{key}")
    elif isinstance(recorded, list) and isinstance(current, list):
        assert len(recorded) == len(current), f"{where}: {len(current)} items, recorded {len(recorded)}"
        for index, (a, b) in enumerate(zip(recorded, current, strict=True)):
            assert_same(a, b, f"{where}[{index}]")
    elif isinstance(recorded, float) or isinstance(current, float):
        assert not isinstance(recorded, bool) and not isinstance(current, bool), f"{where}: {current!r}"
        assert current == pytest.approx(recorded, abs=FLOAT_TOLERANCE), f"{where}: {current!r} != {recorded!r}"
    else:
        assert recorded == current, f"{where}: {current!r} != recorded {recorded!r}"


# ---------------------------------------------------------------- fixtures and test
CASES: dict[str, dict] = {}


@pytest.fixture(scope="module")
def real_api():
    """hematovision.handlers.api loaded with the committed model (as a Lambda init with the default settings);
    afterwards reloaded as it was, since other test modules hold the same module object."""
    require((REAL_MODEL_DIR / "hematovision.onnx").is_file(), "the committed model has not landed yet")
    require(TEST_SIMPLE.is_dir(), f"shared data not found at {TEST_SIMPLE}")
    require((FIELDS / TWO_CELL_FIELD).is_file(), f"shared fields not found at {FIELDS}")
    saved = {name: os.environ.pop(name, None) for name in ("HEMATOVISION_UNCERTAINTY_THRESHOLD",)}
    CASES.update(cases())
    loader = fakes.load_handler_module(REAL_MODEL_DIR)
    module = next(loader)
    yield module
    next(loader, None)
    for name, value in saved.items():
        if value is not None:
            os.environ[name] = value
    importlib.reload(module)


def golden_names() -> list[str]:
    """The recorded cases (the set is fixed by the files, so a case cannot silently disappear)."""
    return sorted(p.stem for p in GOLDEN_DIR.glob("*.json")) if GOLDEN_DIR.is_dir() else []


def test_every_case_has_a_golden(real_api):
    if RECORDING:
        pytest.skip("recording")
    assert sorted(CASES) == golden_names(), f"record the goldens with {RECORD_ENV}=1 (see the module docstring)"


def test_record(real_api, context):
    """With HEMATOVISION_RECORD_GOLDEN=1: (re)write every golden file, then skip. Otherwise a no-op."""
    if not RECORDING:
        return
    if IN_CI:
        pytest.fail(f"{RECORD_ENV} is set with CI=true: goldens are recorded on purpose, never in CI")
    api_config = load_api_config(ROOT / "template.yaml")
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    for old in GOLDEN_DIR.glob("*.json"):
        old.unlink()
    for name, case in CASES.items():
        response = normalise(real_api.lambda_handler(event_for(name, case, api_config), context))
        (GOLDEN_DIR / f"{name}.json").write_text(json.dumps(response, indent=1, sort_keys=True) + "\n")
    pytest.skip(f"recorded {len(CASES)} goldens in {GOLDEN_DIR.relative_to(ROOT)}: review the diff")


@pytest.mark.parametrize("name", golden_names())
def test_golden_response(real_api, context, name):
    if RECORDING:
        pytest.skip("recording")
    assert name in CASES, f"golden {name}.json has no case any more"
    api_config = load_api_config(ROOT / "template.yaml")
    current = normalise(real_api.lambda_handler(event_for(name, CASES[name], api_config), context))
    recorded = json.loads((GOLDEN_DIR / f"{name}.json").read_text())
    assert_same(recorded, current)
