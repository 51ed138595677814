"""Malformed HTTP framing against `hematovision serve` over raw sockets: a 4xx or a closed connection, never a
5xx, and the server keeps serving. As strict as API Gateway (issue #20 point 5): ambiguous framing is a 400 and the
connection closed, so no request hides in another's body; 414/431/408 come as the gateway's JSON; no Server
banner; each exchange within TIME_BOUND_S and the server's memory within the bound."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from bench.decode_memory import memory_bound_mb
from tests import fakes
from tests.integration.serve_helpers import API_KEY

JPEG = fakes.synthetic_cell()
TIME_BOUND_S = 5.0
HIDDEN = b"GET /hidden-smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


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


def head(path="/v1/classify", *raw_lines: str, **extra) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        f"x-api-key: {API_KEY}",
        "Content-Type: image/jpeg",
        *[f"{k.replace('_', '-')}: {v}" for k, v in extra.items()],
        *raw_lines,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunked(data: bytes, size: str | None = None) -> bytes:
    return f"{size or format(len(data), 'x')}\r\n".encode() + data + b"\r\n0\r\n\r\n"


def responses(reply: bytes) -> int:
    return reply.count(b"HTTP/1.1 ") + reply.count(b"HTTP/1.0 ")


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
    "header-without-colon": (b"GET /health HTTP/1.1\r\nHost x\r\nnonsense\r\n\r\n", {400}),
    "huge-header": (b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", {431}),
    "many-headers": (b"GET /health HTTP/1.1\r\n" + b"X-A: b\r\n" * 200 + b"\r\n", {431}),
    # issue #20: as strict as API Gateway
    "content-length-conflicting": (head("/v1/classify", "Content-Length: 5", "Content-Length: 6") + JPEG, {400}),
    "content-length-plus-sign": (head(Content_Length="+5") + JPEG, {400}),
    "content-length-inner-space": (head(Content_Length="1 0") + JPEG, {400}),
    "content-length-and-chunked": (head(Content_Length="10", Transfer_Encoding="chunked") + chunked(JPEG), {400}),
    "transfer-encoding-chunked-identity": (head(Transfer_Encoding="chunked, identity") + chunked(JPEG), {400}),
    "transfer-encoding-gzip": (head(Transfer_Encoding="gzip") + JPEG, {400}),
    "transfer-encoding-twice": (
        head("/v1/classify", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"),
        {400},
    ),
    "transfer-encoding-xchunked": (head(Transfer_Encoding="xchunked") + chunked(JPEG), {400}),
    "chunked-size-0x-prefix": (head(Transfer_Encoding="chunked") + chunked(JPEG, f"0x{len(JPEG):x}"), {400}),
    "chunked-size-plus-sign": (head(Transfer_Encoding="chunked") + chunked(JPEG, f"+{len(JPEG):x}"), {400}),
    "chunked-size-underscore": (head(Transfer_Encoding="chunked") + b"1_0\r\n" + JPEG, {400}),
    "chunked-size-empty-line": (head(Transfer_Encoding="chunked") + b"\r\n\r\n", {400}),
    "chunked-data-longer-than-size": (
        head(Transfer_Encoding="chunked") + chunked(JPEG, format(len(JPEG) - 4, "x")),
        {400},
    ),
    "chunked-uppercase-hex-and-extension": (
        head(Transfer_Encoding="chunked") + chunked(JPEG, f"{len(JPEG):X};ext=1"),
        {200},
    ),
    "header-space-before-colon": (head("/v1/classify", f"Content-Length : {len(JPEG)}") + JPEG, {400}),
    "request-line-over-8192": (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", {414}),
    "head-over-10240-bytes": (
        b"GET /health HTTP/1.1\r\n"
        + b"X-Pad: "
        + b"p" * 1000
        + b"\r\n" * 1
        + (b"X-Pad2: " + b"p" * 1000 + b"\r\n") * 10
        + b"\r\n",
        {431},
    ),
    "nul-in-path": (b"GET /he\x00alth HTTP/1.1\r\nHost: x\r\n\r\n", {400, 404}),
    "percent-garbage-path": (b"GET /%zz%ff/..%2f..%2fetc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", {404}),
    "absolute-uri": (b"GET http://evil.example/health HTTP/1.1\r\nHost: x\r\n\r\n", {200, 400, 404}),
    "empty": (b"", {None}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_http(server, name):
    raw, allowed = CASES[name]
    started = time.perf_counter()
    reply = exchange(server, raw)
    assert time.perf_counter() - started <= TIME_BOUND_S, name
    status = status_of(reply)
    assert status in allowed, (name, status, reply[:300])
    assert status is None or status < 500
    assert b"Traceback" not in reply and b".py" not in reply
    head_part, _, body = reply.partition(b"\r\n\r\n")
    assert b"\r\nserver:" not in head_part.lower(), "a Server banner"
    if status is not None and status >= 400:  # the gateway's JSON, like every other error
        error = json.loads(body)["error"]
        assert error["code"] and error["message"], body
        assert responses(reply) == 1, reply[:300]
        if status in (400, 408, 414, 431):  # framing errors: answered, then the connection is closed
            assert b"connection: close" in head_part.lower(), reply[:300]
    assert server.process.poll() is None
    status, _, body = server.request("POST", "/v1/classify", JPEG, {"Content-Type": "image/jpeg"})
    assert status == 200 and json.loads(body)["label"]


SMUGGLING = {
    # before issue #20 the server read the first Content-Length (a proxy may take the last) ...
    "conflicting-content-length": head("/v1/classify", "Content-Length: 0", f"Content-Length: {len(HIDDEN)}") + HIDDEN,
    # ... and an empty chunk-size line as the last chunk: both let the hidden request through as a second request
    "empty-chunk-size": head(Transfer_Encoding="chunked") + b"\r\n\r\n" + HIDDEN,
    # a header line without a colon ended the headers, so the Content-Length after it was ignored
    "line-without-colon-hides-length": head("/v1/classify", "X-Note note", f"Content-Length: {len(HIDDEN)}") + HIDDEN,
    "chunked-with-content-length": head("/v1/classify", "Content-Length: 0", "Transfer-Encoding: chunked")
    + b"0\r\n\r\n"
    + HIDDEN,
    "transfer-encoding-not-chunked": head("/v1/classify", "Transfer-Encoding: chunked, identity", "Content-Length: 0")
    + HIDDEN,
}


@pytest.mark.parametrize("name", sorted(SMUGGLING))
def test_no_request_hides_in_another(server, name):
    """Desync: one 400, the connection closed, and the hidden request never reaches the gateway."""
    before = server.log_path.read_text(errors="replace").count("hidden-smuggled")
    reply = exchange(server, SMUGGLING[name])
    assert status_of(reply) == 400 and responses(reply) == 1, reply[:400]
    time.sleep(0.2)
    assert server.log_path.read_text(errors="replace").count("hidden-smuggled") == before, "the hidden request ran"


def test_slow_head_gets_408_at_the_deadline(server):
    """Slowloris: a head trickled in byte by byte is cut at the header deadline (10 s), whatever the pace."""
    from hematovision.local.server import HEADER_TIMEOUT

    started = time.perf_counter()
    with socket.create_connection((server.host, server.port), timeout=30) as connection:
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        reply = b""
        try:
            while time.perf_counter() - started < HEADER_TIMEOUT + 10:
                connection.sendall(b"X-Slow: 1\r\n")
                time.sleep(0.5)
        except OSError:
            pass
        connection.settimeout(5)
        try:
            while chunk := connection.recv(65536):
                reply += chunk
        except OSError:
            pass
    elapsed = time.perf_counter() - started
    assert HEADER_TIMEOUT - 0.5 <= elapsed <= HEADER_TIMEOUT + 5, elapsed
    assert status_of(reply) == 408, reply[:300]
    assert json.loads(reply.partition(b"\r\n\r\n")[2])["error"]["code"] == "request_timeout"


def test_server_memory_within_the_bound(server):
    """After every framing case: the server process and its workers each under 75% of the function's memory."""
    for pid in (server.process.pid, *server.workers()):
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        status = dict(line.split(":", 1) for line in lines if ":" in line)
        assert int(status["VmHWM"].split()[0]) / 1024 < memory_bound_mb(), pid
