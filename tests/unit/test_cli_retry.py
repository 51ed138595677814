"""`hematovision classify --url`: which answers of a deployed API the CLI retries (docs/integrating.md "Retries")."""

import io
import json
import urllib.error
import urllib.request

import pytest

from hematovision import cli


def http_error(status: int, code: str, retry_after: str | None = None) -> urllib.error.HTTPError:
    body = json.dumps({"error": {"code": code, "message": code}, "request_id": "r"}).encode()
    headers = {"Retry-After": retry_after} if retry_after else {}
    return urllib.error.HTTPError("http://api/v1/classify", status, code, headers, io.BytesIO(body))


class Answer:
    def __init__(self, payload: dict):
        self.payload = payload

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self):
        return json.dumps(self.payload).encode()


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "cell.jpg"
    path.write_bytes(b"\xff\xd8\xff")
    return path


def replies(monkeypatch, *answers):
    """urlopen answers these in turn (an HTTPError is raised); returns the list of calls made."""
    calls = []

    def urlopen(request, timeout):
        calls.append(request.full_url)
        answer = answers[len(calls) - 1]
        if isinstance(answer, Exception):
            raise answer
        return Answer(answer)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)  # remote_classify imports it at call time
    return calls


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (429, "throttled"),
        (429, "rate_limited"),
        (502, "bad_gateway"),
        (503, "service_unavailable"),
        (504, "gateway_timeout"),
    ],
)
def test_a_throttle_or_a_backend_failure_is_retried(monkeypatch, photo, status, code):
    calls = replies(monkeypatch, http_error(status, code, "1"), {"label": "NEUTROPHIL"})
    waits = []
    assert cli.remote_classify("http://api/v1/classify", "k", photo, sleep=waits.append) == {"label": "NEUTROPHIL"}
    assert len(calls) == 2 and len(waits) == 1 and 1.0 <= waits[0] <= 1.5


@pytest.mark.parametrize(
    ("status", "code"),
    [(429, "quota_exceeded"), (403, "invalid_api_key"), (413, "payload_too_large"), (500, "internal_error")],
)
def test_a_spent_quota_or_a_client_error_is_not_retried(monkeypatch, photo, status, code):
    calls = replies(monkeypatch, http_error(status, code), {"label": "NEUTROPHIL"})
    answer = cli.remote_classify("http://api/v1/classify", "k", photo, sleep=lambda s: None)
    assert answer == {"error": {"code": code, "message": code}} and len(calls) == 1


def test_retries_stop_after_the_last_attempt(monkeypatch, photo):
    calls = replies(monkeypatch, *[http_error(503, "service_unavailable") for _ in range(cli.REMOTE_ATTEMPTS)])
    answer = cli.remote_classify("http://api/v1/classify", "k", photo, sleep=lambda s: None)
    assert answer["error"]["code"] == "service_unavailable" and len(calls) == cli.REMOTE_ATTEMPTS
