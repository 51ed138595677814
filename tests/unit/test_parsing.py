"""Request parsing: raw / JSON base64 / multipart bodies, per-item batch errors, caps."""

import base64
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hematovision import limits
from hematovision.errors import ClientError
from hematovision.handlers.utils.parsing import (
    MAX_PART_HEADER_LINE,
    body_bytes,
    decode_base64_image,
    parse_batch,
    parse_multipart,
    parse_single,
)
from tests import fakes

JPEG = fakes.synthetic_cell()


def test_body_bytes_base64_and_text():
    assert body_bytes(base64.b64encode(b"\xff\xd8\x00\r\n").decode(), True) == b"\xff\xd8\x00\r\n"
    assert body_bytes("héllo", False) == "héllo".encode()
    assert body_bytes(None, True) == b""
    with pytest.raises(ClientError) as error:
        body_bytes("***", True)
    assert error.value.status == 400


@pytest.mark.parametrize(
    "encode",
    [
        lambda b: base64.b64encode(b).decode(),
        lambda b: base64.urlsafe_b64encode(b).decode(),
        lambda b: base64.b64encode(b).decode().rstrip("="),
        lambda b: "\n".join(base64.b64encode(b).decode()[i : i + 76] for i in range(0, len(base64.b64encode(b)), 76)),
        lambda b: "data:image/jpeg;base64," + base64.b64encode(b).decode(),
    ],
    ids=["standard", "urlsafe", "unpadded", "wrapped", "data-url"],
)
def test_base64_variants(encode):
    assert decode_base64_image(encode(JPEG)) == JPEG


@pytest.mark.parametrize("text", ["not base64!", "abcde", "", "====", "a" * 5 + "%"])
def test_base64_invalid(text):
    with pytest.raises(ClientError) as error:
        decode_base64_image(text)
    assert error.value.status == 400


@given(st.binary(min_size=1, max_size=2000))
@settings(max_examples=150, deadline=None)
def test_multipart_round_trips_arbitrary_binary(data):
    content_type, body = fakes.encode_multipart([("image", "x.bin", "application/octet-stream", data)])
    parts = parse_multipart(content_type, body)
    assert len(parts) == 1 and parts[0].name == "image" and parts[0].filename == "x.bin"
    assert parts[0].data == data


