"""GET / : the upload page for browsers (Accept: text/html), the JSON index for API clients."""

import base64
import hashlib
import re

from hematovision import web

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


def root_event(load_event, accept):
    event = load_event("root")
    event["headers"]["Accept"] = accept
    event["multiValueHeaders"]["Accept"] = [accept]
    return event


def headers_of(response):
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    headers.update({k.lower(): v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()})
    return headers


def test_browsers_get_the_page(api, context, load_event):
    response = api.lambda_handler(root_event(load_event, BROWSER_ACCEPT), context)
    headers = headers_of(response)
    assert response["statusCode"] == 200 and not response.get("isBase64Encoded")
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert response["body"] == web.PAGE_FILE.read_text(encoding="utf-8")
    assert headers["x-content-type-options"] == "nosniff" and headers["vary"] == "Accept"
    assert "Decision support, not a diagnosis" in response["body"]


def test_api_clients_still_get_json(api, context, load_event):
    response = api.lambda_handler(root_event(load_event, "*/*"), context)
    assert response["statusCode"] == 200 and headers_of(response)["content-type"].startswith("application/json")


def test_csp_allows_exactly_the_inline_blocks():
    html, headers = web.page()
    csp = dict(part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";"))
    scripts = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    styles = re.findall(r"<style>(.*?)</style>", html, re.DOTALL)
    assert len(scripts) == 1 and len(styles) == 1
    # no other way to run code or load styles: no attributes with handlers, no <script src>, no inline style=""
    assert not re.search(r"<script\s[^>]*>|\son[a-z]+\s*=|\sstyle\s*=", html)

    def digest(text):
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    assert csp["default-src"] == "'none'"
    assert csp["script-src"] == digest(scripts[0]) and csp["style-src"] == digest(styles[0])
    assert csp["connect-src"] == "'self'" and csp["img-src"] == "blob: data:"
    assert csp["frame-ancestors"] == "'none'" and csp["form-action"] == "'none'"


def test_page_is_self_contained():
    html = web.PAGE_FILE.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href|action)\s*=\s*["'](https?:)?//""", html)
    assert "@import" not in html and "url(" not in html and 'fetch("http' not in html
    for needed in (
        'accept="image/*"',
        'capture="environment"',
        "multiple",
        "localStorage",
        "x-api-key",
        'lang="en"',
        'name="viewport"',
        "Uncertain \\u2014 review manually",
    ):
        assert needed in html, needed
