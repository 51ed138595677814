"""Turning an API Gateway request body into image uploads: raw binary, JSON base64, or multipart.

HTTP-specific, so it lives with the handler; the use case (logic.classifier) only sees the resulting Uploads.
Pure functions over (headers, body bytes); every failure is a ClientError with the API's status and
error code. Multipart bodies are parsed in memory by the `multipart` package (PushMultipartParser); only the
Content-Type's boundary parameter is still read with the standard library's `email` header parser.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

# `multipart` (defnull) rather than python-multipart: pure Python, no dependencies, one module; its
# PushMultipartParser takes the whole in-memory body in one call, yields the parts as a generator, never touches
# the disk (nothing to spool on Lambda) and reports an unterminated body on close(). python-multipart's low-level
# parser needs eight callbacks and does not detect truncation (its finalize() checks nothing).
from multipart import MultipartError, MultipartSegment, PushMultipartParser
from pydantic import ValidationError

from hematovision.errors import ClientError
from hematovision.limits import MAX_BATCH_BYTES, MAX_BATCH_ITEMS, MAX_IMAGE_BYTES
from hematovision.logic.classifier import Upload
from hematovision.models.input import BatchJsonRequest, ClassifyJsonRequest

RAW_IMAGE_TYPES = frozenset(
    {
        "image/jpeg",
        "image/jpg",
        "image/pjpeg",
        "image/png",
        "image/webp",
        "image/bmp",
        "image/x-ms-bmp",
        "image/tiff",
        "image/gif",
        "application/octet-stream",
    }
)
JSON_TYPES = frozenset({"application/json", "text/json"})
MULTIPART_TYPE = "multipart/form-data"
IMAGE_FIELD = "image"


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def media_type(content_type: str | None) -> str:
    """'Image/JPEG; charset=x' -> 'image/jpeg'; '' when absent."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def body_bytes(body: str | bytes | None, is_base64_encoded: bool) -> bytes:
    """The request body as bytes, base64-decoded when API Gateway marked it so (binary media types)."""
    if body is None:
        return b""
    if is_base64_encoded:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise ClientError("malformed_body", "The request body is not valid base64.", 400) from None
    if isinstance(body, bytes):
        return body
    return body.encode("utf-8", errors="surrogateescape")


_DATA_URL = re.compile(r"^data:[\w.+-]+/[\w.+-]+(?:;[\w=.+-]+)*;base64,", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")
_BASE64_CHARS = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")


def decode_base64_image(text: str) -> bytes:
    """Standard or URL-safe base64, optional data: URL prefix, whitespace and missing padding tolerated."""
    if not isinstance(text, str):
        raise ClientError("invalid_base64", "The image must be a base64 string.", 400)
    text = _DATA_URL.sub("", text.strip(), count=1)
    text = _WHITESPACE.sub("", text).replace("-", "+").replace("_", "/")
    text = text.rstrip("=")
    if not text:
        raise ClientError("empty_image", "The image is empty.", 400)
    if len(text) % 4 == 1 or not _BASE64_CHARS.match(text):
        raise ClientError("invalid_base64", "The image is not valid base64.", 400)
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ClientError("invalid_base64", "The image is not valid base64.", 400) from None


def parse_json(body: bytes) -> object:
    if not body.strip():
        raise ClientError("missing_body", "The request has no body.", 400)
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ClientError("invalid_json", "The body is not valid JSON.", 400) from None


def _validation_message(error: ValidationError) -> str:
    first = error.errors()[0] if error.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ())) or "body"
    return f"Invalid request body at '{where}': {first.get('msg', 'invalid value')}."


@dataclass
class Part:
    name: str | None
    filename: str | None
    content_type: str
    data: bytes


_MALFORMED_MULTIPART = "The multipart body is malformed or truncated."
_UNPARSABLE_MULTIPART = "The multipart body could not be parsed."
# Longest part header line (after unfolding). The email parser had no limit; this one also bounds the cost of
# folded (continuation) lines, which the library joins one at a time. Browsers send a few hundred bytes at most.
MAX_PART_HEADER_LINE = 16 * 1024


