from enum import StrEnum


class ErrorCode(StrEnum):
    BAD_GATEWAY = "bad_gateway"
    CORRUPT_IMAGE = "corrupt_image"
    EMPTY_IMAGE = "empty_image"
    EXPLAIN_UNAVAILABLE = "explain_unavailable"
    FORBIDDEN = "forbidden"
    GATEWAY_TIMEOUT = "gateway_timeout"
    IMAGE_TOO_LARGE = "image_too_large"
    IMAGE_TOO_SMALL = "image_too_small"
    INTERNAL_ERROR = "internal_error"
    INVALID_API_KEY = "invalid_api_key"
    INVALID_BASE64 = "invalid_base64"
    INVALID_JSON = "invalid_json"
    INVALID_REQUEST = "invalid_request"
    MALFORMED_BODY = "malformed_body"
    MALFORMED_MULTIPART = "malformed_multipart"
    MISSING_BODY = "missing_body"
    MISSING_IMAGE = "missing_image"
    NOT_FOUND = "not_found"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    QUOTA_EXCEEDED = "quota_exceeded"
    RATE_LIMITED = "rate_limited"
    REQUEST_TIMEOUT = "request_timeout"
    SERVICE_UNAVAILABLE = "service_unavailable"
    THROTTLED = "throttled"
    TOO_MANY_IMAGES = "too_many_images"
    UNSUPPORTED_IMAGE = "unsupported_image"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"

    def __str__(self) -> str:
        return str(self.value)
