"""The upload page at GET /, used the way a person uses it, in headless Chromium against `hematovision serve`.

The server runs the random-weights stand-in model (tests/fakes.py): these tests never assert which
label it predicts, only that the page shows a prediction, errors, the key prompt and so on. The
real-model check (the right label for a real bccd image) is in test_browser_real_model.py.
"""

import json
import re

import pytest
from playwright.sync_api import expect

from tests import fakes
from tests.integration.serve_helpers import API_KEY, start_server, stop_server

JPEG = fakes.synthetic_cell()
CLASS_NAMES = ["Eosinophil", "Lymphocyte", "Monocyte", "Neutrophil"]
NAME_PATTERN = re.compile("^(" + "|".join(CLASS_NAMES) + ")$")


def jpeg(name="cell.jpg", data=JPEG):
    return {"name": name, "mimeType": "image/jpeg", "buffer": data}


def choose(page, *files):
    """Click "Choose photos" and pick the files in the file chooser, as a user does."""
    with page.expect_file_chooser() as chooser_info:
        page.get_by_role("button", name="Choose photos").click()
    chooser = chooser_info.value
    assert chooser.is_multiple()
    chooser.set_files(list(files))


def save_key(page, key=API_KEY):
    page.get_by_label("Your API key").fill(key)
    page.get_by_role("button", name="Save key").click()
    expect(page.locator("#key-saved")).to_be_visible()


def assert_clean(page):
    assert page.evaluate("window.__cspViolations") == [], "Content-Security-Policy blocked part of the page"
    assert page.errors == [], page.errors


def test_page_is_served_self_contained(server):
    status, headers, body = server.request(
        "GET", "/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, key=None
    )
    html = body.decode("utf-8")
    assert status == 200 and headers["content-type"].startswith("text/html")
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'sha256-" in csp and "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    # no external resources: no URL with a scheme or protocol-relative in src/href, no imports
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:)?//""", html), "the page loads something from elsewhere"
    assert "@import" not in html and "url(" not in html
    # API clients (curl's Accept: */*) still get the JSON index
    status, index = server.json("GET", "/", key=None)
    assert status == 200 and index["endpoints"]["classify"] == "POST /v1/classify"


def test_missing_key_shows_prompt_then_keyboard_only_flow(server, new_page):
    page = new_page()
    requests = []
    page.on("request", lambda request: requests.append(request))
    page.goto(server.url + "/")
    expect(page.get_by_text("Decision support, not a diagnosis.")).to_be_visible()
    expect(page.locator("#key-prompt")).to_be_hidden()

    choose(page, jpeg("smear.jpg"))
    prompt = page.locator("#key-prompt")
    expect(prompt).to_be_visible()
    expect(prompt).to_contain_text("Enter your API key")
    expect(page.get_by_label("Your API key")).to_be_focused()
    expect(page.locator(".card .pending")).to_have_text("Waiting for an API key.")
    assert not [r for r in requests if "/v1/classify" in r.url], "sent a request without a key"

    # keyboard only from here: type the key, Enter, and the waiting photo is classified
    page.keyboard.type(API_KEY)
    page.keyboard.press("Enter")
    card = page.locator(".card").first
    expect(card.locator(".label")).to_have_text(NAME_PATTERN)
    expect(card.locator("ul.bars li")).to_have_count(4)
    expect(page.locator("#key-saved")).to_be_visible()
    expect(page.get_by_role("button", name="Choose photos")).to_be_focused()
    assert page.evaluate("localStorage.getItem('hematovision.apiKey')") == API_KEY

    calls = [r for r in requests if "/v1/classify" in r.url]
    assert len(calls) == 1 and API_KEY not in calls[0].url and API_KEY not in page.url
    assert calls[0].headers["x-api-key"] == API_KEY

    # Tab reaches the file button and Enter opens the file chooser (no mouse)
    page.get_by_role("button", name="Change key").focus()
    for _ in range(6):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "choose":
            break
    assert page.evaluate("document.activeElement.id") == "choose"
    with page.expect_file_chooser() as chooser_info:
        page.keyboard.press("Enter")
    chooser_info.value.set_files([jpeg("second.jpg", fakes.synthetic_cell(seed=3))])
    expect(page.locator(".card")).to_have_count(2)
    expect(page.locator(".card").first.locator(".label")).to_have_text(NAME_PATTERN)

    # the key survives a reload (local storage) and is never put in the address
    page.reload()
    expect(page.locator("#key-saved")).to_contain_text("ending in " + API_KEY[-4:])
    assert_clean(page)


