"""`hematovision serve`: a local stand-in for API Gateway (REST API, Lambda proxy integration).

Requests become the REST proxy events API Gateway would send (binary media types, API keys per route,
gateway responses and CORS all read from template.yaml), and run on the handler through a pool of
awslambdaric worker processes (hematovision.local.runtime). Limits as deployed: 10 MB request body
(API Gateway), 6 MB invocation payload (Lambda, checked from 4/3 x the body before the event is built), 29 s
integration timeout, and optionally the function's memory size (`--memory-mb`, a cgroup per worker).

The HTTP side is as strict as API Gateway's edge (issue #20): conflicting or malformed Content-Length, Content-Length
with Transfer-Encoding, any Transfer-Encoding but `chunked`, malformed chunk framing, header lines that are not
`name: value` -> 400 and the connection closed, so no request can hide in another's body; the request line and
headers must arrive within HEADER_TIMEOUT s (slowloris), a request line over MAX_REQUEST_LINE bytes is a 414 and a
head over MAX_HEAD_BYTES a 431, all as JSON like the gateway's other answers; at most `max_queue` requests wait for
a worker, the next get 429 rate_limited with Retry-After. No Server banner. The access log has the method and the
path only: escaped, truncated, the query string redacted, never a header (so never a key) or a body.
"""

from __future__ import annotations

import base64
import contextlib
import email.errors
import json
import logging
import os
import re
import secrets
import signal
import socket
import sys
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from hematovision.errors import ErrorCode
from hematovision.local.events import build_event
from hematovision.local.runtime import MemoryLimit, Result, WorkerPool
from hematovision.local.template import ApiConfig, default_template_path, load_api_config

log = logging.getLogger("hematovision.local")

API_GATEWAY_MAX_BODY = 10 * 1024 * 1024  # REST API payload quota
LAMBDA_MAX_REQUEST = 6 * 1024 * 1024  # synchronous invoke payload: 6,291,456 bytes
INTEGRATION_TIMEOUT = 29.0
API_KEYS_ENV = "HEMATOVISION_API_KEYS"
MAX_REQUEST_LINE = 8192  # bytes: longer -> 414
MAX_HEAD_BYTES = 10240  # request line + header values (API Gateway's REST limit): more -> 431
HEADER_TIMEOUT = 10.0  # seconds for the request line and headers to arrive, however slowly (slowloris)
DEFAULT_MAX_QUEUE = 16  # requests waiting for a free worker; beyond: 429 rate_limited
LOG_TARGET_CHARS = 160  # of the escaped path in an access-log line
MAX_CHUNK_LINE = 1024
MAX_TRAILERS = 32
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name
DIGITS = re.compile(r"[0-9]{1,12}")
CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,8})(?:;[^\r\n]*)?\r\n")
# response types and API Gateway's default status/message for them
GATEWAY_DEFAULTS = {
    "MISSING_AUTHENTICATION_TOKEN": (403, "Missing Authentication Token"),
    "INVALID_API_KEY": (403, "Forbidden"),
    "REQUEST_TOO_LARGE": (413, "Request Too Large"),
    "BAD_REQUEST_BODY": (400, "Invalid request body"),
    "INTEGRATION_TIMEOUT": (504, "Endpoint request timed out"),
    "THROTTLED": (429, "Too Many Requests"),
}
# the local server's answers to malformed HTTP, in the gateway's JSON shape (response type -> status, message)
FRAMING_ERRORS = {
    400: ("BAD_REQUEST", "Bad Request"),
    408: ("REQUEST_TIMEOUT", "Request Timeout"),
    413: ("REQUEST_TOO_LARGE", "Request Too Large"),
    414: ("REQUEST_URI_TOO_LONG", "Request-URI Too Long"),
    431: ("REQUEST_HEADER_FIELDS_TOO_LARGE", "Request Header Fields Too Large"),
}


