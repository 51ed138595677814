"""Raw image uploads for the generated client (clients/python, package hematovision_client).

openapi-python-client generates the JSON (base64) and multipart forms of POST /v1/classify and /v1/analyze but skips
their raw image/* request bodies. These two functions send the photo's bytes as the body, through the same client
(base URL, x-api-key, timeouts) and parse the answer with the generated models, as the generated functions do.

    from hematovision_upload import analyze_raw, classify_raw, keyed_client

    client = keyed_client("https://{api-id}.execute-api.eu-west-1.amazonaws.com/dev", api_key)
    answer = classify_raw(client, Path("cell.jpg").read_bytes(), "image/jpeg").parsed
    # ClassifyResponse on 200, ErrorResponse (error.code, error.message, request_id) on an error status

keyed_client is the one setting the generated AuthenticatedClient needs for this API: the key goes in the x-api-key
header, as is (its default is `Authorization: Bearer <token>`, which API Gateway refuses with 403 invalid_api_key).
"""

from __future__ import annotations

from hematovision_client import AuthenticatedClient
from hematovision_client.api.analyze import analyze_v1_analyze_post
from hematovision_client.api.classify import classify_v1_classify_post
from hematovision_client.models import AnalyzeResponse, ClassifyResponse, ErrorResponse
from hematovision_client.types import Response

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/bmp", "image/tiff", "image/gif")


def keyed_client(base_url: str, api_key: str, **options) -> AuthenticatedClient:
    """The generated client, sending `api_key` as the x-api-key header. `base_url`: the stage URL, without /v1."""
    return AuthenticatedClient(base_url=base_url, token=api_key, prefix="", auth_header_name="x-api-key", **options)


def _post_raw(client: AuthenticatedClient, path: str, image: bytes, content_type: str, params: dict):
    if content_type not in IMAGE_TYPES:
        raise ValueError(f"content_type must be one of {', '.join(IMAGE_TYPES)}, not {content_type!r}")
    return client.get_httpx_client().request(
        "post", path, content=image, headers={"Content-Type": content_type}, params=params
    )


def classify_raw(
    client: AuthenticatedClient, image: bytes, content_type: str = "image/jpeg", explain: bool = False
) -> Response[ClassifyResponse | ErrorResponse]:
    """POST /v1/classify with the photo of one white cell as the raw body."""
    response = _post_raw(client, "/v1/classify", image, content_type, {"explain": explain})
    # the generated module's own status -> model parsing (and its raise_on_unexpected_status setting)
    return classify_v1_classify_post._build_response(client=client, response=response)


def analyze_raw(
    client: AuthenticatedClient, image: bytes, content_type: str = "image/jpeg", annotate: bool = False
) -> Response[AnalyzeResponse | ErrorResponse]:
    """POST /v1/analyze with a whole-field photo as the raw body."""
    response = _post_raw(client, "/v1/analyze", image, content_type, {"annotate": annotate})
    return analyze_v1_analyze_post._build_response(client=client, response=response)
