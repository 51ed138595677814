"""Builds API Gateway REST API (v1) Lambda proxy events, as API Gateway sends them."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

API_ID = "local000ap"
ACCOUNT_ID = "123456789012"


def _single_and_multi(pairs: Iterable[tuple[str, str]]) -> tuple[dict | None, dict | None]:
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        multi.setdefault(key, []).append(value)
    if not multi:
        return None, None
    return {k: v[-1] for k, v in multi.items()}, multi


def build_event(
    method: str,
    path: str,
    resource: str,
    headers: Iterable[tuple[str, str]] = (),
    query: Iterable[tuple[str, str]] = (),
    body: bytes | None = None,
    binary: bool = False,
    stage: str = "local",
    path_parameters: dict[str, str] | None = None,
    api_key: str | None = None,
    source_ip: str = "127.0.0.1",
    host: str = "127.0.0.1:3000",
    request_id: str | None = None,
    now: float | None = None,
    scheme: str = "http",
) -> dict:
    """`binary`: the Content-Type matched a binary media type, so the body is base64 with isBase64Encoded.

    Otherwise API Gateway passes the body as (UTF-8) text.
    """
    now = time.time() if now is None else now
    request_id = request_id or str(uuid.uuid4())
    header_pairs = list(headers)
    lowered = {k.lower() for k, _ in header_pairs}
    trace_id = f"Root=1-{int(now):08x}-{uuid.uuid4().hex[:24]}"
    for name, value in (
        ("X-Amzn-Trace-Id", trace_id),
        ("X-Forwarded-For", source_ip),
        ("X-Forwarded-Port", host.rsplit(":", 1)[1] if ":" in host else ("443" if scheme == "https" else "80")),
        ("X-Forwarded-Proto", scheme),
        ("Host", host),
    ):
        if name.lower() not in lowered:
            header_pairs.append((name, value))
    single_headers, multi_headers = _single_and_multi(header_pairs)
    single_query, multi_query = _single_and_multi(query)
    user_agent = next((v for k, v in header_pairs if k.lower() == "user-agent"), None)
    if body is None or body == b"":
        event_body, is_base64 = None, False
    elif binary:
        event_body, is_base64 = base64.b64encode(body).decode("ascii"), True
    else:
        event_body, is_base64 = body.decode("utf-8", errors="replace"), False
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method.upper(),
        "headers": single_headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": single_query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": uuid.uuid5(uuid.NAMESPACE_URL, resource).hex[:6],
            "resourcePath": resource,
            "httpMethod": method.upper(),
            "extendedRequestId": base64.b32encode(uuid.uuid4().bytes)[:16].decode("ascii"),
            "requestTime": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": f"/{stage}{path}",
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": host.split(":", 1)[0],
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": user_agent,
                "user": None,
                "apiKey": api_key,
                "apiKeyId": None if api_key is None else "local-" + uuid.uuid5(uuid.NAMESPACE_OID, api_key).hex[:10],
            },
            "domainName": host,
            "deploymentId": "local",
            "apiId": API_ID,
        },
        "body": event_body,
        "isBase64Encoded": is_base64,
    }
