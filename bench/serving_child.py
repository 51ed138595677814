"""Serving-side measurements, run in the serving venv (.venv) in a process of their own. Never imports TensorFlow.

    python -m bench.serving_child warm --model-dir DIR --threads N --images-file F --result OUT [--profile P]
    python -m bench.serving_child cold --model-dir DIR --image IMG --result OUT

warm: the whole serving path through the real Lambda entry point: a REST proxy event (base64 JPEG body, as
API Gateway sends binary media types) -> hematovision.handlers.api.lambda_handler -> the response dict
JSON-encoded as the runtime does; batch 1 on POST /v1/classify, batch 8 on POST /v1/classify/batch. Also the
bare InferenceSession.run on the same preprocessed images with the handler's own session (the overhead
budget), a per-stage breakdown (each step on its own, and the handler's own calls split by stage:
bench/handler_split.py), and optionally a pyinstrument profile of the batch-1 handler loop.
cold: import the handler module (model load at init) and answer one request; wall time since process start.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from pathlib import Path

T_PROCESS = time.time()  # as early as possible: the orchestrator compares it with its spawn time

from bench.common import LambdaContext, child_parser, peak_rss_mib, run_mode, summary_ms  # noqa: E402

API_KEY = "bench-key"


def api_event(path: str, content_type: str, body: bytes, binary: bool, request_id: str) -> dict:
    """A keyed REST proxy event for `path`, as API Gateway would send it."""
    from hematovision.local.events import build_event

    return build_event(
        "POST",
        path,
        path,
        headers=[("Content-Type", content_type), ("x-api-key", API_KEY)],
        body=body,
        binary=binary,
        stage="v1",
        api_key=API_KEY,
        request_id=request_id,
    )


def raw_event(data: bytes, request_id: str) -> dict:
    return api_event("/v1/classify", "image/jpeg", data, True, request_id)


def batch_event(images: list[bytes], request_id: str) -> dict:
    body = json.dumps({"images": [base64.b64encode(d).decode("ascii") for d in images]}).encode()
    return api_event("/v1/classify/batch", "application/json", body, False, request_id)


def invoke(handler, event: dict, context) -> dict:
    """One invocation as the runtime performs it: call the handler, JSON-encode its result."""
    response = handler(event, context)
    json.dumps(response)
    return response


def check(response: dict, batch: int) -> None:
    if response.get("statusCode") != 200:
        raise RuntimeError(f"handler answered {response.get('statusCode')}: {str(response.get('body'))[:300]}")
    if batch > 1:
        body = json.loads(response["body"])
        if body.get("succeeded") != batch:
            raise RuntimeError(f"batch of {batch}: {body.get('succeeded')} succeeded")


def timed_loop(function, items) -> list[float]:
    durations = []
    for item in items:
        start = time.perf_counter()
        function(item)
        durations.append(time.perf_counter() - start)
    return durations


def groups(sequence: list, size: int) -> list[list]:
    return [sequence[i : i + size] for i in range(0, len(sequence) - size + 1, size)]


def stage_breakdown(api, datas: list[bytes], events: list[dict], context) -> dict:
    """Median milliseconds of each step of the batch-1 path. For each image every step runs once, in turn,
    so that any background load spreads evenly over the steps."""
    import io

    from PIL import Image, ImageOps

    from hematovision.logic.localiser import locate
    from hematovision.logic.preprocessing import decode_for_model, to_model_input

    model = api.MODEL
    size = model.input_size
    names = ["probabilities"] + (["ood_similarity"] if model.has_ood else [])
    steps = {
        "base64 decode of the event body": lambda i: base64.b64decode(events[i]["body"]),
        "JPEG decode (Image.open + load)": lambda i: Image.open(io.BytesIO(datas[i])).load(),
        "decode_for_model (open, load, EXIF, RGB, checks)": lambda i: decode_for_model(datas[i]),
        "ImageOps.exif_transpose (of a decoded image)": lambda i: ImageOps.exif_transpose(decoded[i]),
        "white-cell localisation (logic/localiser.locate)": lambda i: locate(decoded[i]),
        f"resize to {size}x{size} + to array": lambda i: to_model_input(decoded[i], size),
        "onnxruntime session.run": lambda i: model.session.run(names, {"image": arrays[i]}),
        "Classifier.classify (decode .. verdict)": lambda i: api.CLASSIFIER.classify([datas[i]]),
        "lambda_handler + JSON encode (whole path)": lambda i: invoke(api.lambda_handler, events[i], context),
    }
    decoded = [decode_for_model(d, size=size).image for d in datas]
    arrays = [to_model_input(i, size)[None] for i in decoded]
    durations: dict[str, list[float]] = {name: [] for name in steps}
    for index in range(len(datas)):
        for name, step in steps.items():
            start = time.perf_counter()
            step(index)
            durations[name].append(time.perf_counter() - start)
    return {name: summary_ms(values) for name, values in durations.items()}


def large_photo_decode(sample: bytes, repeats: int = 5) -> dict:
    """A phone-size photo (4032x3024 JPEG, the bccd image scaled up): decode + resize as served
    (decode_for_model: libjpeg's DCT-domain downscaling to >= 448 px while decoding) against a full decode
    (decode_image) + the same resize; the mean absolute difference of the two model inputs."""
    import io

    import numpy as np
    from PIL import Image

    from hematovision.logic.preprocessing import decode_for_model, decode_image, to_model_input

    buffer = io.BytesIO()
    Image.open(io.BytesIO(sample)).convert("RGB").resize((4032, 3024), Image.Resampling.BICUBIC).save(
        buffer, "JPEG", quality=90
    )
    data = buffer.getvalue()

    def served():
        return to_model_input(decode_for_model(data).image)

    def full_decode():
        return to_model_input(decode_image(data))

    a, b = served(), full_decode()
    return {
        "bytes": len(data),
        "served": summary_ms(timed_loop(lambda _: served(), range(repeats))),
        "full_decode": summary_ms(timed_loop(lambda _: full_decode(), range(repeats))),
        "mean_abs_diff": round(float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean()), 3),
    }


CATEGORIES = (  # (path fragment, component); the innermost classified frame of each sample decides
    ("onnxruntime", "onnxruntime (inference)"),
    ("PIL/", "Pillow (decode, EXIF, resize)"),
    ("aws_lambda_powertools/logging", "logging (Powertools Logger, JSON)"),
    ("logging/", "logging (Powertools Logger, JSON)"),
    ("aws_lambda_powertools/metrics", "EMF metrics"),
    ("aws_lambda_powertools/event_handler", "routing + OpenAPI validation (Powertools)"),
    ("pydantic", "pydantic models"),
    ("json/", "JSON encode/decode"),
    ("base64", "base64"),
    ("numpy", "numpy"),
    ("hematovision/", "hematovision code"),
    ("bench/", "runtime JSON encode (bench loop)"),
)


# Whole subtrees: everything below these frames (numpy included) is that component's time
OWNERS = (
    ("hematovision/logic/localiser.py", "white-cell localisation (localiser, numpy included)"),
    ("hematovision/logic/cell_crop.py", "cell crop (numpy, Pillow included)"),
)


def _owner(frame) -> str | None:
    walker = frame
    while walker is not None:
        path = (walker.file_path or "").replace("\\", "/")
        for fragment, name in OWNERS:
            if fragment in path:
                return name
        walker = walker.parent
    return None


def components(root) -> dict[str, float]:
    """Seconds per component: each leaf's time goes to the localiser or the cell crop when one of them is an
    ancestor, else to the innermost frame with a known file path."""
    totals: dict[str, float] = {}
    stack = [root]
    while stack:
        frame = stack.pop()
        children = frame.children
        if children:
            stack.extend(children)
            continue
        category, walker = "other", frame
        owner = _owner(frame)
        if owner:
            totals[owner] = totals.get(owner, 0.0) + frame.time
            continue
        while walker is not None:
            path = (walker.file_path or "").replace("\\", "/")
            found = next((c for fragment, c in CATEGORIES if fragment in path), None)
            if found:
                category = found
                break
            walker = walker.parent
        totals[category] = totals.get(category, 0.0) + frame.time
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def profile_handler(api, events: list[dict], context, path: str) -> dict:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    profiler.start()
    for event in events:
        invoke(api.lambda_handler, event, context)
    profiler.stop()
    options = {"filter_threshold": 0.01}
    tree = profiler.output_text(
        unicode=False, color=False, show_all=False, time="percent_of_total", processor_options=options
    )
    flat = profiler.output_text(
        unicode=False, color=False, flat=True, time="percent_of_total", processor_options={"filter_threshold": 0.004}
    )
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(profiler.output_text(unicode=False, color=False, show_all=True))
    session = profiler.last_session
    per_component = components(session.root_frame())
    total = sum(per_component.values()) or 1.0
    return {
        "duration_s": round(session.duration, 3),
        "sample_count": session.sample_count,
        "requests": len(events),
        "components_ms_per_request": {k: round(v * 1000 / len(events), 3) for k, v in per_component.items()},
        "components_share": {k: round(v / total, 4) for k, v in per_component.items()},
        "tree": _strip_banner(tree),
        "flat": _strip_banner(flat),
    }


def _strip_banner(text: str) -> str:
    """Drop pyinstrument's ASCII-art header (the lines before the first blank line after it)."""
    lines = text.splitlines()
    for index, line in enumerate(lines[:12]):
        if line.startswith("Profile at"):
            return "\n".join(lines[index + 1 :]).strip("\n")
    return text


def set_spinning(value: str | None) -> None:
    """Override onnxruntime's intra-op spinning ("0" off, "1" on) in the sessions the handler creates; None leaves
    the shipped options alone. For the power-tuning rows that compare the two under a CPU quota."""
    if value is None:
        return
    import onnxruntime

    from hematovision.logic import inference

    onnxruntime.set_default_logger_severity(3)  # overriding the shipped entry warns otherwise
    shipped = inference.session_options

    def options(threads: int):
        chosen = shipped(threads)
        chosen.add_session_config_entry("session.intra_op.allow_spinning", value)
        return chosen

    inference.session_options = options


def warm(args) -> dict:
    os.environ["HEMATOVISION_MODEL_DIR"] = args.model_dir
    os.environ["HEMATOVISION_INTRA_OP_THREADS"] = str(args.threads)
    set_spinning(args.spinning)
    import numpy as np

    started = time.perf_counter()
    import hematovision.handlers.api as api

    init_s = time.perf_counter() - started

    from hematovision.logic.preprocessing import preprocess

    paths = [line.strip() for line in Path(args.images_file).read_text(encoding="utf-8").splitlines() if line.strip()]
    datas = [Path(p).read_bytes() for p in paths]
    context = LambdaContext()
    events = [raw_event(d, f"bench-{i}") for i, d in enumerate(datas)]
    model = api.MODEL
    arrays = [preprocess(d, size=model.input_size) for d in datas]  # the frame at the model's size: run time only
    names = ["probabilities"] + (["ood_similarity"] if model.has_ood else [])
    result: dict = {
        "model": model.summary,
        "model_dir": args.model_dir,
        "threads": model.threads,
        "init_s": round(init_s, 3),
        "images": len(datas),
        "handler": {},
        "bare": {},
    }

    # warm-up: first runs allocate arenas and page in the weights
    for event in events[: args.warmup]:
        check(invoke(api.lambda_handler, event, context), 1)
    # The handler call and the bare run of the same images alternate, so that any background load weighs on
    # both alike and their ratio (the overhead budget) stays meaningful on a shared machine.
    for batch in args.batches:
        if batch == 1:
            handler_events = events
        else:
            handler_events = [batch_event(g, f"bench-batch-{i}") for i, g in enumerate(groups(datas, batch))]
        stacked = [np.stack(g) for g in groups(arrays, batch)]
        check(invoke(api.lambda_handler, handler_events[0], context), batch)
        for x in stacked[: max(1, args.warmup // batch)]:
            model.session.run(names, {"image": x})
        handler_times, bare_times = [], []
        for event, x in zip(handler_events, stacked, strict=True):
            start = time.perf_counter()
            response = invoke(api.lambda_handler, event, context)
            handler_times.append(time.perf_counter() - start)
            check(response, batch)
            if args.handler_only:  # back-to-back requests, as a busy function sees them (power tuning)
                continue
            start = time.perf_counter()
            model.session.run(names, {"image": x})
            bare_times.append(time.perf_counter() - start)
        result["handler"][str(batch)] = summary_ms(handler_times, per=batch)
        if bare_times:
            result["bare"][str(batch)] = summary_ms(bare_times, per=batch)
        if args.durations:  # each request's milliseconds, for the billing arithmetic (rounded up per request)
            result.setdefault("durations_ms", {})[str(batch)] = [round(t * 1000.0, 3) for t in handler_times]

    result["peak_rss_mib"] = peak_rss_mib()  # before the breakdown, whose 12 MP photo would inflate it
    if args.breakdown:
        result["stages"] = stage_breakdown(api, datas, events, context)
        result["large_photo"] = large_photo_decode(datas[0])
    if args.profile:
        result["profile"] = profile_handler(api, events, context, args.profile)
    if args.breakdown:  # last: it wraps the classify path's stages with timers for the rest of this process
        from bench import handler_split

        result["split"] = handler_split.measure(api, events, context, handler_split.instrument(api), invoke)
    result["tensorflow_imported"] = "tensorflow" in sys.modules
    return result


# The libraries a cold start imports, in the handler's order, each timed on its own (what it adds to the ones
# before it): (phase, modules).
COLD_IMPORTS = (
    ("import numpy", ("numpy",)),
    ("import onnxruntime", ("onnxruntime",)),
    ("import Pillow", ("PIL.Image",)),
    # `import pydantic` alone is lazy: its model machinery loads with the first BaseModel, Field or TypeAdapter
    ("import pydantic", ("pydantic", "pydantic.main", "pydantic.fields", "pydantic.types", "pydantic.type_adapter")),
    ("import Powertools Logger + Metrics", ("aws_lambda_powertools",)),
    (
        "import Powertools event handler + validation",
        (
            "aws_lambda_powertools.event_handler",
            "aws_lambda_powertools.event_handler.openapi.params",
            "aws_lambda_powertools.event_handler.middlewares.openapi_validation",
        ),
    ),
)


def cold(args) -> dict:
    """Fresh process: import the handler (loads the model, as the Lambda init phase does), answer one request.

    Phases: each library's import (COLD_IMPORTS), the handler module's own init (hematovision's modules, the
    routes) without the model load, the model load (file check, session creation), the first answer. A second
    answer to the same event, after the measured ones, shows what part of the first was one-time work."""
    import importlib

    os.environ["HEMATOVISION_MODEL_DIR"] = args.model_dir
    os.environ["HEMATOVISION_INTRA_OP_THREADS"] = str(args.threads)
    set_spinning(args.spinning)
    if args.event:  # prepared by the orchestrator (the built Lambda package has no hematovision.local)
        with open(args.event, encoding="utf-8") as file:
            event = json.load(file)
    else:
        event = raw_event(Path(args.image).read_bytes(), "bench-cold")  # API Gateway's work, not the function's
    phases = {}
    for phase, modules in COLD_IMPORTS:
        start = time.perf_counter()
        for module in modules:
            importlib.import_module(module)
        phases[phase] = time.perf_counter() - start
    start = time.perf_counter()
    import hematovision.handlers.api as api

    handler_init = time.perf_counter() - start
    load = dict(getattr(api.MODEL, "load_seconds", {}))  # a revision without it: all in the handler module's row
    phases["handler module (hematovision code, routes)"] = handler_init - sum(load.values())
    phases.update({f"model load: {name}": seconds for name, seconds in load.items()})
    start = time.perf_counter()
    response = invoke(api.lambda_handler, event, LambdaContext())
    phases["first answer"] = time.perf_counter() - start
    answered_at = time.time()
    cpu_s = time.process_time()  # the process's CPU seconds from its start to the answer
    peak = peak_rss_mib()
    check(response, 1)
    start = time.perf_counter()
    check(invoke(api.lambda_handler, event, LambdaContext()), 1)
    second = time.perf_counter() - start
    return {
        "process_start": T_PROCESS,
        "answered_at": answered_at,
        "phases": phases,
        "second_answer_s": second,
        "label": json.loads(response["body"])["label"],
        "cpu_s": round(cpu_s, 3),
        "peak_rss_mib": peak,
        "tensorflow_imported": "tensorflow" in sys.modules,
        "module_paths": {
            name: sys.modules[name].__file__
            for name in ("numpy", "onnxruntime", "aws_lambda_powertools", "hematovision")
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = child_parser(__doc__.splitlines()[0], "--model-dir")
    parser.add_argument("--breakdown", action="store_true")
    parser.add_argument("--event", help="cold: a prepared API Gateway event (JSON file) instead of building one")
    parser.add_argument("--profile", help="write a pyinstrument profile of the batch-1 handler loop here")
    parser.add_argument("--handler-only", action="store_true", help="warm: no bare session.run between requests")
    parser.add_argument("--durations", action="store_true", help="warm: every request's ms in the result")
    parser.add_argument("--spinning", choices=["0", "1"], help="override onnxruntime's intra-op spinning")
    args = parser.parse_args(argv)
    # The Lambda runtime's own stdout is the log stream: keep the handler's JSON logs out of the result.
    return run_mode(args, warm, cold)


if __name__ == "__main__":
    sys.exit(main())
