"""Debian's Chromium driven by Playwright for Python (its wheel ships the driver; no browser download).

Used by the browser tests (tests/browser) and by `make screenshot` (tests/browser/readme_screenshot.py).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CHROMIUM_ENV = "HEMATOVISION_CHROMIUM"
# Headless, no sandbox (root in CI), and none of Chromium's background connections: this machine's
# network is closed, and without these flags Chromium keeps trying to reach Google's hosts.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


def chromium_path() -> Path | None:
    """Debian's /usr/bin/chromium (or $HEMATOVISION_CHROMIUM), or None when it is not installed."""
    candidates = [os.environ.get(CHROMIUM_ENV, ""), "/usr/bin/chromium", shutil.which("chromium") or ""]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def launch(playwright, executable: Path):
    """A headless Chromium. Playwright gives every launch a new, empty user-data dir (a temporary profile)."""
    return playwright.chromium.launch(
        executable_path=str(executable),
        headless=True,
        chromium_sandbox=False,
        args=CHROMIUM_ARGS,
    )


# Listens for Content-Security-Policy violations from the first moment of every page (init scripts
# run outside the page's CSP), so a test can assert that the page's own inline code is allowed.
CSP_PROBE = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || ''));
});
"""