class _FormDataParser(PushMultipartParser):
    """Keeps a part without a Content-Disposition header (no name: not an 'image' field, as with the email
    parser) instead of rejecting the whole body, which the library's form-data check would do. _create_segment is
    the override point the library documents for this (the pin in requirements.txt is exact)."""

    def _create_segment(self, headerlist: list[tuple[str, str]]) -> MultipartSegment:
        return MultipartSegment(headerlist)


def _header_text(value: str | None) -> str | None:
    """Part headers are read as latin-1 (never fails); their values are UTF-8, with U+FFFD for invalid bytes, so a
    non-ASCII file name never turns a valid upload into an error."""
    return None if value is None else value.encode("latin-1").decode("utf-8", errors="replace")


def _boundary(content_type: str) -> bytes:
    """The boundary parameter as the email header parser reads it (quoting, RFC 2231), as the body's bytes."""
    # imported here, not at module level: only multipart bodies need the email package (~10 ms of a cold start)
    from email import policy
    from email.parser import BytesParser

    header_block = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", errors="replace")
    try:
        header = BytesParser(policy=policy.HTTP).parsebytes(header_block, headersonly=True)
        boundary = header.get_boundary() if header.get_content_maintype() == "multipart" else None
    except Exception:  # the email header parser raises a variety of errors on hostile parameters
        raise ClientError("malformed_multipart", _UNPARSABLE_MULTIPART, 400) from None
    try:
        if boundary:
            return boundary.encode("ascii", errors="surrogateescape")  # bytes >= 0x80 come back as they were sent
    except UnicodeEncodeError:
        pass
    raise ClientError("malformed_multipart", _MALFORMED_MULTIPART, 400)


def _part(segment: MultipartSegment, chunks: list[bytes]) -> Part:
    content_type = _header_text(segment.content_type)
    return Part(
        name=_header_text(segment.name),
        filename=_header_text(segment.filename),
        content_type=content_type if content_type and content_type.count("/") == 1 else "text/plain",
        data=b"".join(chunks),
    )


def parse_multipart(content_type: str, body: bytes) -> list[Part]:
    """multipart/form-data -> parts, in memory. Missing boundary, unterminated, malformed or empty body -> 400.

    Part and body sizes are not limited here: the callers cap the whole body first (limits.MAX_*_BYTES).
    """
    if "boundary=" not in content_type.lower():
        raise ClientError("malformed_multipart", "The multipart Content-Type has no boundary.", 400)
    boundary = _boundary(content_type)
    parts: list[Part] = []
    segment: MultipartSegment | None = None
    chunks: list[bytes] = []
    try:
        parser = _FormDataParser(
            boundary, max_header_size=MAX_PART_HEADER_LINE, max_header_count=math.inf, header_charset="latin-1"
        )
        with parser:  # leaving the block checks that the closing boundary was seen
            for event in parser.parse(body):
                if isinstance(event, MultipartSegment):
                    segment, chunks = event, []
                elif event is None:
                    parts.append(_part(segment, chunks))
                else:
                    chunks.append(event)
    except MultipartError:
        raise ClientError("malformed_multipart", _MALFORMED_MULTIPART, 400) from None
    except Exception:  # never a 500 for a hostile body, whatever the parser trips over
        raise ClientError("malformed_multipart", _UNPARSABLE_MULTIPART, 400) from None
    if not parts:  # only a closing boundary: the email parser found this malformed too
        raise ClientError("malformed_multipart", _MALFORMED_MULTIPART, 400)
    return parts


def _image_parts(content_type: str, body: bytes) -> list[Part]:
    parts = [p for p in parse_multipart(content_type, body) if p.name == IMAGE_FIELD]
    if not parts:
        raise ClientError("missing_image", f"The multipart body has no '{IMAGE_FIELD}' field.", 400)
    return parts


