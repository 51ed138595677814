"""Where one warm POST /v1/classify's time goes, stage by stage inside the real handler's own calls (issue #19).

    python -m bench.handler_split [--images 200] [--threads 1] [--model-dir DIR] [--result OUT.json]

The acceptance is handler <= session.run + 3 ms, decode, localisation and crop included. This splits each handler
call into the stages the classify path runs, timed where the handler calls them (the functions are wrapped by a
timer for the measurement; nothing else changes):
- decode: Classifier.decode_upload (Image.open, the JPEG draft, load, EXIF orientation, RGB);
- localise: logic/classifier.locate_or_none (the whole-field localiser, for the multiple_cells / no_cell flags and,
  for a cell model, the crop);
- crop + resize: Classifier.model_input (the whole frame resized, or the best cell's crop);
- session.run: the handler's own InferenceSession.run;
- the rest of Classifier.classify: the call around those stages minus them (stacking the batch, the verdict, the
  localiser's flags);
- the HTTP layer: the whole call minus Classifier.classify (Powertools routing and validation, the event body's
  base64, request parsing, pydantic response models, JSON, the log line, EMF metrics), the JSON encoding of the
  response included, as the runtime does it.
Wall and CPU (thread) milliseconds per request, medians over the images; with 1 intra-op thread onnxruntime runs
on the calling thread, so the CPU column holds the model too. On a loaded machine the CPU column is the steadier
one, and the shares of one run are the claim, not the absolute figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from bench.common import DEFAULT_DATA, DEFAULT_MODEL_DIR, LambdaContext, test_images
from bench.report import HANDLER_EXTRA_MS, split_lines

STAGES = ("decode", "localise", "crop + resize", "session.run")
CLASSIFY = "Classifier.classify"  # timed too, around the stages: what it adds is a row of its own
CLASSIFY_REST = "the rest of Classifier.classify (batching, verdict, flags)"
HTTP = "the HTTP layer (routing, validation, body base64, parsing, response models, JSON, logging, metrics)"
WHOLE = "whole handler call + JSON encode"


class StageClock:
    """Accumulates wall and thread-CPU seconds per stage for the request being timed."""

    def __init__(self):
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def reset(self) -> None:
        self.wall = dict.fromkeys((*STAGES, CLASSIFY), 0.0)
        self.cpu = dict.fromkeys((*STAGES, CLASSIFY), 0.0)

    def wrap(self, stage: str, function):
        def timed(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.cpu[stage] += time.thread_time() - cpu
                self.wall[stage] += time.perf_counter() - wall

        return timed


def instrument(api) -> StageClock:
    """Wrap the stages of the classify path of an imported hematovision.handlers.api (its CLASSIFIER and MODEL)."""
    from hematovision.logic import classifier as classifier_module

    clock = StageClock()
    clock.reset()
    classifier = api.CLASSIFIER
    classifier.classify = clock.wrap(CLASSIFY, classifier.classify)
    classifier.decode_upload = clock.wrap("decode", classifier.decode_upload)
    classifier.model_input = clock.wrap("crop + resize", classifier.model_input)
    classifier_module.locate_or_none = clock.wrap("localise", classifier_module.locate_or_none)
    session = api.MODEL.session
    session.run = clock.wrap("session.run", session.run)
    return clock


def measure(api, events: list[dict], context, clock: StageClock, invoke) -> dict:
    """Each event through invoke(handler, event, context) once; per-stage medians (ms) and the acceptance gap."""
    return compare(api, events, context, clock, invoke, {"now": lambda: None})["now"]


def compare(api, events: list[dict], context, clock: StageClock, invoke, variants: dict) -> dict:
    """measure() for each variant ({name: a function that sets the handler up for it}), interleaved: each event
    goes through every variant in turn, the first variant rotating, so background load weighs on all alike."""
    names = (*STAGES, CLASSIFY_REST, HTTP, WHOLE)
    rows = {variant: {name: {"wall": [], "cpu": []} for name in names} for variant in variants}
    order = list(variants)
    for index, event in enumerate(events):
        for variant in order[index % len(order) :] + order[: index % len(order)]:
            variants[variant]()
            clock.reset()
            wall, cpu = time.perf_counter(), time.thread_time()
            response = invoke(api.lambda_handler, event, context)
            whole_cpu, whole_wall = time.thread_time() - cpu, time.perf_counter() - wall
            if response.get("statusCode") != 200:
                raise RuntimeError(f"handler answered {response.get('statusCode')}: {str(response.get('body'))[:300]}")
            into = rows[variant]
            for kind, spent, whole in (("wall", clock.wall, whole_wall), ("cpu", clock.cpu, whole_cpu)):
                for stage in STAGES:
                    into[stage][kind].append(spent[stage])
                into[CLASSIFY_REST][kind].append(spent[CLASSIFY] - sum(spent[stage] for stage in STAGES))
                into[HTTP][kind].append(whole - spent[CLASSIFY])
                into[WHOLE][kind].append(whole)
    return {variant: _summary(rows[variant], len(events)) for variant in variants}


def _summary(rows: dict, requests: int) -> dict:
    def median_ms(values: list[float]) -> float:
        return round(statistics.median(values) * 1000.0, 3)

    stages = {name: {kind: median_ms(values) for kind, values in kinds.items()} for name, kinds in rows.items()}
    # the gap per request (handler - its own session.run), then its median: the acceptance's left-hand side
    gap = {
        kind: median_ms([w - r for w, r in zip(rows[WHOLE][kind], rows["session.run"][kind], strict=True)])
        for kind in ("wall", "cpu")
    }
    return {"requests": requests, "stages": stages, "outside_run_ms": gap, "budget_ms": HANDLER_EXTRA_MS}


def localiser_variants(rev: str) -> dict:
    """The handler with the localiser of git revision `rev` (bench.locate_equality.load_reference) and with this
    checkout's: a before/after of a localiser change through the whole handler, in one process."""
    from bench.locate_equality import load_reference
    from hematovision.logic import classifier as classifier_module

    now, before = classifier_module.locate, load_reference(rev).locate

    def use(locate):
        def setup():
            classifier_module.locate = locate

        return setup

    return {f"localiser of {rev}": use(before), "localiser now": use(now)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--images", type=int, default=200, help="bccd TEST JPEGs, spread over the classes")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--result", type=Path, help="also write the split as JSON here")
    parser.add_argument(
        "--localiser-reference",
        metavar="REV",
        help="also run the handler with the localiser of git revision REV, interleaved (a before/after)",
    )
    args = parser.parse_args(argv)
    os.environ["HEMATOVISION_MODEL_DIR"] = str(args.model_dir)
    os.environ["HEMATOVISION_INTRA_OP_THREADS"] = str(args.threads)
    from bench.serving_child import invoke, raw_event

    datas = [path.read_bytes() for path in test_images(args.data, args.images)]
    events = [raw_event(data, f"split-{i}") for i, data in enumerate(datas)]
    context = LambdaContext()
    # the handler's log lines and EMF metrics go to stdout, as on Lambda (where the runtime ships them): kept, so
    # they are timed, but not this command's output
    stdout, sys.stdout = sys.stdout, open(os.devnull, "w")  # noqa: SIM115
    try:
        import hematovision.handlers.api as api

        for event in events[: args.warmup]:
            invoke(api.lambda_handler, event, context)
        clock = instrument(api)
        variants = localiser_variants(args.localiser_reference) if args.localiser_reference else {"now": lambda: None}
        splits = compare(api, events, context, clock, invoke, variants)
    finally:
        sys.stdout.close()
        sys.stdout = stdout
    load = os.getloadavg()[0]
    print(f"{len(events)} bccd TEST images, {args.threads} intra-op thread(s), load average {load:.2f}\n")
    for name, split in splits.items():
        if len(splits) > 1:
            print(f"### {name}\n")
        print("\n".join(split_lines(split)) + "\n")
    if len(splits) > 1:
        first, last = splits.values()
        print(
            "Outside session.run, CPU ms per request: "
            + " -> ".join(f"{s['outside_run_ms']['cpu']:.2f}" for s in splits.values())
            + f" ({first['outside_run_ms']['cpu'] / last['outside_run_ms']['cpu']:.2f}x); localise: "
            + " -> ".join(f"{s['stages']['localise']['cpu']:.2f}" for s in splits.values())
        )
    if args.result:
        result = splits["now"] if len(splits) == 1 else {"variants": splits}
        args.result.write_text(json.dumps(dict(result, load_average=load), indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
