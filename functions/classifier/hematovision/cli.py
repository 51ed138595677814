"""hematovision: serve the API locally, classify images, analyze whole fields, evaluate a labelled folder.

classify and evaluate use the handler's own code path (hematovision.logic.classifier), in batches; analyze the one of
POST /v1/analyze (hematovision.logic.analysis). `classify --url URL` is instead a client of a running API (deployed
or `hematovision serve`), one POST /v1/classify per file (remote_classify).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

API_KEY_ENV = "HEMATOVISION_API_KEY"  # classify --url: the key (never a command-line argument: ps would show it)


def _image_files(paths: list[str]) -> list[Path]:
    """Files as given; folders scanned recursively for the suffixes of the supported image formats."""
    from hematovision.logic.preprocessing import IMAGE_SUFFIXES

    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            files.append(path)
    return files


def _load_classifier(model_dir: str | None, threads: int | None):
    from hematovision import config
    from hematovision.logic.classifier import Classifier
    from hematovision.logic.inference import Model

    directory = Path(model_dir) if model_dir else config.model_dir()
    return Classifier(Model(directory, intra_op_threads=threads or min(2, os.cpu_count() or 1)))


def _print_classified(path: Path, record: dict, as_json: bool) -> bool:
    """One classify line (the prediction or the file's error); True when it is an error."""
    if "error" in record:
        error = record["error"]
        print(json.dumps(record) if as_json else f"{path}\tERROR {error['code']}: {error['message']}", flush=True)
        return True
    flag = "  (uncertain)" if record["uncertain"] else ""
    print(json.dumps(record) if as_json else f"{path}\t{record['label']}\t{record['confidence']:.3f}{flag}", flush=True)
    return False


def _local_records(classifier, files: list[Path]):
    from hematovision.logic.evaluation import classify_files

    for path, item in classify_files(classifier, files):
        if not item.ok:
            yield path, {"path": str(path), "error": {"code": item.error.code, "message": item.error.message}}
            continue
        v = item.verdict
        yield (
            path,
            {
                "path": str(path),
                "label": v.label,
                "confidence": v.confidence,
                "probabilities": v.probabilities,
                "uncertain": v.uncertain,
                "crop": item.crop,
                "crop_ruler": item.crop_ruler,
            },
        )


# classify --url: the raw-body Content-Type of each image suffix (others are sent as the file is, and the API says 415)
RAW_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".gif": "image/gif",
}
REMOTE_ATTEMPTS = 5  # a retryable answer (see _retryable) is retried, at most this many attempts in all
RETRYABLE_STATUSES = (429, 502, 503, 504)
REMOTE_MAX_WAIT = 30.0


def classify_url(base_url: str) -> str:
    """POST target for a stage URL (…/dev, http://127.0.0.1:3000) or the classify URL itself."""
    base = base_url.rstrip("/")
    return base if base.endswith("/v1/classify") else f"{base}/v1/classify"


def remote_classify(url: str, api_key: str, path: Path, sleep=None) -> dict:
    """One photo through POST /v1/classify: the answer, or {"error": {code, message}} (the API's, or the CLI's own
    for a file or network failure). 429 (but quota_exceeded), 502, 503 and 504 are retried after Retry-After or an
    exponential backoff, with jitter, as the integrator guide (docs/integrating.md) advises."""
    import random
    import time
    import urllib.error
    import urllib.request

    sleep = sleep or time.sleep
    try:
        data = path.read_bytes()
    except OSError as error:
        return {"error": {"code": "unreadable_file", "message": str(error.strerror or error)}}
    content_type = RAW_TYPES.get(path.suffix.lower(), "application/octet-stream")
    headers = {"Content-Type": content_type, "x-api-key": api_key, "Accept": "application/json"}
    for attempt in range(1, REMOTE_ATTEMPTS + 1):
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - the URL the user gives
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            body = error.read()
            if _retryable(error.code, body) and attempt < REMOTE_ATTEMPTS:
                retry_after = error.headers.get("Retry-After", "")
                wait = float(retry_after) if retry_after.replace(".", "", 1).isdigit() else 2.0**attempt
                sleep(min(wait, REMOTE_MAX_WAIT) * random.uniform(1.0, 1.5))
                continue
            try:
                answer = json.loads(body)
                return {"error": {"code": answer["error"]["code"], "message": answer["error"]["message"]}}
            except (ValueError, KeyError, TypeError):
                text = body[:200].decode("utf-8", "replace")
                return {"error": {"code": "unexpected_response", "message": f"HTTP {error.code}: {text}"}}
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            return {"error": {"code": "unreachable", "message": f"{url}: {reason}"}}
    raise AssertionError("not reached: the last attempt returns")


def _retryable(status: int, body: bytes) -> bool:
    """A throttle or a failed/unavailable/slow backend may pass; a spent quota (429 quota_exceeded) only resets with
    its period, and any other 4xx is the request's own fault."""
    if status not in RETRYABLE_STATUSES:
        return False
    try:
        return json.loads(body)["error"]["code"] != "quota_exceeded"
    except (ValueError, KeyError, TypeError):
        return True


