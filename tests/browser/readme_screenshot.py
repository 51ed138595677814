"""The README screenshot: the upload page showing REAL predictions on real bccd images.

    make screenshot            # = .venv/bin/python -m tests.browser.readme_screenshot docs/screenshot.png

It is a module of the tests package, so it runs with -m from the repository root.

Starts `hematovision serve` with the committed model (functions/classifier/model), picks from
../shared/data/bccd/TEST_SIMPLE images the model labels correctly and confidently (asking the API),
uploads them through the page in headless Chromium, and saves a palette PNG (< 200 KB).
Refuses to run on a model whose card has no metrics (the random-weights stand-in or a partial export).
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
from pathlib import Path

from tests.browser.browser_helpers import chromium_path, launch
from tests.integration.serve_helpers import API_KEY, REAL_MODEL_DIR, SHARED_DATA, start_server, stop_server

TEST_SIMPLE = SHARED_DATA / "bccd" / "TEST_SIMPLE"
MAX_BYTES = 200_000


def real_model_ready(model_dir: Path = REAL_MODEL_DIR) -> bool:
    """The trained model has landed: the .onnx and a model card with non-empty metrics."""
    try:
        card = json.loads((model_dir / "model_card.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (model_dir / "hematovision.onnx").is_file() and bool(card.get("metrics"))


def model_classes(model_dir: Path = REAL_MODEL_DIR) -> list[str]:
    return list(json.loads((model_dir / "model_card.json").read_text(encoding="utf-8"))["classes"])


def confident_examples(server, classes: list[str], per_class: int = 1, tries: int = 12) -> list[tuple[str, Path, dict]]:
    """(true class, path, API answer) of images the API labels correctly and not uncertain, per class."""
    chosen = []
    for name in classes:
        found = 0
        for path in sorted((TEST_SIMPLE / name).iterdir())[:tries]:
            status, answer = server.json("POST", "/v1/classify", path.read_bytes(), {"Content-Type": "image/jpeg"})
            if status == 200 and answer["label"] == name and not answer["uncertain"]:
                chosen.append((name, path, answer))
                found += 1
                if found == per_class:
                    break
    return chosen


def open_page(browser, server, **context_options):
    context = browser.new_context(**context_options)
    page = context.new_page()
    page.on("filechooser", lambda chooser: None)  # interception on from the start
    page.goto(server.url + "/")
    page.get_by_label("Your API key").fill(API_KEY)
    page.get_by_role("button", name="Save key").click()
    return context, page


def upload(page, paths: list[Path]) -> None:
    with page.expect_file_chooser() as chooser_info:
        page.get_by_role("button", name="Choose photos").click()
    chooser_info.value.set_files([str(p) for p in paths])


def save_small_png(png: bytes, out: Path, limit: int = MAX_BYTES) -> int:
    """Quantise to a palette (fewer colours until it fits the limit) and write `out`."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    for colours in (256, 128, 64, 32):
        buffer = io.BytesIO()
        image.quantize(colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            buffer, format="PNG", optimize=True
        )
        if buffer.tell() <= limit:
            break
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buffer.getvalue())
    return buffer.tell()


def take_screenshot(out: Path, model_dir: Path = REAL_MODEL_DIR) -> int:
    from playwright.sync_api import expect, sync_playwright

    if not real_model_ready(model_dir):
        raise SystemExit(f"no trained model with metrics in {model_dir}: the screenshot must show a real prediction")
    executable = chromium_path()
    if executable is None:
        raise SystemExit("Chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp), model_dir, workers=1)
        try:
            examples = confident_examples(server, model_classes(model_dir))
            # two cards: a neutrophil and an eosinophil when available (the paper's hardest pair)
            preferred = sorted(examples, key=lambda e: (e[0] not in ("NEUTROPHIL", "EOSINOPHIL"), e[0]))[:2]
            if not preferred:
                raise SystemExit("the model labelled none of the first TEST_SIMPLE images correctly and confidently")
            with sync_playwright() as playwright:
                browser = launch(playwright, executable)
                context, page = open_page(
                    browser, server, viewport={"width": 960, "height": 900}, device_scale_factor=1, color_scheme="light"
                )
                page.get_by_label("Also compute a heatmap").check()
                upload(page, [path for _, path, _ in preferred])
                expect(page.locator(".card .label")).to_have_count(len(preferred), timeout=60_000)
                # show the heatmap overlay on the first card
                page.locator(".card").first.get_by_role("button", name="Show heatmap").click()
                page.evaluate("document.activeElement.blur()")
                page.locator("#status").evaluate("e => e.textContent = ''")
                png = page.screenshot(full_page=True)
                browser.close()
        finally:
            stop_server(server)
    size = save_small_png(png, out)
    print(f"wrote {out} ({size} bytes): " + ", ".join(f"{p.name} ({truth})" for truth, p, _ in preferred))
    return size


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="docs/screenshot.png", type=Path)
    parser.add_argument("--model-dir", default=REAL_MODEL_DIR, type=Path)
    args = parser.parse_args(argv)
    take_screenshot(args.out, args.model_dir)


if __name__ == "__main__":
    main()
