"""Malformed HTTP framing against `hematovision serve` over raw sockets: a 4xx or a closed connection, never a
5xx, and the server keeps serving."""

from __future__ import annotations

import json
import socket

import pytest

from tests import fakes
from tests.integration.serve_helpers import API_KEY

JPEG = fakes.synthetic_cell()


def exchange(server, raw: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection((server.host, server.port), timeout=timeout) as connection:
        connection.sendall(raw)
        connection.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                data = connection.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def status_of(reply: bytes) -> int | None:
    if not reply.startswith(b"HTTP/"):
        return None
    return int(reply.split(b" ", 2)[1])


def head(path="/v1/classify", **extra) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        f"x-api-key: {API_KEY}",
        "Content-Type: image/jpeg",
        *[f"{k.replace('_', '-')}: {v}" for k, v in extra.items()],
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


CASES = {
    "content-length-not-a-number": (head(Content_Length="abc") + JPEG, {400}),
    "content-length-negative": (head(Content_Length="-5") + JPEG, {400}),
    "chunked-bad-size": (head(Transfer_Encoding="chunked") + b"zz\r\n" + JPEG, {400}),
    "chunked-negative-size": (head(Transfer_Encoding="chunked") + b"-1\r\n" + JPEG, {400}),
    "chunked-ok": (head(Transfer_Encoding="chunked") + f"{len(JPEG):x}\r\n".encode() + JPEG + b"\r\n0\r\n\r\n", {200}),
    "chunked-truncated": (head(Transfer_Encoding="chunked") + f"{len(JPEG):x}\r\n".encode() + JPEG[:100], {None, 400}),
    "body-shorter-than-content-length": (head(Content_Length=str(len(JPEG) + 1000)) + JPEG, {None, 400}),
    # http.server answers an unparseable request line HTTP/0.9-style (an HTML 400 page without a status line)
    "garbage-request-line": (b"HELLO THERE\r\n\r\n", {None, 400}),
    "http-0.9": (b"GET /health\r\n", {None, 400}),
    "bad-version": (b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n", {None, 400, 505}),
    "header-without-colon": (b"GET /health HTTP/1.1\r\nHost x\r\nnonsense\r\n\r\n", {200, 400}),
    "huge-header": (b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", {400, 431}),
    "many-headers": (b"GET /health HTTP/1.1\r\n" + b"X-A: b\r\n" * 200 + b"\r\n", {200, 431}),
    "nul-in-path": (b"GET /he\x00alth HTTP/1.1\r\nHost: x\r\n\r\n", {400, 404}),
    "percent-garbage-path": (b"GET /%zz%ff/..%2f..%2fetc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", {404}),
    "absolute-uri": (b"GET http://evil.example/health HTTP/1.1\r\nHost: x\r\n\r\n", {200, 400, 404}),
    "empty": (b"", {None}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_http(server, name):
    raw, allowed = CASES[name]
    reply = exchange(server, raw)
    status = status_of(reply)
    assert status in allowed, (name, status, reply[:300])
    assert status is None or status < 500
    assert b"Traceback" not in reply and b".py" not in reply
    assert server.process.poll() is None
    status, _, body = server.request("POST", "/v1/classify", JPEG, {"Content-Type": "image/jpeg"})
    assert status == 200 and json.loads(body)["label"]