def test_several_images_dropped_at_once(server, new_page):
    page = new_page()
    page.goto(server.url + "/")
    save_key(page)
    files = [jpeg(f"cell-{i}.jpg", fakes.synthetic_cell(seed=i)) for i in range(3)]
    # a real drop event carrying the files (DataTransfer built in the page)
    data_transfer = page.evaluate_handle(
        """files => { const dt = new DataTransfer();
            for (const f of files) {
                const bytes = Uint8Array.from(atob(f.b64), c => c.charCodeAt(0));
                dt.items.add(new File([bytes], f.name, {type: 'image/jpeg'}));
            }
            return dt; }""",
        [{"name": f["name"], "b64": __import__("base64").b64encode(f["buffer"]).decode()} for f in files],
    )
    page.dispatch_event("#drop", "dragenter", {"dataTransfer": data_transfer})
    expect(page.locator("#drop")).to_have_class(re.compile(r"\bover\b"))
    page.dispatch_event("#drop", "drop", {"dataTransfer": data_transfer})
    expect(page.locator(".card")).to_have_count(3)
    for index in range(3):
        card = page.locator(".card").nth(index)
        expect(card.locator(".label")).to_have_text(NAME_PATTERN)
        expect(card.locator("img")).to_have_attribute("alt", re.compile(r"^Uploaded photo cell-\d\.jpg$"))
        widths = card.locator(".fill").evaluate_all("els => els.map(e => parseFloat(e.style.width))")
        assert len(widths) == 4 and abs(sum(widths) - 100) < 1.5
    assert_clean(page)