def _remote_records(args, files: list[Path]):
    url, api_key = classify_url(args.url), os.environ[API_KEY_ENV].strip()
    for path in files:
        answer = remote_classify(url, api_key, path)
        if "error" in answer:
            yield path, {"path": str(path), "error": answer["error"]}
        else:
            keys = ("label", "confidence", "probabilities", "uncertain", "crop", "crop_ruler")
            yield path, {"path": str(path), **{key: answer.get(key) for key in keys}}


def cmd_classify(args) -> int:
    if args.url and not os.environ.get(API_KEY_ENV, "").strip():
        print(f"hematovision classify --url: set {API_KEY_ENV} to your API key", file=sys.stderr)
        return 2
    classifier = None if args.url else _load_classifier(args.model_dir, args.threads)  # a missing model first
    files = _image_files(args.paths)
    if not files:
        print("no images found", file=sys.stderr)
        return 2
    records = _remote_records(args, files) if args.url else _local_records(classifier, files)
    failures = sum(_print_classified(path, record, args.json) for path, record in records)
    return 1 if failures else 0


def analysis_record(path: Path, result) -> dict:
    """One `analyze --json` line: the file's cells (boxes in the upright original's pixels) and counts, or its error."""
    from hematovision.errors import ClientError

    if isinstance(result, ClientError):
        return {"file": str(path), "error": {"code": result.code, "message": result.message}}
    return {
        "file": str(path),
        "width": result.width,
        "height": result.height,
        "cells": [
            {
                "box": list(cell.box),
                "label": cell.verdict.label,
                "confidence": cell.verdict.confidence,
                "probabilities": cell.verdict.probabilities,
                "uncertain": cell.verdict.uncertain,
                "uncertain_reasons": cell.verdict.uncertain_reasons,
            }
            for cell in result.cells
        ],
        "counts": result.counts,
    }


def _analysis_text(record: dict) -> str:
    if "error" in record:
        return f"{record['file']}\tERROR {record['error']['code']}: {record['error']['message']}"
    cells = record["cells"]
    counts = ", ".join(f"{label} {n}" for label, n in record["counts"].items() if n) or "no white cell found"
    uncertain = sum(1 for c in cells if c["uncertain"])
    lines = [
        f"{record['file']}\t{record['width']}x{record['height']}\t{len(cells)} white cell(s): {counts}"
        + (f" ({uncertain} uncertain)" if uncertain else "")
    ]
    for number, cell in enumerate(cells, start=1):
        flag = "  (uncertain)" if cell["uncertain"] else ""
        box = ", ".join(str(v) for v in cell["box"])
        lines.append(f"  {number:>3}  [{box}]\t{cell['label']}\t{cell['confidence']:.3f}{flag}")
    return "\n".join(lines)


def cmd_analyze(args) -> int:
    """Every white cell of each photo (file or folder), one line of JSON per photo with --json; a failing file gets
    an error line and the run goes on (exit 1 at the end)."""
    from hematovision.errors import ClientError
    from hematovision.logic.analysis import Analyzer, analyze_or_error
    from hematovision.logic.annotate import draw, encode_png
    from hematovision.logic.classifier import Upload

    files = _image_files(args.paths)
    if not files:
        print("no images found", file=sys.stderr)
        return 2
    analyzer = Analyzer(_load_classifier(args.model_dir, args.threads))
    failures = 0
    for path in files:
        try:
            upload = Upload(data=path.read_bytes(), filename=str(path))
        except OSError as error:
            upload = Upload(
                data=None, filename=str(path), error=ClientError("unreadable_file", str(error.strerror or error), 400)
            )
        result = analyze_or_error(analyzer, upload)
        record = analysis_record(path, result)
        failures += "error" in record
        if args.annotate and "error" not in record:
            args.annotate.mkdir(parents=True, exist_ok=True)
            (args.annotate / f"{path.stem}.annotated.png").write_bytes(encode_png(draw(result)))
        print(json.dumps(record) if args.json else _analysis_text(record), flush=True)
    return 1 if failures else 0


