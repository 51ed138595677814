"""Regenerates the API Gateway REST proxy events in this folder (deterministic; no dataset image).

    .venv/bin/python events/generate.py

The image is events/cell.jpg, a synthetic 320x240 smear-like JPEG drawn by tests/fakes.py. The analyze events carry
events/field.jpg, a real 640x480 whole field with two white cells: BCCD's BloodImage_00010.jpg (MIT licence,
github.com/Shenggan/BCCD_Dataset; ../shared/data/fields/bccd), copied here once so the events need no shared data.
Binary bodies are base64 with isBase64Encoded=true, exactly as API Gateway sends the binary media
types that template.yaml declares (image/*, multipart/form-data); JSON arrives as text.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

from fakes import encode_multipart, synthetic_cell  # noqa: E402

from hematovision.local.events import build_event  # noqa: E402
from hematovision.local.template import load_api_config  # noqa: E402

NOW = 1767225600.0  # fixed timestamp: 2026-01-01T00:00:00Z
KEY = "local-example-api-key"
UA = [("User-Agent", "curl/8.5.0"), ("Accept", "*/*")]


FIELD = HERE / "field.jpg"
FIELD_SOURCE = ROOT.parent / "shared" / "data" / "fields" / "bccd" / "images" / "BloodImage_00010.jpg"


def main() -> None:
    config = load_api_config(ROOT / "template.yaml")
    if not FIELD.is_file():
        FIELD.write_bytes(FIELD_SOURCE.read_bytes())
    field = FIELD.read_bytes()
    jpeg = synthetic_cell(seed=7)
    (HERE / "cell.jpg").write_bytes(jpeg)
    b64 = base64.b64encode(jpeg).decode("ascii")

    def event(name, method, path, headers=(), body=None, query=(), keyed=True):
        headers = list(UA) + list(headers) + ([("x-api-key", KEY)] if keyed else [])
        content_type = next((v for k, v in headers if k.lower() == "content-type"), None)
        built = build_event(
            method,
            path,
            path,
            headers=headers,
            query=query,
            body=body,
            binary=config.is_binary(content_type),
            stage=config.stage,
            api_key=KEY if keyed else None,
            host="abc123defg.execute-api.eu-west-1.amazonaws.com",
            source_ip="203.0.113.10",
            request_id=f"example-{name}",
            now=NOW,
            scheme="https",
        )
        built["requestContext"]["extendedRequestId"] = "ExAmPlEiD0000000"
        built["requestContext"]["resourceId"] = "res000"
        built["requestContext"]["identity"]["apiKeyId"] = "apikeyid01" if keyed else None
        for key in ("headers", "multiValueHeaders"):
            if built[key]:
                for header in list(built[key]):
                    if header == "X-Amzn-Trace-Id":
                        built[key][header] = (
                            "Root=1-6955f780-0123456789abcdef01234567"
                            if key == "headers"
                            else ["Root=1-6955f780-0123456789abcdef01234567"]
                        )
        (HERE / f"{name}.json").write_text(json.dumps(built, indent=2) + "\n", encoding="utf-8")

    def upload_events(prefix: str, path: str, image: bytes, filename: str, flag: str) -> None:
        """The three upload forms of one route (raw body, with its query flag too, JSON base64, multipart) and a
        body that is not an image."""
        jpeg_header = [("Content-Type", "image/jpeg")]
        event(f"{prefix}-raw-jpeg", "POST", path, jpeg_header, image)
        event(f"{prefix}-raw-jpeg-{flag}", "POST", path, jpeg_header, image, query=[(flag, "true")])
        body = json.dumps({"image": base64.b64encode(image).decode("ascii"), "filename": filename}).encode()
        event(f"{prefix}-json", "POST", path, [("Content-Type", "application/json")], body)
        content_type, multipart = encode_multipart([("image", filename, "image/jpeg", image)])
        event(f"{prefix}-multipart", "POST", path, [("Content-Type", content_type)], multipart)
        event(f"{prefix}-text-plain", "POST", path, [("Content-Type", "text/plain")], b"this is not an image\n")

    upload_events("classify", "/v1/classify", jpeg, "cell.jpg", "explain")
    upload_events("analyze", "/v1/analyze", field, "field.jpg", "annotate")
    event("classify-missing-body", "POST", "/v1/classify", [("Content-Type", "image/jpeg")], None)
    event("classify-truncated-jpeg", "POST", "/v1/classify", [("Content-Type", "image/jpeg")], jpeg[: len(jpeg) // 2])
    event("classify-malformed-json", "POST", "/v1/classify", [("Content-Type", "application/json")], b'{"image": ')
    batch = {
        "images": [
            b64,
            {"image": b64, "filename": "second.jpg"},
            "not base64!",
            base64.b64encode(b"GIF89a-broken").decode(),
        ]
    }
    event(
        "batch-json", "POST", "/v1/classify/batch", [("Content-Type", "application/json")], json.dumps(batch).encode()
    )
    content_type, multipart = encode_multipart(
        [("image", "a.jpg", "image/jpeg", jpeg), ("image", "b.jpg", "image/jpeg", jpeg)]
    )
    event("batch-multipart", "POST", "/v1/classify/batch", [("Content-Type", content_type)], multipart)
    event("model", "GET", "/v1/model")
    event("health", "GET", "/health", keyed=False)
    event("openapi", "GET", "/openapi.json", keyed=False)
    event("root", "GET", "/", keyed=False)


if __name__ == "__main__":
    main()