@pytest.mark.parametrize(
    "name, mime, data, status, message",
    [
        ("notes.txt", "text/plain", b"hello, I am a text file\n", 415, "not a supported image (415)"),
        ("broken.jpg", "image/jpeg", JPEG[: len(JPEG) // 3], 422, "could not be used (422)"),
        ("huge.raw", "application/octet-stream", b"\0" * (5 * 1024 * 1024), 413, "too large (413)"),
    ],
)
def test_bad_files_show_the_error(server, new_page, name, mime, data, status, message):
    page = new_page()
    page.goto(server.url + "/")
    save_key(page)
    with page.expect_response(lambda r: "/v1/classify" in r.url) as response_info:
        choose(page, {"name": name, "mimeType": mime, "buffer": data})
    assert response_info.value.status == status
    card = page.locator(".card").first
    expect(card.get_by_role("alert")).to_contain_text(message)
    expect(card).to_have_attribute("data-status", str(status))
    if not mime.startswith("image/"):
        expect(card.locator(".noprev")).to_have_text("No preview of this file")
    assert_clean(page)


def test_refused_key_asks_again_and_resends(server, new_page):
    page = new_page()
    page.goto(server.url + "/")
    save_key(page, "not-a-valid-key")
    choose(page, jpeg())
    card = page.locator(".card").first
    expect(card.get_by_role("alert")).to_contain_text("API key was refused (403)")
    expect(page.locator("#key-prompt")).to_contain_text("The API key was refused")
    expect(page.get_by_label("Your API key")).to_be_focused()
    save_key(page, API_KEY)
    expect(card.locator(".label")).to_have_text(NAME_PATTERN)
    assert_clean(page)


ERRORS = [
    (
        400,
        {"error": {"code": "invalid_request", "message": "Invalid query.explain"}, "request_id": "r-400"},
        "not accepted (400): Invalid query.explain",
    ),
    (403, {"message": "Forbidden"}, "API key was refused (403)"),
    (
        403,
        {"error": {"code": "invalid_api_key", "message": "Forbidden"}, "request_id": "r-403"},
        "API key was refused (403)",
    ),
    (
        413,
        {"error": {"code": "payload_too_large", "message": "Request Too Large"}, "request_id": "r-413"},
        "too large (413)",
    ),
    (
        415,
        {"error": {"code": "unsupported_image", "message": "Not an image."}, "request_id": "r-415"},
        "not a supported image (415)",
    ),
    (
        422,
        {"error": {"code": "image_too_small", "message": "The image is 8x8."}, "request_id": "r-422"},
        "could not be used (422): The image is 8x8.",
    ),
    (429, {"message": "Too Many Requests"}, "Too many requests"),
    (
        500,
        {"error": {"code": "internal_error", "message": "Internal error"}, "request_id": "r-500"},
        "service failed (500)",
    ),
    (502, {"message": "Internal server error"}, "service failed (502)"),
    (503, None, "service failed (503)"),
    (
        504,
        {"error": {"code": "INTEGRATION_TIMEOUT", "message": "Endpoint request timed out"}},
        "took too long to answer (504)",
    ),
    (0, None, "Could not reach the service"),
]


@pytest.mark.parametrize(
    "status, body, message", ERRORS, ids=[f"{s or 'network'}-{i}" for i, (s, _, _) in enumerate(ERRORS)]
)
def test_every_error_status_has_a_clear_message(server, new_page, status, body, message):
    """Statuses the local server cannot produce on demand (429, 5xx, network) answered by a stub route."""
    page = new_page()
    page.goto(server.url + "/")
    save_key(page)

    def answer(route):
        if status == 0:
            route.abort("connectionrefused")
        else:
            route.fulfill(
                status=status, content_type="application/json", body=json.dumps(body) if body is not None else ""
            )

    page.route("**/v1/classify*", answer)
    choose(page, jpeg())
    alert = page.locator(".card").first.get_by_role("alert")
    expect(alert).to_contain_text(message)
    if body and body.get("request_id"):
        expect(page.locator(".card").first.locator(".meta")).to_contain_text(body["request_id"])
    if status in (0, 429) or status >= 500:
        expect(page.locator(".card").first.get_by_role("button", name="Try again")).to_be_visible()
    assert_clean(page)


@pytest.fixture(scope="module")
def uncertain_server(tmp_path_factory, fake_model_dir, chromium):
    """Every prediction flagged: a confidence threshold of 1.0 (HEMATOVISION_UNCERTAINTY_THRESHOLD)."""
    server = start_server(
        tmp_path_factory.mktemp("serve-uncertain"),
        fake_model_dir,
        workers=1,
        extra_env={"HEMATOVISION_UNCERTAINTY_THRESHOLD": "1.0"},
    )
    yield server
    assert stop_server(server) == 0


def test_uncertain_badge_and_heatmap_on_a_phone(uncertain_server, new_page, artifacts):
    page = new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True)
    page.goto(uncertain_server.url + "/")
    save_key(page)
    page.get_by_label("Also compute a heatmap").check()
    camera = page.locator("#camera-input")
    assert camera.get_attribute("capture") == "environment" and camera.get_attribute("accept") == "image/*"
    choose(page, jpeg("smear-photo.jpg"))
    card = page.locator(".card").first
    expect(card.locator(".label")).to_have_text(NAME_PATTERN)
    expect(card.locator(".badge")).to_contain_text("Uncertain \u2014 review manually")
    expect(card.locator(".badge")).to_contain_text("low confidence")
    expect(card.locator(".desc")).not_to_be_empty()

    # heatmap toggle: swaps the photo for the overlay and back, with matching alt texts
    toggle = card.get_by_role("button", name="Show heatmap")
    toggle.click()
    image = card.locator("img")
    expect(image).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    expect(image).to_have_attribute("alt", re.compile(r"^Heatmap of the regions that drove the \w+ prediction"))
    expect(card.get_by_role("button", name="Show photo")).to_have_attribute("aria-pressed", "true")

    # fits a phone: no sideways scrolling, every image has an alt text, every button a name
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.evaluate("[...document.images].every(i => i.alt.trim().length > 0)")
    assert page.evaluate("[...document.querySelectorAll('button')].every(b => b.textContent.trim().length > 0)")
    path = artifacts / "phone.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    card.get_by_role("button", name="Show photo").click()
    expect(image).to_have_attribute("src", re.compile(r"^blob:"))
    assert_clean(page)


def test_a_field_with_two_cells_shows_boxes_counts_and_each_cell(server, new_page, artifacts):
    """events/field.jpg (a bccd field with two white cells): classify flags multiple_cells, so the page analyses
    the photo as a whole field on its own, draws a numbered box per cell over the photo, the counts table and
    one card per cell. The stand-in model's labels are random: only the structure is asserted."""
    from pathlib import Path

    field = Path(__file__).resolve().parents[2] / "events" / "field.jpg"
    page = new_page(viewport={"width": 1000, "height": 900})
    page.goto(server.url + "/")
    save_key(page)
    choose(page, jpeg("field.jpg", field.read_bytes()))
    card = page.locator(".card")
    expect(card.locator(".label-line .label")).to_have_text("2 white cells", timeout=60_000)
    expect(card.locator(".box")).to_have_count(2)
    expect(card.locator(".box span").first).to_have_text(re.compile(r"^1 (EOS|LYM|MONO|NEU)\??$"))
    photo = card.locator("figure img").bounding_box()
    for box in card.locator(".box").all():  # drawn over the photo, where the cells are
        frame = box.bounding_box()
        assert photo["x"] - 3 <= frame["x"] and frame["x"] + frame["width"] <= photo["x"] + photo["width"] + 3
        assert photo["y"] - 3 <= frame["y"] and frame["y"] + frame["height"] <= photo["y"] + photo["height"] + 3
    rows = card.locator("table.counts tr[data-label]")
    expect(rows).to_have_count(4)
    counts = rows.locator("td.n").evaluate_all("cells => cells.map(c => c.textContent)")
    assert sum(int(n) for n in counts[::2]) == 2
    expect(card.locator("ol.cells li.cell")).to_have_count(2)
    expect(card.locator("ol.cells li.cell").first.locator(".fill")).to_have_count(4)
    page.screenshot(path=str(artifacts / "whole-field.png"), full_page=True)
    assert_clean(page)


def test_whole_field_box_sends_every_photo_to_analyze(server, new_page):
    page = new_page()
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(server.url + "/")
    save_key(page)
    page.get_by_label(re.compile("^Whole field")).check()
    choose(page, jpeg("one-cell.jpg"))
    expect(page.locator(".card .label-line .label")).to_have_text(
        re.compile(r"^(No white cell found|\d+ white cells?)$")
    )
    assert any(url.endswith("/v1/analyze") for url in requests) and not any("/v1/classify" in u for u in requests)
    page.reload()  # the choice is remembered
    expect(page.get_by_label(re.compile("^Whole field"))).to_be_checked()
    assert_clean(page)