def test_multipart_truncated_or_without_boundary():
    content_type, body = fakes.encode_multipart([("image", "a.jpg", "image/jpeg", JPEG)])
    with pytest.raises(ClientError) as error:
        parse_multipart(content_type, body[: len(body) // 2])
    assert error.value.status == 400
    with pytest.raises(ClientError):
        parse_multipart("multipart/form-data", body)


def test_multipart_large_part_round_trips_byte_exact():
    data = random.Random(4).randbytes(4_000_000)  # every byte value, CRs, LFs and '\r\n--' runs included
    content_type, body = fakes.encode_multipart(
        [("note", None, "text/plain", b"hi"), ("image", "big.bin", "application/octet-stream", data)]
    )
    parts = parse_multipart(content_type, body)
    assert [(p.name, p.filename) for p in parts] == [("note", None), ("image", "big.bin")]
    assert len(parts[1].data) == len(data) and parts[1].data == data


BOUNDARY = "hvTestBoundary"


@pytest.mark.parametrize(
    "data",
    [
        b"--" + BOUNDARY.encode() + b"\r\nat the very start of the data",
        b"x--" + BOUNDARY.encode() + b"--\r\nin the middle of a line",
        b"line\n--" + BOUNDARY.encode() + b"\r\nafter a bare LF",
        b"line\r--" + BOUNDARY.encode() + b"--",
    ],
    ids=["start", "mid-line", "after-lf", "after-cr-at-end"],
)
def test_multipart_boundary_without_crlf_in_front_is_data(data):
    """Only CRLF + '--' + boundary delimits a part (RFC 2046); the same bytes anywhere else are data."""
    content_type, body = fakes.encode_multipart(
        [("image", "a.bin", "application/octet-stream", data), ("note", None, "text/plain", b"n")], boundary=BOUNDARY
    )
    parts = parse_multipart(content_type, body)
    assert [(p.name, p.data) for p in parts] == [("image", data), ("note", b"n")]


def test_multipart_part_header_line_over_the_limit():
    content_type, body = fakes.encode_multipart([("image", "a" * (MAX_PART_HEADER_LINE + 1), "image/jpeg", JPEG)])
    with pytest.raises(ClientError) as error:
        parse_multipart(content_type, body)
    assert (error.value.status, error.value.code) == (400, "malformed_multipart")


@pytest.mark.parametrize(
    "headers, body, expected",
    [
        ({"Content-Type": "image/jpeg"}, JPEG, JPEG),
        ({"content-type": "IMAGE/PNG; x=y"}, JPEG, JPEG),
        ({}, JPEG, JPEG),
        ({"Content-Type": "application/json"}, json.dumps({"image": base64.b64encode(JPEG).decode()}).encode(), JPEG),
    ],
)
def test_parse_single_forms(headers, body, expected):
    assert parse_single(headers, body).data == expected


def test_parse_single_multipart_and_errors():
    content_type, body = fakes.encode_multipart(
        [("note", None, "text/plain", b"hi"), ("image", "a.jpg", "image/jpeg", JPEG)]
    )
    upload = parse_single({"Content-Type": content_type}, body)
    assert upload.data == JPEG and upload.filename == "a.jpg"
    cases = [
        ({"Content-Type": "text/plain"}, b"hello", 415, "unsupported_media_type"),
        ({"Content-Type": "image/jpeg"}, b"", 400, "missing_body"),
        ({"Content-Type": "application/json"}, b"{", 400, "invalid_json"),
        ({"Content-Type": "application/json"}, b'{"img": "x"}', 400, "invalid_request"),
        ({"Content-Type": "application/json"}, b'["x"]', 400, "invalid_request"),
        ({"Content-Type": "application/json"}, b'{"image": 5}', 400, "invalid_request"),
        (
            {"Content-Type": fakes.encode_multipart([("file", "a", "image/jpeg", JPEG)])[0]},
            fakes.encode_multipart([("file", "a", "image/jpeg", JPEG)])[1],
            400,
            "missing_image",
        ),
        ({"Content-Type": "image/jpeg"}, b"x" * (limits.MAX_IMAGE_BYTES + 1), 413, "payload_too_large"),
    ]
    for headers, body, status, code in cases:
        with pytest.raises(ClientError) as error:
            parse_single(headers, body)
        assert (error.value.status, error.value.code) == (status, code), headers


def test_parse_batch_per_item_errors_and_caps():
    good = base64.b64encode(JPEG).decode()
    uploads = parse_batch(
        {"Content-Type": "application/json"},
        json.dumps({"images": [good, "%%%", {"image": good, "filename": "f.jpg"}]}).encode(),
    )
    assert [u.error is None for u in uploads] == [True, False, True]
    assert uploads[1].error.code == "invalid_base64" and uploads[2].filename == "f.jpg"
    with pytest.raises(ClientError) as error:
        parse_batch(
            {"Content-Type": "application/json"}, json.dumps({"images": [good] * (limits.MAX_BATCH_ITEMS + 1)}).encode()
        )
    assert error.value.status == 413
    with pytest.raises(ClientError) as error:
        parse_batch({"Content-Type": "application/json"}, b'{"images": []}')
    assert error.value.status == 400
    with pytest.raises(ClientError) as error:
        parse_batch({"Content-Type": "image/jpeg"}, JPEG)
    assert error.value.status == 415
    content_type, body = fakes.encode_multipart([("image", f"{i}.jpg", "image/jpeg", JPEG) for i in range(3)])
    assert len(parse_batch({"Content-Type": content_type}, body)) == 3


CONTENT_TYPES = st.sampled_from(
    [
        "image/jpeg",
        "application/json",
        "multipart/form-data; boundary=b",
        "multipart/form-data",
        "text/plain",
        "",
        "IMAGE/PNG;;",
        'multipart/form-data; boundary=""',
        "application/json; charset=utf-16",
    ]
)
BODIES = st.one_of(
    st.binary(max_size=600),
    st.builds(lambda s: s.encode(), st.text(max_size=300)),
    st.builds(
        lambda d: json.dumps(d).encode(),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda c: (
                st.lists(c, max_size=4)
                | st.dictionaries(st.sampled_from(["image", "images", "filename", "x"]), c, max_size=3)
            ),
            max_leaves=8,
        ),
    ),
    st.builds(
        lambda parts: b"--b\r\n" + b"\r\n--b\r\n".join(parts) + b"\r\n--b--\r\n",
        st.lists(
            st.binary(max_size=80).map(lambda d: b'Content-Disposition: form-data; name="image"\r\n\r\n' + d),
            max_size=3,
        ),
    ),
)


@given(CONTENT_TYPES, BODIES)
@settings(max_examples=300, deadline=None)
def test_parsers_only_raise_request_errors(content_type, body):
    for parse in (parse_single, parse_batch):
        try:
            result = parse({"Content-Type": content_type}, body)
        except ClientError as error:
            assert 400 <= error.status < 500
        else:
            uploads = result if isinstance(result, list) else [result]
            assert all(u.data is not None or u.error is not None for u in uploads)