def cmd_evaluate(args) -> int:
    from hematovision.logic.evaluation import evaluate_files

    classifier = _load_classifier(args.model_dir, args.threads)
    classes = classifier.model.classes
    root = Path(args.dir)
    files, truth = [], []
    for index, name in enumerate(classes):
        folder = root / name
        if folder.is_dir():
            found = _image_files([str(folder)])
            files += found
            truth += [index] * len(found)
    if not files:
        print(f"no images under {root}/<CLASS>/ for classes {classes}", file=sys.stderr)
        return 2
    metrics = evaluate_files(classifier, files, truth)
    errors = metrics["errors"]
    metrics["classes"] = classes
    metrics["model"] = classifier.model.summary
    if args.json:
        print(json.dumps(metrics))
    else:
        print(
            f"model {metrics['model']['name']} {metrics['model']['version']} on {root}: n={metrics['n']}"
            + (f" ({len(errors)} unreadable)" if errors else "")
        )
        print(
            f"accuracy {metrics['accuracy']:.4f}   macro-F1 {metrics['macro_f1']:.4f}   "
            f"uncertain {metrics['uncertain_fraction']:.2%}"
        )
        print(f"{'class':<12} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}")
        for name in classes:
            c = metrics["per_class"][name]
            print(f"{name:<12} {c['precision']:>9.4f} {c['recall']:>7.4f} {c['f1']:>7.4f} {c['support']:>8}")
        print("confusion matrix (rows = true, columns = predicted):")
        print(" " * 12 + "".join(f"{n[:4]:>7}" for n in classes))
        for name, row in zip(classes, metrics["confusion_matrix"], strict=True):
            print(f"{name:<12}" + "".join(f"{v:>7}" for v in row))
    return 0


def cmd_serve(args) -> int:
    from hematovision.local.server import serve

    return serve(
        args.host,
        args.port,
        args.workers,
        args.api_key,
        template=args.template,
        model_dir=args.model_dir,
        quiet=args.quiet,
        max_queue=args.max_queue,
        memory_mb=args.memory_mb,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hematovision", description="White-blood-cell photo classification (decision support, not a diagnosis)."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API locally: API Gateway + Lambda (awslambdaric) emulation")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=3000, help="0 picks a free port")
    serve.add_argument("--workers", type=int, default=2, help="Lambda execution environments (processes)")
    serve.add_argument(
        "--api-key",
        action="append",
        metavar="KEY",
        help="accepted x-api-key (repeatable; also $HEMATOVISION_API_KEYS, comma-separated)",
    )
    serve.add_argument("--template", help="SAM template to read routes/binary types from (default: ./template.yaml)")
    serve.add_argument("--model-dir", help="model directory (default: the committed model, or $HEMATOVISION_MODEL_DIR)")
    serve.add_argument("--quiet", action="store_true", help="no access log, no function logs")
    serve.add_argument(
        "--max-queue",
        type=int,
        default=16,
        metavar="N",
        help="requests that may wait for a free worker; more get 429 rate_limited with Retry-After (default 16)",
    )
    serve.add_argument(
        "--memory-mb",
        type=int,
        nargs="?",
        const=0,
        metavar="MB",
        help="cap each worker's memory like a Lambda of this size (a cgroup, as root); no MB: template's MemorySize",
    )
    serve.set_defaults(func=cmd_serve)

    analyze = sub.add_parser(
        "analyze",
        help="find and classify every white cell in whole-field photos (files or folders)",
        description="Whole-field smear photos: every white cell's box (upright original pixels), label and the counts.",
    )
    analyze.add_argument("paths", nargs="+", metavar="PATH")
    analyze.add_argument("--json", action="store_true", help="one JSON object per line per image")
    analyze.add_argument(
        "--model-dir", help="model directory (default: the committed model, or $HEMATOVISION_MODEL_DIR)"
    )
    analyze.add_argument("--threads", type=int, help="onnxruntime intra-op threads (default: up to 2)")
    analyze.add_argument(
        "--annotate",
        type=Path,
        metavar="DIR",
        help="also write each photo with its labelled boxes to DIR/<name>.annotated.png (as ?annotate=true)",
    )
    analyze.set_defaults(func=cmd_analyze)

    for name, helptext, func in (
        ("classify", "classify image files or folders", cmd_classify),
        ("evaluate", "evaluate on DIR/<CLASS>/<image> and print metrics", cmd_evaluate),
    ):
        command = sub.add_parser(name, help=helptext)
        if name == "classify":
            command.add_argument("paths", nargs="+", metavar="PATH")
            command.add_argument(
                "--url",
                metavar="URL",
                help=f"classify through the API at URL (the stage URL, e.g. http://127.0.0.1:3000 or "
                f"https://ID.execute-api.REGION.amazonaws.com/dev), not the local model; key from ${API_KEY_ENV}",
            )
        else:
            command.add_argument("dir", metavar="DIR")
        command.add_argument("--json", action="store_true", help="JSON output")
        command.add_argument(
            "--model-dir", help="model directory (default: the committed model, or $HEMATOVISION_MODEL_DIR)"
        )
        command.add_argument("--threads", type=int, help="onnxruntime intra-op threads (default: up to 2)")
        command.set_defaults(func=func)
    return parser


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's final flush raises nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `hematovision analyze DIR | head`: the reader left; stop quietly
        _silence_stdout()
        return 0
    except Exception as error:  # a clean message, not a traceback, for expected failures
        from hematovision.logic.inference import ModelLoadError

        if isinstance(error, ModelLoadError):
            print(f"hematovision: {error}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
