"""Browser-test fixtures: `hematovision serve` on a free loopback port + Debian's Chromium via Playwright.

The tests skip (with the reason) only when Chromium is not installed at /usr/bin/chromium, which
.ci/run installs; everything else they need is in requirements-dev.txt.
"""

import pytest

from tests import fakes
from tests.browser.browser_helpers import CSP_PROBE, chromium_path, launch
from tests.integration.serve_helpers import ROOT, start_server, stop_server

ARTIFACTS = ROOT / "test-artifacts" / "browser"


@pytest.fixture(scope="session")
def chromium():
    executable = chromium_path()
    if executable is None:
        pytest.skip(
            "Chromium is not installed (/usr/bin/chromium; `apt-get install chromium`, which .ci/run does): "
            "browser tests skipped"
        )
    return executable


@pytest.fixture(scope="session")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright, chromium)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def fake_model_dir(tmp_path_factory):
    return fakes.build_fake_model(tmp_path_factory.mktemp("fake-model"))


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_model_dir, chromium):
    server = start_server(tmp_path_factory.mktemp("serve"), fake_model_dir, workers=1)
    yield server
    assert stop_server(server) == 0, server.log_path.read_text(errors="replace")[-3000:]


@pytest.fixture
def new_page(browser):
    """Pages in fresh browser contexts (empty local storage), each watching for CSP violations."""
    contexts = []

    def make(**options):
        context = browser.new_context(**options)
        context.add_init_script(CSP_PROBE)
        context.set_default_timeout(30_000)
        contexts.append(context)
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        # intercept file choosers from the start: turning interception on inside expect_file_chooser()
        # races with a keyboard press that opens the chooser at once
        page.on("filechooser", lambda chooser: None)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def artifacts():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
