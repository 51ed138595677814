"""Property-based tests (hypothesis) of image decoding and request parsing, and of the whole handler.

tests/unit/test_parsing.py already fuzzes the parsers' error type and multipart round trips; these add
decode_image on arbitrary and mutated image files, base64 round trips over arbitrary data and spacing,
body_bytes, and arbitrary requests through lambda_handler (never a 5xx).
"""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hematovision.errors import ClientError as ImageError
from hematovision.errors import ClientError as RequestError
from hematovision.handlers.utils.parsing import body_bytes, decode_base64_image, parse_single
from hematovision.limits import MIN_SIDE
from hematovision.logic.preprocessing import decode_image
from tests import fakes
from tests.hardening import corpus
from tests.hardening.test_corpus import LEAKS, event_for

FORMATS = ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"]
MODES = ["RGB", "RGBA", "L", "LA", "P", "1", "CMYK", "I;16"]
# base images to mutate, one per format (deterministic)
SEEDS = {fmt: corpus.save(corpus.picture(48, 40, seed=i), fmt) for i, fmt in enumerate(FORMATS)}


def assert_usable_or_client_error(data: bytes) -> None:
    try:
        image = decode_image(data)
    except ImageError as error:
        assert error.status in (400, 413, 415, 422), (error.code, error.status)
        assert error.code and not LEAKS.search(error.message), error.message
    else:
        assert image.mode == "RGB" and min(image.size) >= MIN_SIDE


@given(st.binary(max_size=4096))
@settings(max_examples=300, deadline=None)
def test_decode_arbitrary_bytes(data):
    assert_usable_or_client_error(data)


@st.composite
def mutated_images(draw):
    """A valid file of some format with flipped bytes, cut, spliced or duplicated ranges."""
    data = bytearray(SEEDS[draw(st.sampled_from(FORMATS))])
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "zero", "duplicate"]))
        if not data:
            break
        position = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[position] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[position:]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "zero":
            data[position : position + draw(st.integers(1, 32))] = b"\x00" * 8
        else:
            data[position:position] = data[position : position + draw(st.integers(1, 64))]
    return bytes(data)


@given(mutated_images())
@settings(max_examples=400, deadline=None)
def test_decode_mutated_images(data):
    assert_usable_or_client_error(data)


@given(st.sampled_from(FORMATS), st.sampled_from(MODES), st.integers(1, 80), st.integers(1, 80))
@settings(max_examples=150, deadline=None)
def test_decode_every_mode_and_size(fmt, mode, width, height):
    """Any image Pillow can write decodes to upright RGB of the same size, or is refused as too small (422)."""
    image = corpus.picture(max(width, 2), max(height, 2)).resize((width, height))
    try:
        image = image.convert(mode)
        data = corpus.save(image, fmt)
    except (OSError, ValueError, KeyError):
        return  # this format cannot store this mode: nothing to decode
    try:
        decoded = decode_image(data)
    except ImageError as error:
        assert min(width, height) < MIN_SIDE and (error.code, error.status) == ("image_too_small", 422)
    else:
        assert min(width, height) >= MIN_SIDE and decoded.mode == "RGB" and decoded.size == (width, height)


@given(
    st.binary(min_size=1, max_size=3000),
    st.sampled_from(["standard", "urlsafe", "unpadded", "spaced", "data-url"]),
    st.randoms(),
)
@settings(max_examples=300, deadline=None)
def test_base64_round_trip_any_data_and_spacing(data, variant, random):
    text = base64.b64encode(data).decode()
    if variant == "urlsafe":
        text = base64.urlsafe_b64encode(data).decode()
    elif variant == "unpadded":
        text = text.rstrip("=")
    elif variant == "spaced":  # whitespace anywhere, as mail/PEM wrapping and copy-paste leave it
        characters = list(text)
        for _ in range(random.randint(1, 20)):
            characters.insert(random.randint(0, len(characters)), random.choice([" ", "\n", "\r\n", "\t"]))
        text = "".join(characters)
    elif variant == "data-url":
        text = "data:image/png;base64," + text
    assert decode_base64_image(text) == data


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_base64_arbitrary_text_is_data_or_a_400(text):
    try:
        decode_base64_image(text)
    except RequestError as error:
        assert error.status == 400 and error.code in ("invalid_base64", "empty_image")


@given(st.binary(max_size=2000))
@settings(max_examples=200, deadline=None)
def test_body_bytes_round_trip(data):
    assert body_bytes(base64.b64encode(data).decode(), True) == data
    assert body_bytes(data, False) == data


@given(st.text(max_size=200))
@settings(max_examples=200, deadline=None)
def test_body_bytes_arbitrary_text(text):
    try:
        body_bytes(text, True)
    except RequestError as error:
        assert (error.code, error.status) == ("malformed_body", 400)
    assert body_bytes(text, False) == text.encode("utf-8", errors="surrogateescape")


@pytest.mark.parametrize("content_type", ["application/octet-stream", "", "image/x-anything", "IMAGE/HEIC"])
def test_raw_image_that_api_gateway_passed_as_text_is_a_415(content_type):
    """Regression: only binary media types arrive base64-encoded; other raw bodies are mangled text."""
    jpeg = fakes.synthetic_cell()
    with pytest.raises(RequestError) as error:
        parse_single({"Content-Type": content_type}, jpeg, base64_encoded=False)
    assert (error.value.code, error.value.status) == ("unsupported_media_type", 415)
    assert parse_single({"Content-Type": content_type}, jpeg, base64_encoded=True).data == jpeg


# ------------------------------------------------------------------ arbitrary requests through the handler
CONTENT_TYPES = st.one_of(
    st.sampled_from(
        [
            "image/jpeg",
            "image/png",
            "image/gif",
            "application/json",
            "multipart/form-data; boundary=b",
            "text/plain",
            "application/octet-stream",
            "image/webp; q=1",
            "multipart/form-data",
            "application/json; charset=latin-1",
        ]
    ),
    st.none(),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from([base64.b64encode(SEEDS["PNG"]).decode(), base64.b64encode(SEEDS["JPEG"][:300]).decode()]),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.sampled_from(["image", "images", "filename", "x"]), children, max_size=3)
    ),
    max_leaves=10,
)
BODIES = st.one_of(
    st.binary(max_size=3000),
    mutated_images(),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.lists(mutated_images(), max_size=3).map(
        lambda images: fakes.encode_multipart(
            [("image", f"{i}.bin", "image/png", d) for i, d in enumerate(images)], boundary="b"
        )[1]
    ),
)
QUERIES = st.one_of(
    st.just(""), st.sampled_from(["explain=true", "explain=no", "explain=", "explain=1&explain=0", "x=%ff"])
)


@given(st.sampled_from([corpus.CLASSIFY, corpus.BATCH]), CONTENT_TYPES, BODIES, QUERIES)
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@example(corpus.CLASSIFY, "image/png", SEEDS["PNG"], "explain=true")
def test_arbitrary_requests_through_the_handler(api, context, path, content_type, body, query):
    case = corpus.Case("hypothesis", path, content_type, body, 200, query=query)
    response = api.lambda_handler(event_for(case), context)
    status = response["statusCode"]
    assert 200 <= status < 500 and status != 404, (status, response["body"][:300])
    parsed = json.loads(response["body"])
    assert not LEAKS.search(response["body"]), response["body"][:300]
    if status != 200:
        assert parsed["error"]["code"] and parsed["request_id"]