class FramingError(ValueError):
    """The request's framing is malformed or ambiguous: 400, then the connection is closed."""


@dataclass
class GatewayReply:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


class Gateway:
    """The API Gateway part, independent of sockets: (method, target, headers, body) -> reply."""

    def __init__(self, config: ApiConfig, pool: WorkerPool | None, api_keys: set[str], host: str = "127.0.0.1:3000"):
        self.config = config
        self.pool = pool
        self.api_keys = set(api_keys)
        self.host = host

    # -- API Gateway's own answers
    def gateway_response(
        self, response_type: str, request_id: str, message: str | None = None, status: int | None = None
    ) -> GatewayReply:
        default_status, default_message = GATEWAY_DEFAULTS.get(response_type, (status or 500, "Internal server error"))
        status = status or default_status
        message = message or default_message
        spec = self.config.gateway_responses.get(response_type) or self.config.gateway_responses.get(
            "DEFAULT_4XX" if status < 500 else "DEFAULT_5XX"
        )
        headers = [
            ("Content-Type", "application/json"),
            ("x-amzn-RequestId", request_id),
            ("x-amzn-ErrorType", _error_type(response_type)),
        ]
        body = json.dumps({"message": message})
        if spec is not None:
            status = spec.status or status
            headers += list(spec.headers.items())
            if spec.json_template:
                body = (
                    spec.json_template.replace("$context.error.messageString", json.dumps(message))
                    .replace("$context.error.message", message)
                    .replace("$context.error.responseType", response_type)
                    .replace("$context.requestId", request_id)
                )
        return GatewayReply(status, headers, body.encode("utf-8"))

    def local_error(self, status: int, code: ErrorCode, message: str, request_id: str, like: str) -> GatewayReply:
        """An answer of this server's own, whose cause has no API Gateway response type (the local queue, a slow head,
        a crash of this server): the API's
        error shape and code, the headers (CORS, Retry-After) of the template's `like` response, else of its
        DEFAULT_4XX / DEFAULT_5XX."""
        spec = self.config.gateway_responses.get(like) or self.config.gateway_responses.get(
            "DEFAULT_4XX" if status < 500 else "DEFAULT_5XX"
        )
        headers = [
            ("Content-Type", "application/json"),
            ("x-amzn-RequestId", request_id),
            ("x-amzn-ErrorType", _error_type(like)),
        ]
        if spec is not None:
            headers += list(spec.headers.items())
        if status == 429 and not any(name.lower() == "retry-after" for name, _ in headers):
            headers.append(("Retry-After", "1"))  # a template without one: still tell the client when to retry
        body = {"error": {"code": str(code), "message": message}, "request_id": request_id}
        return GatewayReply(status, headers, json.dumps(body).encode("utf-8"))

    def framing_error(self, status: int, message: str | None = None) -> GatewayReply:
        """400/408/413/414/431 for malformed HTTP, as JSON like the gateway's other answers (408, a head too slow to
        arrive, is this server's own: request_timeout)."""
        response_type, default_message = FRAMING_ERRORS.get(status, ("BAD_REQUEST", "Bad Request"))
        if status == 408:
            return self.local_error(408, ErrorCode.REQUEST_TIMEOUT, message or default_message, str(uuid.uuid4()), "")
        return self.gateway_response(response_type, str(uuid.uuid4()), message or default_message, status)

    def internal_error(self, request_id: str, status: int = 502) -> GatewayReply:
        """The function failed or returned a malformed response: API Gateway's 502 through the template's DEFAULT_5XX
        (bad_gateway). status=500: this server itself failed (internal_error)."""
        if status == 502:
            return self.gateway_response("DEFAULT_5XX", request_id, "Internal server error", 502)
        return self.local_error(status, ErrorCode.INTERNAL_ERROR, "Internal server error", request_id, "DEFAULT_5XX")

    def preflight(self, request_id: str) -> GatewayReply:
        cors = self.config.cors or {}
        headers = [("x-amzn-RequestId", request_id), ("Content-Type", "application/json")]
        for key, header in (
            ("AllowOrigin", "Access-Control-Allow-Origin"),
            ("AllowMethods", "Access-Control-Allow-Methods"),
            ("AllowHeaders", "Access-Control-Allow-Headers"),
            ("MaxAge", "Access-Control-Max-Age"),
        ):
            if key in cors:
                headers.append((header, str(cors[key])))
        return GatewayReply(200, headers, b"")

    # -- the request path
    def handle(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str = "127.0.0.1"
    ) -> GatewayReply:
        request_id = str(uuid.uuid4())
        split = urlsplit(target)
        path = unquote(split.path) or "/"
        query = parse_qsl(split.query, keep_blank_values=True)
        method = method.upper()
        if len(body) > API_GATEWAY_MAX_BODY:
            return self.gateway_response("REQUEST_TOO_LARGE", request_id)
        route, path_params, path_known = self.config.find_route(method, path)
        if route is None:
            if method == "OPTIONS" and path_known and self.config.cors:
                return self.preflight(request_id)
            return self.gateway_response("MISSING_AUTHENTICATION_TOKEN", request_id)
        api_key = _header(headers, "x-api-key")
        if route.api_key_required and (not api_key or api_key not in self.api_keys):
            return self.gateway_response("INVALID_API_KEY", request_id)
        content_type = _header(headers, "content-type")
        binary = self.config.is_binary(content_type)
        # Lambda's 6 MB is on the event: a binary body grows by 4/3 in base64. Refuse before building it.
        least = 4 * ((len(body) + 2) // 3) if binary else len(body)
        if least > LAMBDA_MAX_REQUEST:
            return self._event_too_large(request_id, least, "at least ")
        event = build_event(
            method,
            path,
            route.path,
            headers=headers,
            query=query,
            body=body,
            binary=binary,
            stage=self.config.stage,
            path_parameters=path_params,
            api_key=api_key if route.api_key_required else None,
            source_ip=source_ip,
            host=self.host,
            request_id=request_id,
        )
        payload = json.dumps(event).encode("utf-8")
        del event
        if len(payload) > LAMBDA_MAX_REQUEST:
            return self._event_too_large(request_id, len(payload))
        result = self.pool.invoke(payload, INTEGRATION_TIMEOUT)
        return self.integration_reply(result, request_id)

    def _event_too_large(self, request_id: str, size: int, least: str = "") -> GatewayReply:
        return self.gateway_response(
            "REQUEST_TOO_LARGE",
            request_id,
            message=f"The request becomes {least}a {size}-byte Lambda event; Lambda accepts at most "
            f"{LAMBDA_MAX_REQUEST} bytes (binary bodies grow by 4/3 in base64).",
        )

    def integration_reply(self, result: Result, request_id: str) -> GatewayReply:
        if result.kind == "gateway_timeout":
            return self.gateway_response("INTEGRATION_TIMEOUT", request_id)
        if result.kind == "throttled":
            # This server's queue is full: rate_limited, as the deployed API's per-IP WAF rule. Deployed, a full
            # function is a 503 (template.yaml's INTEGRATION_FAILURE); the template's THROTTLED response (stage and
            # usage-plan limits, which this server does not emulate) gives the headers: Retry-After, CORS.
            return self.local_error(
                429,
                ErrorCode.RATE_LIMITED,
                "Too many requests are waiting for this local server; retry after the Retry-After delay.",
                request_id,
                "THROTTLED",
            )
        if result.kind != "response":
            log.warning(
                "request %s: function failed (%s%s)",
                request_id,
                result.kind,
                f": {result.detail}" if result.detail else "",
            )
            return self.internal_error(request_id)
        try:
            output = json.loads(result.body)
            status = output["statusCode"]
            if isinstance(status, str) and status.isdigit():
                status = int(status)
            if not isinstance(status, int) or not 100 <= status <= 599:
                raise ValueError("statusCode")
            body = output.get("body")
            if body is None:
                data = b""
            elif not isinstance(body, str):
                raise ValueError("body must be a string")
            elif output.get("isBase64Encoded"):
                data = base64.b64decode(body, validate=True)
            else:
                data = body.encode("utf-8")
            reply_headers: list[tuple[str, str]] = []
            seen = set()
            for key, values in (output.get("multiValueHeaders") or {}).items():
                for value in values:
                    reply_headers.append((str(key), str(value)))
                seen.add(str(key).lower())
            for key, value in (output.get("headers") or {}).items():
                if str(key).lower() not in seen:
                    reply_headers.append((str(key), str(value)))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            log.warning("request %s: malformed Lambda proxy response (%s)", request_id, error)
            return self.internal_error(request_id)
        reply_headers.append(("x-amzn-RequestId", request_id))
        return GatewayReply(status, reply_headers, data)


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    name = name.lower()
    for key, value in reversed(headers):
        if key.lower() == name:
            return value
    return None


def _error_type(response_type: str) -> str:
    return {
        "INVALID_API_KEY": "ForbiddenException",
        "MISSING_AUTHENTICATION_TOKEN": "MissingAuthenticationTokenException",
        "REQUEST_TOO_LARGE": "RequestTooLargeException",
        "THROTTLED": "TooManyRequestsException",
    }.get(response_type, "InternalServerErrorException" if response_type.endswith("5XX") else "BadRequestException")


def _escape(text: str, limit: int = LOG_TARGET_CHARS) -> str:
    """Printable ASCII only (control characters, quotes and non-ASCII escaped), at most `limit` characters."""
    escaped = ascii(text)[1:-1].replace('"', '\\"')
    return escaped if len(escaped) <= limit else f"{escaped[:limit]}...({len(escaped)} chars)"


def _log_target(target: str) -> str:
    """The request target for a log line: the path escaped and truncated, the query string redacted."""
    path, question, _query = (target or "").partition("?")
    return _escape(path) + ("?<redacted>" if question else "")


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid delayed-ACK stalls
    gateway: Gateway
    timeout = 60  # seconds of client inactivity (one read) before a connection is dropped
    header_timeout = HEADER_TIMEOUT  # seconds for a whole request line + headers, from their first byte

    # -- no Server banner
    def version_string(self) -> str:
        return ""

    def send_response(self, code, message=None):
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    # -- logs: the method and the path, escaped and truncated; never a header, the query string or the body
    def log_request(self, code="-", size="-"):
        method = _escape(self.command or "-", 16)
        log.info('%s "%s %s" %s', self.client_address[0], method, _log_target(getattr(self, "path", "")), code)

    def log_error(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        log.info("%s - %s", self.client_address[0], _escape(format % args if args else format, 200))

    log_message = log_error

    # -- the head: a deadline for it, limits on its size, strict syntax
    def handle_one_request(self):
        self._head_lock = threading.Lock()
        self._head_done = False
        self._head_timed_out = False
        self.command, self.path, self.request_version = None, "", self.default_request_version
        try:
            if not self.rfile.peek(1):  # idle keep-alive: wait up to `timeout` for a first byte, without a deadline
                self.close_connection = True
                return
        except (TimeoutError, OSError):
            self.close_connection = True
            return
        timer = threading.Timer(self.header_timeout, self._head_deadline)
        timer.daemon = True
        timer.start()
        try:
            super().handle_one_request()
        finally:
            timer.cancel()

    def _head_deadline(self) -> None:
        """The head did not arrive in time: stop reading (the blocked read sees the end); parse_request answers 408."""
        with self._head_lock:
            if self._head_done:
                return
            self._head_timed_out = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RD)

    def parse_request(self) -> bool:
        if len(self.raw_requestline) > MAX_REQUEST_LINE + 2:
            self.send_error(414)
            return False
        parsed = super().parse_request()
        with self._head_lock:
            self._head_done = True
            timed_out = self._head_timed_out
        if timed_out:
            if parsed:
                self.send_error(408)
            return False
        if not parsed:
            return False
        if self.request_version == "HTTP/0.9":
            self.send_error(400, "HTTP/0.9 is not supported")
            return False
        if len(self.raw_requestline) + sum(len(k) + len(v) for k, v in self.headers.items()) > MAX_HEAD_BYTES:
            self.send_error(431)
            return False
        # a line that is not `name: value` ends email's header parsing: the headers after it would be ignored
        cut = any(isinstance(d, email.errors.MissingHeaderBodySeparatorDefect) for d in self.headers.defects)
        if cut or self.headers.get_payload() or not all(TOKEN.fullmatch(k) for k in self.headers):
            self.send_error(400, "Malformed header line")
            return False
        return True

    def send_error(self, code, message=None, explain=None):
        """Every error http.server or this handler raises, as the gateway's JSON; the connection is closed."""
        with self._head_lock:
            if self._head_timed_out:
                code, message = 408, None
        status = code if code in FRAMING_ERRORS else 400
        if message and status == 400:
            message = f"Bad Request: {message}" if message != "Bad Request" else message
        else:
            message = None
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # answer with a status line and headers all the same
            self.request_version = "HTTP/1.1"
        with contextlib.suppress(OSError):
            self._send(self.gateway.framing_error(status, message))

    # -- the body
    def _framing(self) -> tuple[str, int]:
        """("chunked", 0) or ("length", n); FramingError for anything API Gateway would refuse or could read
        differently from this server (the request smuggling cases)."""
        encodings = self.headers.get_all("Transfer-Encoding") or []
        lengths = self.headers.get_all("Content-Length") or []
        if encodings and lengths:
            raise FramingError("Content-Length and Transfer-Encoding together")
        if encodings:
            if len(encodings) != 1 or encodings[0].strip().lower() != "chunked":
                raise FramingError("Transfer-Encoding other than chunked")
            return "chunked", 0
        values = {value.strip() for value in lengths}
        if len(values) > 1:
            raise FramingError("conflicting Content-Length headers")
        if not values:
            return "length", 0
        value = values.pop()
        if not DIGITS.fullmatch(value):
            raise FramingError("Content-Length is not a number")
        return "length", int(value)

    def _read_chunked(self) -> bytes | None:
        chunks, total = [], 0
        while True:
            line = self.rfile.readline(MAX_CHUNK_LINE + 1)
            if not line:
                return None  # the client went away
            found = CHUNK_SIZE.fullmatch(line)
            if found is None:
                raise FramingError("malformed chunk size")
            size = int(found.group(1), 16)
            if size == 0:
                for _ in range(MAX_TRAILERS + 1):
                    trailer = self.rfile.readline(MAX_CHUNK_LINE + 1)
                    if trailer == b"\r\n":
                        return b"".join(chunks)
                    if not trailer.endswith(b"\r\n") or b":" not in trailer:
                        raise FramingError("malformed trailer")
                raise FramingError("too many trailers")
            total += size
            if total > API_GATEWAY_MAX_BODY:
                self._too_large()
                return None
            data = self.rfile.read(size)
            if len(data) < size:
                return None
            chunks.append(data)
            if self.rfile.read(2) != b"\r\n":
                raise FramingError("chunk data longer than its size")

    def _read_body(self) -> bytes | None:
        """The body, or None when it is over the limit (then a 413 has been sent) or the client went away."""
        kind, size = self._framing()
        if kind == "chunked":
            return self._read_chunked()
        if size > API_GATEWAY_MAX_BODY:
            self._too_large()
            return None
        body = self.rfile.read(size) if size else b""
        if len(body) < size:  # client went away mid-upload
            self.close_connection = True
            return None
        return body

    def handle_expect_100(self) -> bool:
        length = self.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > API_GATEWAY_MAX_BODY:
            self._too_large()
            return False
        return super().handle_expect_100()

    def _too_large(self) -> None:
        self.close_connection = True
        self._send(self.gateway.gateway_response("REQUEST_TOO_LARGE", str(uuid.uuid4())))

    def _send(self, reply: GatewayReply) -> None:
        self.send_response(reply.status)
        names = {k.lower() for k, _ in reply.headers}
        for key, value in reply.headers:
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        if "content-type" not in names:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except FramingError as error:  # 400 and close, as API Gateway would, rather than guess the framing
            self.send_error(400, str(error))
            return
        except OSError:
            self.close_connection = True
            return
        if body is None:
            self.close_connection = True
            return
        try:
            reply = self.gateway.handle(
                self.command, self.path, list(self.headers.items()), body, self.client_address[0]
            )
        except Exception:  # the local gateway itself must never take the server down
            log.exception("local gateway error")
            reply = self.gateway.internal_error(str(uuid.uuid4()), status=500)
        del body
        try:
            self._send(reply)
        except OSError:
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _dispatch

    def __getattr__(self, name: str):
        """Any other method (TRACE, CONNECT, made-up ones) goes to the gateway too: API Gateway's "no such
        route" answer, not http.server's HTML 501."""
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)


