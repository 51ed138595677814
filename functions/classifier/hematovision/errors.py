"""The API's error codes (one list, one casing) and the one client-error type: a request or an image the client
must fix.

Every error answer is JSON {"error": {"code", "message"}, "request_id"}; `code` is one of ErrorCode, lowercase
snake_case, whoever answers: the function, API Gateway (template.yaml's GatewayResponses) or the local server
(`hematovision serve`). The OpenAPI spec's `error.code` enum is this list. v1 only ever adds codes (a rename or a
removal is v2), so clients must treat an unknown code by its HTTP status.

ClientError is raised by the body parser, the image decoder and the classifier alike; the handler turns it into the
JSON error response, and a batch item that fails carries the same object. `status` is the HTTP status the error maps
to (400, 413, 415 or 422), `code` an ErrorCode value.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    # -- the function's (ClientError, handlers/utils/errors.py)
    INVALID_REQUEST = "invalid_request"  # 400: a parameter or JSON field fails validation (also the gateway's)
    MISSING_BODY = "missing_body"  # 400
    MALFORMED_BODY = "malformed_body"  # 400: the proxy event's base64 body does not decode
    INVALID_JSON = "invalid_json"  # 400
    INVALID_BASE64 = "invalid_base64"  # 400
    MALFORMED_MULTIPART = "malformed_multipart"  # 400
    MISSING_IMAGE = "missing_image"  # 400
    EMPTY_IMAGE = "empty_image"  # 400
    TOO_MANY_IMAGES = "too_many_images"  # 400 (one route, several images) or 413 (a batch over its count)
    EXPLAIN_UNAVAILABLE = "explain_unavailable"  # 400: explain=true on a model without activation maps
    NOT_FOUND = "not_found"  # 404: no such route (also the gateway's)
    PAYLOAD_TOO_LARGE = "payload_too_large"  # 413: body or image over the byte limits (also the gateway's)
    IMAGE_TOO_LARGE = "image_too_large"  # 413: too many pixels, or too much memory to decode
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"  # 415: a Content-Type the route does not take (also gateway's)
    UNSUPPORTED_IMAGE = "unsupported_image"  # 415: the bytes are not an image format the API decodes
    CORRUPT_IMAGE = "corrupt_image"  # 422
    IMAGE_TOO_SMALL = "image_too_small"  # 422
    INTERNAL_ERROR = "internal_error"  # 500: an unexpected error (the request id finds it in the logs)
    # -- API Gateway's own answers (template.yaml GatewayResponses) and the local server's emulation of them
    INVALID_API_KEY = "invalid_api_key"  # 403: x-api-key missing or not a key of this API
    FORBIDDEN = "forbidden"  # 403: denied otherwise (WAF rule, resource policy)
    THROTTLED = "throttled"  # 429: the stage's or the usage plan's rate limit
    QUOTA_EXCEEDED = "quota_exceeded"  # 429: the usage plan's quota for the period is used up
    RATE_LIMITED = "rate_limited"  # 429: the WAF per-IP rate rule; locally, `hematovision serve`'s full queue
    BAD_GATEWAY = "bad_gateway"  # 502: the function failed or answered malformed
    SERVICE_UNAVAILABLE = "service_unavailable"  # 503: the function is at its concurrency limit
    GATEWAY_TIMEOUT = "gateway_timeout"  # 504: the function did not answer within the integration timeout
    # -- the local server only: the request head did not arrive within its deadline (slowloris)
    REQUEST_TIMEOUT = "request_timeout"  # 408


# The HTTP statuses each code comes with (the spec's error responses list the codes of each status from this).
STATUSES: dict[str, tuple[int, ...]] = {
    ErrorCode.INVALID_REQUEST: (400,),
    ErrorCode.MISSING_BODY: (400,),
    ErrorCode.MALFORMED_BODY: (400,),
    ErrorCode.INVALID_JSON: (400,),
    ErrorCode.INVALID_BASE64: (400,),
    ErrorCode.MALFORMED_MULTIPART: (400,),
    ErrorCode.MISSING_IMAGE: (400,),
    ErrorCode.EMPTY_IMAGE: (400,),
    ErrorCode.TOO_MANY_IMAGES: (400, 413),
    ErrorCode.EXPLAIN_UNAVAILABLE: (400,),
    ErrorCode.NOT_FOUND: (404,),
    ErrorCode.PAYLOAD_TOO_LARGE: (413,),
    ErrorCode.IMAGE_TOO_LARGE: (413,),
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: (415,),
    ErrorCode.UNSUPPORTED_IMAGE: (415,),
    ErrorCode.CORRUPT_IMAGE: (422,),
    ErrorCode.IMAGE_TOO_SMALL: (422,),
    ErrorCode.INTERNAL_ERROR: (500,),
    ErrorCode.INVALID_API_KEY: (403,),
    ErrorCode.FORBIDDEN: (403,),
    ErrorCode.THROTTLED: (429,),
    ErrorCode.QUOTA_EXCEEDED: (429,),
    ErrorCode.RATE_LIMITED: (429,),
    ErrorCode.BAD_GATEWAY: (502,),
    ErrorCode.SERVICE_UNAVAILABLE: (503,),
    ErrorCode.GATEWAY_TIMEOUT: (504,),
    ErrorCode.REQUEST_TIMEOUT: (408,),
}

# Not API answers: the CLI's own codes, for a file it could not read and (classify --url) an API it could not reach or
# whose answer was not the API's JSON. Never sent over HTTP.
CLI_ONLY_CODES = ("unreadable_file", "unreachable", "unexpected_response")


@dataclass(eq=False)  # eq=False keeps exceptions hashable by identity, as Python's traceback machinery expects
class ClientError(ValueError):
    code: str  # an ErrorCode value (tests/unit/test_openapi.py holds every ClientError in the package to that)
    message: str
    status: int = 400

    def __post_init__(self) -> None:
        super().__init__(self.message)
