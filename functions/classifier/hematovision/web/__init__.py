"""The upload page served at `GET /` (index.html next to this file), read once per process.

The page is self-contained: inline CSS and JavaScript, no external resources, no build step. Its
Content-Security-Policy allows exactly the inline <style> and <script> blocks of this file (by their
SHA-256 hashes, computed here when the file is read), images from blob:/data: URLs (thumbnails and
heatmaps) and requests to the page's own origin (the API). Nothing else: no other scripts, styles,
frames, fonts, form targets or plugins.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache
from pathlib import Path

PAGE_FILE = Path(__file__).resolve().parent / "index.html"

_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


def _hashes(html: str, tag: str) -> list[str]:
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii") + "'"
        for kind, body in _INLINE.findall(html)
        if kind == tag
    ]


def content_security_policy(html: str) -> str:
    return "; ".join(
        [
            "default-src 'none'",
            "script-src " + " ".join(_hashes(html, "script") or ["'none'"]),
            "style-src " + " ".join(_hashes(html, "style") or ["'none'"]),
            "img-src blob: data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


@lru_cache(maxsize=1)
def page() -> tuple[str, dict[str, str]]:
    """(html, response headers) for the upload page."""
    html = PAGE_FILE.read_text(encoding="utf-8")
    headers = {
        "Content-Security-Policy": content_security_policy(html),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
        "Vary": "Accept",
    }
    return html, headers