class LocalServer:
    def __init__(
        self,
        host: str,
        port: int,
        workers: int,
        api_keys: set[str],
        template: Path | None = None,
        model_dir: Path | None = None,
        worker_output=None,
        max_queue: int = DEFAULT_MAX_QUEUE,
        memory_mb: int | None = None,
    ):
        template = template or default_template_path()
        if template is None:
            raise FileNotFoundError("template.yaml not found: run from the repository root or pass --template")
        self.config = load_api_config(template)
        self.template = template
        code_uri = template.parent / "functions" / "classifier"
        environment = dict(os.environ)
        for key, value in self.config.environment.items():
            environment.setdefault(key, value)  # the caller's environment overrides the template's
        environment.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": "hematovision-local-classifier",
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb or self.config.function_memory),
                "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/hematovision-local-classifier",
                "AWS_LAMBDA_LOG_STREAM_NAME": "local",
                "AWS_REGION": environment.get("AWS_REGION", "us-east-1"),
                "AWS_DEFAULT_REGION": environment.get("AWS_DEFAULT_REGION", environment.get("AWS_REGION", "us-east-1")),
                "LAMBDA_TASK_ROOT": str(code_uri),
                "AWS_SAM_LOCAL": "true",
                "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
                "PYTHONUNBUFFERED": "1",
            }
        )
        if model_dir is not None:
            environment["HEMATOVISION_MODEL_DIR"] = str(model_dir)
        if environment.get("HEMATOVISION_MODEL_DIR"):  # workers run in the CodeUri: make a relative path absolute
            environment["HEMATOVISION_MODEL_DIR"] = str(Path(environment["HEMATOVISION_MODEL_DIR"]).resolve())
        environment["PYTHONPATH"] = os.pathsep.join(p for p in (str(code_uri), environment.get("PYTHONPATH", "")) if p)
        self.pool = WorkerPool(
            workers=workers,
            handler=self.config.handler,
            task_root=code_uri if code_uri.is_dir() else Path.cwd(),
            environment=environment,
            function_timeout=self.config.function_timeout,
            worker_output=worker_output,
            max_queue=max_queue,
            memory_limit=MemoryLimit(memory_mb) if memory_mb else None,
        )
        handler = type("HttpHandler", (_HttpHandler,), {})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        bound_host, bound_port = self.httpd.server_address[:2]
        self.url = f"http://{bound_host}:{bound_port}"
        handler.gateway = Gateway(self.config, self.pool, api_keys, host=f"{bound_host}:{bound_port}")
        self._stopped = threading.Event()
        self._serving = threading.Event()
        self.stopping = threading.Event()

    def start_workers(self, ready_timeout: float = 120.0) -> bool:
        self.pool.start()
        return self.pool.wait_ready(ready_timeout, cancel=self.stopping)

    def serve_forever(self) -> None:
        try:
            if not self.stopping.is_set():
                self._serving.set()
                self.httpd.serve_forever(poll_interval=0.2)
        finally:
            self.close()

    def shutdown(self) -> None:
        """Safe from a signal handler: stops serve_forever (from another thread) or the start-up wait."""
        self.stopping.set()
        if self._serving.is_set():
            threading.Thread(target=self.httpd.shutdown, daemon=True).start()

    def close(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.pool.stop()
        self.httpd.server_close()


def resolve_api_keys(cli_keys: list[str] | None) -> tuple[set[str], bool]:
    """Keys from --api-key and HEMATOVISION_API_KEYS; a fresh dev key when none. Returns (keys, generated)."""
    keys = {k.strip() for k in (cli_keys or []) if k and k.strip()}
    keys |= {k.strip() for k in os.environ.get(API_KEYS_ENV, "").split(",") if k.strip()}
    if keys:
        return keys, False
    return {"dev-" + secrets.token_urlsafe(18)}, True


def serve(
    host: str,
    port: int,
    workers: int,
    api_keys: list[str] | None,
    template: str | None = None,
    model_dir: str | None = None,
    quiet: bool = False,
    max_queue: int = DEFAULT_MAX_QUEUE,
    memory_mb: int | None = None,
) -> int:
    """Run the local API. `memory_mb`: cap each worker like a Lambda of that size (0: the template's MemorySize)."""
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    keys, generated = resolve_api_keys(api_keys)
    worker_output = open(os.devnull, "wb") if quiet else None  # noqa: SIM115 - closed at exit
    try:
        template_path = Path(template) if template else None
        if memory_mb == 0:
            memory_mb = load_api_config(template_path or default_template_path() or "template.yaml").function_memory
        server = LocalServer(
            host,
            port,
            workers,
            keys,
            template_path,
            Path(model_dir) if model_dir else None,
            worker_output,
            max_queue=max_queue,
            memory_mb=memory_mb,
        )
    except (OSError, ValueError) as error:
        print(f"hematovision serve: {error}", file=sys.stderr)
        return 2

    def stop(signum, _frame):
        log.info("signal %s: shutting down", signum)
        server.shutdown()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(
        f"HematoVision local API (template {server.template}, {len(server.pool.workers)} awslambdaric worker(s))",
        flush=True,
    )
    ready = server.start_workers()
    errors = server.pool.init_errors()
    if server.stopping.is_set():
        server.close()
        print("Stopped.", flush=True)
        return 0
    if not ready or errors:
        print(
            f"hematovision serve: the function failed to initialise: {'; '.join(errors) or 'timed out'}",
            file=sys.stderr,
            flush=True,
        )
        server.close()
        return 3
    print(f"Listening on {server.url}", flush=True)
    if generated:  # printed once: a new user needs it; keys given by the user are never printed or logged
        print(f"Dev API key (generated): {next(iter(keys))}", flush=True)
        print(f"  pass your own with --api-key KEY or {API_KEYS_ENV}=KEY1,KEY2", flush=True)
    else:
        print(f"API keys: {len(keys)} given (not shown)", flush=True)
    if server.pool.memory_limit is not None:
        print(f"Memory: each worker limited to {server.pool.memory_limit.describe()}", flush=True)
    print(
        "Try, from the repository root: curl -H 'x-api-key: <key>' -H 'Content-Type: image/jpeg' "
        "--data-binary @events/cell.jpg "
        f"{server.url}/v1/classify",
        flush=True,
    )
    print("Press Ctrl-C to stop.", flush=True)
    server.serve_forever()
    print("Stopped.", flush=True)
    return 0
