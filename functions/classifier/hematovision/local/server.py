"""`hematovision serve`: a local stand-in for API Gateway (REST API, Lambda proxy integration).

Requests become the REST proxy events API Gateway would send (binary media types, API keys per route,
gateway responses and CORS all read from template.yaml), and run on the handler through a pool of
awslambdaric worker processes (hematovision.local.runtime). Limits as deployed: 10 MB request body
(API Gateway), 6 MB invocation payload (Lambda), 29 s integration timeout.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import signal
import sys
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from hematovision.local.events import build_event
from hematovision.local.runtime import Result, WorkerPool
from hematovision.local.template import ApiConfig, default_template_path, load_api_config

log = logging.getLogger("hematovision.local")

API_GATEWAY_MAX_BODY = 10 * 1024 * 1024  # REST API payload quota
LAMBDA_MAX_REQUEST = 6 * 1024 * 1024  # synchronous invoke payload: 6,291,456 bytes
INTEGRATION_TIMEOUT = 29.0
API_KEYS_ENV = "HEMATOVISION_API_KEYS"
# response types and API Gateway's default status/message for them
GATEWAY_DEFAULTS = {
    "MISSING_AUTHENTICATION_TOKEN": (403, "Missing Authentication Token"),
    "INVALID_API_KEY": (403, "Forbidden"),
    "REQUEST_TOO_LARGE": (413, "Request Too Large"),
    "BAD_REQUEST_BODY": (400, "Invalid request body"),
    "INTEGRATION_TIMEOUT": (504, "Endpoint request timed out"),
}


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

    def internal_error(self, request_id: str, status: int = 502) -> GatewayReply:
        """What API Gateway answers when the function fails or returns a malformed response."""
        return GatewayReply(
            status,
            [
                ("Content-Type", "application/json"),
                ("x-amzn-RequestId", request_id),
                ("x-amzn-ErrorType", "InternalServerErrorException"),
            ],
            b'{"message": "Internal server error"}',
        )

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
        event = build_event(
            method,
            path,
            route.path,
            headers=headers,
            query=query,
            body=body,
            binary=self.config.is_binary(content_type),
            stage=self.config.stage,
            path_parameters=path_params,
            api_key=api_key if route.api_key_required else None,
            source_ip=source_ip,
            host=self.host,
            request_id=request_id,
        )
        payload = json.dumps(event).encode("utf-8")
        if len(payload) > LAMBDA_MAX_REQUEST:
            return self.gateway_response(
                "REQUEST_TOO_LARGE",
                request_id,
                message=f"The request becomes a {len(payload)}-byte Lambda event; Lambda accepts at most {LAMBDA_MAX_REQUEST} bytes "
                "(binary bodies grow by 4/3 in base64).",
            )
        result = self.pool.invoke(payload, INTEGRATION_TIMEOUT)
        return self.integration_reply(result, request_id)

    def integration_reply(self, result: Result, request_id: str) -> GatewayReply:
        if result.kind == "gateway_timeout":
            return self.gateway_response("INTEGRATION_TIMEOUT", request_id)
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
    }.get(response_type, "InternalServerErrorException" if response_type.endswith("5XX") else "BadRequestException")


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "HematoVisionLocal/1.0"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid delayed-ACK stalls
    gateway: Gateway
    timeout = 60  # seconds of client inactivity before a connection is dropped

    def log_message(self, format, *args):  # noqa: A002
        log.info("%s - %s", self.address_string(), format % args)

    def handle_expect_100(self) -> bool:
        length = self.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > API_GATEWAY_MAX_BODY:
            self._send(self.gateway.gateway_response("REQUEST_TOO_LARGE", str(uuid.uuid4())))
            self.close_connection = True
            return False
        return super().handle_expect_100()

    def _read_body(self) -> bytes | None:
        """The body, or None when it is over the limit (then a 413 has been sent) or unreadable."""
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            chunks, total = [], 0
            while True:
                size_line = self.rfile.readline(1024)
                if not size_line:
                    return None
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size < 0:  # read(-1) would wait for the client to close the connection
                    raise ValueError("negative chunk size")
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > API_GATEWAY_MAX_BODY:
                    self._too_large()
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(8)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        if not length.strip().isdigit():
            self._send(GatewayReply(400, [("Content-Type", "application/json")], b'{"message": "Bad Request"}'))
            self.close_connection = True
            return None
        size = int(length)
        if size > API_GATEWAY_MAX_BODY:
            self._too_large()
            return None
        body = self.rfile.read(size)
        if len(body) < size:  # client went away mid-upload
            self.close_connection = True
            return None
        return body

    def _too_large(self) -> None:
        self._send(self.gateway.gateway_response("REQUEST_TOO_LARGE", str(uuid.uuid4())))
        self.close_connection = True

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
        except ValueError:  # malformed chunked framing: answer, as API Gateway would, rather than hang up
            self.close_connection = True
            try:
                self._send(GatewayReply(400, [("Content-Type", "application/json")], b'{"message": "Bad Request"}'))
            except OSError:
                pass
            return
        except OSError:
            self.close_connection = True
            return
        if body is None:
            return
        try:
            reply = self.gateway.handle(
                self.command, self.path, list(self.headers.items()), body, self.client_address[0]
            )
        except Exception:  # the local gateway itself must never take the server down
            log.exception("local gateway error")
            reply = self.gateway.internal_error(str(uuid.uuid4()), status=500)
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
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.config.function_memory),
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
) -> int:
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    keys, generated = resolve_api_keys(api_keys)
    worker_output = open(os.devnull, "wb") if quiet else None  # noqa: SIM115 - closed at exit
    try:
        server = LocalServer(
            host,
            port,
            workers,
            keys,
            Path(template) if template else None,
            Path(model_dir) if model_dir else None,
            worker_output,
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
    key_list = ", ".join(sorted(keys))
    print(f"Listening on {server.url}", flush=True)
    print(f"{'Dev API key (generated)' if generated else 'API key(s)'}: {key_list}", flush=True)
    example_key = sorted(keys)[0]
    print(
        f"Try: curl -H 'x-api-key: {example_key}' -H 'Content-Type: image/jpeg' --data-binary @cell.jpg {server.url}/v1/classify",
        flush=True,
    )
    print("Press Ctrl-C to stop.", flush=True)
    server.serve_forever()
    print("Stopped.", flush=True)
    return 0