def _check_size(size: int, limit: int, what: str) -> None:
    if size > limit:
        raise ClientError("payload_too_large", f"{what} is {size} bytes; at most {limit} bytes are accepted.", 413)


def parse_single(headers: Mapping[str, str] | None, body: bytes, base64_encoded: bool = True) -> Upload:
    """POST /v1/classify: exactly one image from a raw, JSON or multipart body.

    `base64_encoded`: the event's isBase64Encoded. A raw body that API Gateway passed as text (its
    Content-Type is not one of the binary media types) has lost its non-UTF-8 bytes: 415, naming the types.
    """
    content_type = header(headers, "content-type") or ""
    kind = media_type(content_type)
    _check_size(len(body), MAX_IMAGE_BYTES, "The request body")
    if not body:
        raise ClientError("missing_body", "The request has no body: send an image.", 400)
    if kind in JSON_TYPES:
        try:
            request = ClassifyJsonRequest.model_validate(parse_json(body))
        except ValidationError as error:
            raise ClientError("invalid_request", _validation_message(error), 400) from None
        return Upload(data=decode_base64_image(request.image), filename=request.filename)
    if kind == MULTIPART_TYPE:
        parts = _image_parts(content_type, body)
        if len(parts) > 1:
            raise ClientError("too_many_images", "Send one 'image' field here, or use /v1/classify/batch.", 400)
        return Upload(data=parts[0].data, filename=parts[0].filename)
    if kind in RAW_IMAGE_TYPES or kind.startswith("image/") or not kind:
        if not base64_encoded:
            raise ClientError(
                "unsupported_media_type",
                f"Content-Type {kind or 'none'!r} does not reach the function as binary: send a raw image as "
                "image/jpeg, image/png, image/webp, image/bmp, image/tiff or image/gif (or use JSON base64 or "
                "multipart/form-data).",
                415,
            )
        return Upload(data=body)
    raise ClientError(
        "unsupported_media_type",
        f"Content-Type {kind!r} is not supported: send an image (image/jpeg, image/png, ...), "
        "application/json or multipart/form-data.",
        415,
    )


def parse_batch(headers: Mapping[str, str] | None, body: bytes) -> list[Upload]:
    """POST /v1/classify/batch: JSON {"images": [...]} or multipart with several 'image' parts.

    A bad item (e.g. invalid base64) becomes an Upload with `error`, not a failed request.
    """
    content_type = header(headers, "content-type") or ""
    kind = media_type(content_type)
    _check_size(len(body), MAX_BATCH_BYTES, "The request body")
    if not body:
        raise ClientError("missing_body", "The request has no body.", 400)
    uploads: list[Upload] = []
    if kind in JSON_TYPES:
        try:
            request = BatchJsonRequest.model_validate(parse_json(body))
        except ValidationError as error:
            if any(e.get("type") == "too_long" for e in error.errors()):
                raise ClientError("too_many_images", f"A batch holds at most {MAX_BATCH_ITEMS} images.", 413) from None
            raise ClientError("invalid_request", _validation_message(error), 400) from None
        for item in request.images:
            text, filename = (item, None) if isinstance(item, str) else (item.image, item.filename)
            try:
                uploads.append(Upload(data=decode_base64_image(text), filename=filename))
            except ClientError as error:
                uploads.append(Upload(data=None, filename=filename, error=error))
    elif kind == MULTIPART_TYPE:
        uploads = [Upload(data=p.data, filename=p.filename) for p in _image_parts(content_type, body)]
    else:
        raise ClientError(
            "unsupported_media_type",
            f"Content-Type {kind or 'none'!r} is not supported here: send application/json or multipart/form-data.",
            415,
        )
    if len(uploads) > MAX_BATCH_ITEMS:
        raise ClientError("too_many_images", f"A batch holds at most {MAX_BATCH_ITEMS} images.", 413)
    if not uploads:
        raise ClientError("missing_image", "The batch holds no image.", 400)
    _check_size(sum(len(u.data or b"") for u in uploads), MAX_BATCH_BYTES, "The batch's images")
    return uploads
