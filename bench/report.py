"""Markdown rendering of a benchmark run (results dict -> docs/benchmarks.md text). No measurement here."""

from __future__ import annotations

import math

MIB = 2**20

# acceptance targets (issue 5)
WARM_SPEEDUP = 20.0
COLD_SPEEDUP = 10.0
OVERHEAD_BUDGET = 1.5
INT8_MAX_DROP_POINTS = 0.5


def fmt(value, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def ratio(ours, theirs) -> str:
    """ours/theirs, with the speed-up beside it."""
    if not ours or not theirs:
        return "n/a"
    r = ours / theirs
    return f"{r:.3f} ({1 / r:.1f}x)" if r < 1 else f"{r:.2f}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _get(d: dict | None, *keys):
    for key in keys:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def acceptance(results: dict) -> list[dict]:
    """The three claims of the issue, each {claim, ours, theirs, ratio, target, ok}."""
    checks = []
    warm, keras = results.get("warm", {}), results.get("keras", {})
    for threads in results["config"]["threads"]:
        ours = _get(warm, str(threads), "handler", "1", "median_ms")
        theirs = _get(keras, str(threads), "predict", "1", "median_ms")
        ok = None if not ours or not theirs else theirs / ours >= WARM_SPEEDUP
        checks.append(
            {
                "claim": f"warm, per image, {threads} thread(s), batch 1: handler vs Keras predict (ms, median)",
                "ours": ours,
                "theirs": theirs,
                "target": f">= {WARM_SPEEDUP:.0f}x faster",
                "ok": ok,
            }
        )
    cold = results.get("cold", {})
    kind = "lambda_package" if "lambda_package" in cold else "serving"
    ours, theirs = _get(cold, kind, "median_s"), _get(cold, "keras", "median_s")
    what = "the built Lambda package" if kind == "lambda_package" else "the serving venv (no built package)"
    checks.append(
        {
            "claim": f"cold start: spawn -> first answer (s, median), {what}",
            "ours": ours,
            "theirs": theirs,
            "target": f">= {COLD_SPEEDUP:.0f}x faster",
            "ok": None if not ours or not theirs else theirs / ours >= COLD_SPEEDUP,
        }
    )
    ours = _get(warm, "1", "handler", "1", "median_ms")
    bare = _get(warm, "1", "bare", "1", "median_ms")
    checks.append(
        {
            "claim": "overhead: handler vs bare InferenceSession.run, 1 thread, batch 1 (ms, median)",
            "ours": ours,
            "theirs": bare,
            "target": f"<= {OVERHEAD_BUDGET}x",
            "ok": None if not ours or not bare else ours / bare <= OVERHEAD_BUDGET,
        }
    )
    return checks


def int8_verdict(results: dict) -> dict | None:
    int8 = results.get("int8")
    if not int8 or "evaluation" not in int8:
        return None
    drops = {}
    for name, sets in int8["evaluation"].items():
        fp32, q = _get(sets, "fp32", "accuracy"), _get(sets, "int8", "accuracy")
        if fp32 is not None and q is not None:
            drops[name] = round((fp32 - q) * 100, 2)
    accurate = bool(drops) and all(d <= INT8_MAX_DROP_POINTS for d in drops.values())
    warm, warm8 = results.get("warm", {}), int8.get("warm", {})
    speed = {}
    for threads in results["config"]["threads"]:
        a, b = (
            _get(warm, str(threads), "handler", "1", "median_ms"),
            _get(warm8, str(threads), "handler", "1", "median_ms"),
        )
        if a and b:
            speed[threads] = round(a / b, 3)
    faster = bool(speed) and all(s > 1.05 for s in speed.values())
    return {
        "drops_points": drops,
        "speedup": speed,
        "accurate": accurate,
        "faster": faster,
        "ship": accurate and faster,
    }


# issue 17's targets for the localiser alone, warm, 1 thread
LOCATE_FIELD_MS = 50.0
LOCATE_12MP_MS = 150.0


def fields_section(fields: dict | None) -> list[str]:
    """Whole-field photos: decode, localisation, per-cell inference and the whole POST /v1/analyze."""
    if not fields:
        return []
    rows = []
    for key, target in (("field", LOCATE_FIELD_MS), ("twelve_mp", LOCATE_12MP_MS)):
        f = fields.get(key)
        if not f:
            continue
        rows.append(
            [
                f"{f['size']} JPEG ({f['bytes'] / 1024:.0f} KB)",
                f["cells"],
                fmt(f["decode_ms"], 1),
                f"{fmt(f['locate_ms'], 1)} ({'meets' if f['locate_ms'] <= target else 'misses'} <= {target:.0f})",
                fmt(f["inference_ms"], 1),
                fmt(f["inference_per_cell_ms"], 1),
                fmt(f["analyze_ms"], 1),
                fmt(f["handler_ms"], 1),
            ]
        )
    return [
        "",
        "## Whole-field photos (`POST /v1/analyze`), warm, 1 thread",
        "",
        "`events/field.jpg` (a 640x480 bccd field with two white cells) and the same field enlarged to a "
        "4000x3000 JPEG (quality 90), as a 12 MP phone photo would be. Medians of "
        f"{fields['field']['repeats']} warm runs of `logic/analysis.py` (decode, localisation, cropping + one "
        "batched `session.run`) and of the whole handler (the REST event in, the JSON answer out). "
        f"Peak RSS {fmt(fields.get('peak_rss_mib'), 0)} MiB.",
        "",
        *table(
            [
                "photo",
                "cells found",
                "decode ms",
                "localisation ms",
                "inference ms",
                "per cell ms",
                "analyze ms",
                "handler ms",
            ],
            rows,
        ),
    ]


def render(results: dict) -> str:
    cfg = results["config"]
    env = results.get("environment", {})
    out: list[str] = ["# Benchmarks: the serverless path against the paper's Keras path", ""]
    if results.get("quick"):
        out += [
            "> **QUICK RUN** (tiny iteration counts, for checking the bench code): "
            "the figures below are not benchmarks.",
            "",
        ]
    if env.get("contended"):
        out += [
            f"> **WARNING**: another CPU-heavy process was running during this run ({env['contended']}); "
            "absolute figures and ratios are unreliable.",
            "",
        ]
    background = env.get("background_cores")
    if background is not None and background > 0.1:
        out += [
            f"> **NOTE**: other processes used {background:.2f} cores on average during this run (of "
            f"{env.get('cores', '?')}); figures are somewhat pessimistic for both sides.",
            "",
        ]
    if cfg.get("label"):
        out += [f"> {cfg['label']}", ""]
    out += [
        f"Generated by `make bench` (`python -m bench`) on {env.get('date', '?')} "
        f"in {fmt(results.get('elapsed_s'), 0)} s.",
        f"Machine: {env.get('cpu', '?')}, {env.get('cores', '?')} cores; onnxruntime {env.get('onnxruntime', '?')}, "
        f"TensorFlow {_get(results, 'keras', str(cfg['threads'][0]), 'tensorflow') or '?'} / Keras "
        f"{_get(results, 'keras', str(cfg['threads'][0]), 'keras') or '?'}.",
        f"Model: `{cfg['model_dir']}` ({env.get('model', '?')}, "
        f"sha256 `{str(env.get('model_sha256', '?'))[:16]}...`); Keras model: `{cfg['keras_model']}`. "
        f"Images: {cfg['images']} bccd TEST JPEGs (320x240), the same for every path.",
        "Absolute numbers depend on the machine; the ratios (ours / theirs, speed-up in brackets) are the claim. "
        f"Background load from other processes during the run: {fmt(background, 2)} cores on average.",
        "",
        "## Acceptance",
        "",
    ]
    rows = []
    for check in acceptance(results):
        ok = {True: "PASS", False: "FAIL", None: "n/a"}[check["ok"]]
        rows.append(
            [
                check["claim"],
                fmt(check["ours"], 2),
                fmt(check["theirs"], 2),
                ratio(check["ours"], check["theirs"]),
                check["target"],
                ok,
            ]
        )
    out += table(["claim", "ours", "theirs / reference", "ours/theirs", "target", "result"], rows)

    out += [
        "",
        "## Warm latency per image (ms)",
        "",
        "Handler: a REST proxy event with the JPEG base64-encoded (as API Gateway sends binary media types) through "
        "`hematovision.handlers.api.lambda_handler` (Powertools routing, validation, logging, EMF metrics) and the "
        "response JSON-encoded as the runtime does; batch 8 goes through `POST /v1/classify/batch`. Bare: "
        "`InferenceSession.run` of the handler's own session on the preprocessed uint8 images. Keras: the model loaded "
        "from the `.keras` file, on the same images already decoded and resized (float32) - so decode/resize are "
        "counted for us and not for Keras. Per-image time = call time / batch size; ratio vs Keras `predict` at the "
        "same threads and batch.",
        "",
    ]
    rows = []
    paths = [("handler (fp32)", "warm", "handler"), ("bare ORT run (fp32)", "warm", "bare")]
    if results.get("int8", {}).get("warm"):
        paths += [("handler (int8)", "int8warm", "handler"), ("bare ORT run (int8)", "int8warm", "bare")]
    paths += [("Keras predict", "keras", "predict"), ("Keras tf.function", "keras", "tf_function")]
    for threads in cfg["threads"]:
        for batch in cfg["batches"]:
            reference = _get(results, "keras", str(threads), "predict", str(batch), "median_ms")
            for label, section, key in paths:
                source = results.get("int8", {}).get("warm", {}) if section == "int8warm" else results.get(section, {})
                stats = _get(source, str(threads), key, str(batch))
                if not stats:
                    continue
                rows.append(
                    [
                        label,
                        threads,
                        batch,
                        fmt(stats["median_ms"], 2),
                        fmt(stats["p90_ms"], 2),
                        stats["images"],
                        ratio(stats["median_ms"], reference) if key != "predict" else "1 (reference)",
                    ]
                )
    out += table(["path", "threads", "batch", "median", "p90", "images", "ours/Keras predict"], rows)

    cold = results.get("cold", {})
    if cold:
        out += [
            "",
            "## Cold start (s) and peak memory",
            "",
            "A fresh process per run, alternating the two kinds. Serving: start Python, import the handler module "
            "(Powertools, onnxruntime session creation = the Lambda init phase) and answer one raw-JPEG request "
            "through `lambda_handler`. The acceptance row is the package `make build` produced (trimmed, with the "
            "bytecode it ships for the modules a cold start imports), run by Python 3.12 (Lambda's runtime version) "
            "with no site-packages and no bytecode writing, as on Lambda's read-only /var/task; the first row runs the "
            "same code from the serving venv. TensorFlow: start Python, import TensorFlow, load the Keras model, "
            "decode and resize the same JPEG, `predict` once. Wall time from the spawn to the answer; "
            "1 intra-op thread each. "
            "Peak RSS is `ru_maxrss` of the child.",
            "",
        ]
        rows = []
        for key, label in (
            ("serving", "serving (onnxruntime, handler)"),
            ("keras", "TensorFlow + Keras predict"),
            ("lambda_package", "serving, the built Lambda package (Python 3.12)"),
        ):
            c = cold.get(key)
            if not c:
                continue
            parts = ", ".join(f"{k} {fmt(v, 2)}" for k, v in c.get("phases_median_s", {}).items())
            rows.append(
                [
                    label,
                    fmt(c["median_s"], 2),
                    f"{fmt(c['min_s'], 2)} - {fmt(c['max_s'], 2)}",
                    c["runs"],
                    parts,
                    fmt(c["peak_rss_mib"], 0),
                    ratio(c["median_s"], _get(cold, "keras", "median_s")) if key != "keras" else "1 (reference)",
                    ratio(c["peak_rss_mib"], _get(cold, "keras", "peak_rss_mib")) if key != "keras" else "1",
                ]
            )
        out += table(
            [
                "process",
                "median",
                "min - max",
                "runs",
                "phases (median s)",
                "peak RSS MiB",
                "time ours/theirs",
                "RSS ours/theirs",
            ],
            rows,
        )
        imports = cold.get("imports_ms")
        if imports:
            top = list(imports.items())[:10]
            out += [
                "",
                "Serving imports by package (`python -X importtime`, self ms, one run; "
                f"total {sum(imports.values()):.0f} ms; "
                "`hematovision` includes creating the onnxruntime session at import): "
                + ", ".join(f"{name} {ms:.0f}" for name, ms in top)
                + ".",
            ]
        rows = []
        for threads in cfg["threads"]:
            a, b = (
                _get(results, "warm", str(threads), "peak_rss_mib"),
                _get(results, "keras", str(threads), "peak_rss_mib"),
            )
            rows.append(
                [f"warm process, {threads} thread(s), after all its requests", fmt(a, 0), fmt(b, 0), ratio(a, b)]
            )
        out += [""] + table(["peak RSS (MiB)", "serving", "TensorFlow", "ours/theirs"], rows)

    sizes = results.get("sizes")
    if sizes:
        out += [
            "",
            "## Package size",
            "",
            "Built package: the output of `make build` (SAM, trimmed; `infra/package_size.py`). Dependency sets: "
            "installed size (RECORD files, no bytecode) of the closure of `functions/classifier/requirements.txt` in "
            "`.venv`, and of `tensorflow-cpu` + `pillow` in `.venv-export` (what the paper's path needs to load the "
            "Keras model and decode images - without Flask or any web layer). Lambda's limit is 250 MiB unzipped.",
            "",
        ]
        theirs = _get(sizes, "tensorflow", "total_bytes")
        rows = []
        for key, label in (
            ("built", "Lambda package as built (`.aws-sam/build/ClassifierFunction`)"),
            ("serving", "serving dependency set (untrimmed)"),
            ("tensorflow", "TensorFlow dependency set"),
        ):
            item = sizes.get(key)
            if not item:
                rows.append([label, "not built (run `make build`)", "n/a", ""])
                continue
            top = ", ".join(
                f"{n} {b / MIB:.0f}" for n, b in list(item.get("distributions", item.get("groups", {})).items())[:4]
            )
            rows.append(
                [
                    label,
                    fmt(item["total_bytes"] / MIB, 1),
                    ratio(item["total_bytes"], theirs) if key != "tensorflow" else "1 (reference)",
                    top,
                ]
            )
        out += table(["set", "MiB", "ours/theirs", "largest (MiB)"], rows)
        built = sizes.get("built")
        if built:
            out += [
                "",
                f"The built package holds {', '.join(built.get('versions') or [])} (built {built.get('built_at')}); "
                "rebuild with `make build` after a change of `functions/classifier/requirements.txt`.",
            ]
            if built.get("stale"):
                out += [
                    "",
                    f"> **STALE BUILD**: {', '.join(built['stale'])} differ from the pins in "
                    "`functions/classifier/requirements.txt`; run `make build` and re-run the benchmark.",
                ]

    serve = results.get("serve")
    if serve:
        out += [
            "",
            "## Throughput of `hematovision serve` (loopback)",
            "",
            f"127.0.0.1 only; {cfg['serve_requests']} requests or {cfg['serve_seconds']} s, whichever first; "
            "2 client threads per worker, a new connection per request, raw JPEG bodies; 1 intra-op thread per "
            "worker. Client, gateway and workers share the same 2 cores.",
            "",
        ]
        rows = [
            [
                s["workers"],
                s["requests"],
                s["errors"],
                fmt(s["requests_per_s"], 1),
                fmt(s["latency"]["median_ms"], 1),
                fmt(s["latency"]["p90_ms"], 1),
                fmt(s["seconds"], 1),
            ]
            for s in serve
        ]
        out += table(["workers", "requests", "errors", "req/s", "median ms", "p90 ms", "seconds"], rows)

    out += fields_section(results.get("fields"))

    int8 = results.get("int8")
    if int8:
        recipe = int8.get("recipe", {})
        out += [
            "",
            "## Int8 (static quantization) vs fp32",
            "",
            f"`onnxruntime.quantization.quantize_static`: {recipe.get('format')} format, "
            f"op types {recipe.get('op_types')}, "
            f"per-channel {recipe.get('per_channel')}, reduce_range {recipe.get('reduce_range')}, activations "
            f"{recipe.get('activations')}, weights {recipe.get('weights')}; calibrated on "
            f"{_get(recipe, 'calibration', 'images')} training images "
            f"({', '.join(_get(recipe, 'calibration', 'splits') or [])}; never a test split). "
            f"Size {fmt((recipe.get('bytes') or 0) / 1e6, 2)} MB "
            f"vs {fmt((recipe.get('source_bytes') or 0) / 1e6, 2)} MB. "
            "int8 evaluated through the serving Classifier with the code of `hematovision evaluate` "
            "(`hematovision.logic.evaluation`); fp32 figures are the model card's, computed by that same code on the "
            "same files, unless the row says re-measured (`--reevaluate-fp32`). "
            f"Stored under `{int8.get('dir')}` only.",
            "",
        ]
        rows = []
        for name, sets in int8.get("evaluation", {}).items():
            a, b = sets.get("fp32", {}), sets.get("int8", {})
            if "accuracy" not in a or "accuracy" not in b:
                rows.append([name, "error", "", "", "", "", "", ""])
                continue
            source = "card" if a.get("source") == "model card" else "re-measured"
            rows.append(
                [
                    name,
                    b["n"],
                    f"{fmt(a['accuracy'] * 100, 2)} ({source})",
                    fmt(b["accuracy"] * 100, 2),
                    fmt((b["accuracy"] - a["accuracy"]) * 100, 2),
                    f"{a['macro_f1']:.4f} / {b['macro_f1']:.4f}",
                    f"{a['uncertain_fraction'] * 100:.1f} / {b['uncertain_fraction'] * 100:.1f}",
                    f"{a.get('agreement', float('nan')) * 100:.2f}" if "agreement" in a else "n/a",
                ]
            )
        out += table(
            [
                "set",
                "n",
                "fp32 acc %",
                "int8 acc %",
                "delta (points)",
                "macro-F1 fp32 / int8",
                "uncertain % fp32 / int8",
                "same label %",
            ],
            rows,
        )
        verdict = int8_verdict(results)
        if verdict:
            speed = ", ".join(f"{t} thread(s): {s:.2f}x" for t, s in verdict["speedup"].items())
            out += [
                "",
                f"Handler speed-up int8 vs fp32 (batch 1, median): {speed or 'n/a'}. "
                f"Accuracy within {INT8_MAX_DROP_POINTS} point on every set: {'yes' if verdict['accurate'] else 'no'}; "
                f"faster: {'yes' if verdict['faster'] else 'no'}. "
                f"**Verdict: {'int8 qualifies as the default' if verdict['ship'] else 'fp32 stays the default'}.**",
            ]

    profile = results.get("profile")
    if profile:
        out += [
            "",
            "## Profile of the warm path",
            "",
            "Each step timed on its own over the same images (1 thread, batch 1, median ms), then a pyinstrument "
            f"profile of {profile.get('requests')} handler invocations ({profile.get('sample_count')} samples over "
            f"{fmt(profile.get('duration_s'), 2)} s).",
            "",
        ]
        stages = profile.get("stages", {})
        whole = _get(stages, "lambda_handler + JSON encode (whole path)", "median_ms")
        rows = [
            [
                name,
                fmt(s["median_ms"], 3),
                fmt(s["p90_ms"], 3),
                f"{100 * s['median_ms'] / whole:.1f}%" if whole else "n/a",
            ]
            for name, s in stages.items()
        ]
        out += table(["step", "median ms", "p90 ms", "of the whole path"], rows)
        shares = profile.get("components_share") or {}
        per_request = profile.get("components_ms_per_request") or {}
        if shares:
            out += [
                "",
                "Where the time of the handler loop goes (pyinstrument samples, by the innermost frame of a known "
                "package; `onnxruntime` includes the C++ kernels):",
                "",
            ]
            out += table(
                ["component", "ms per request", "share"],
                [[name, fmt(per_request.get(name), 3), f"{100 * share:.1f}%"] for name, share in shares.items()],
            )
        findings = profile.get("findings")
        if findings:
            out += [""] + [f"- {line}" for line in findings]
        flat = (profile.get("flat") or "").strip().splitlines()
        if flat:
            out += (
                ["", "pyinstrument, self time per function (top entries, % of the loop):", "", "```"]
                + flat[:25]
                + ["```"]
            )
        tree = (profile.get("tree") or "").strip().splitlines()
        if tree:
            out += (
                [
                    "",
                    "<details><summary>pyinstrument call tree "
                    "(frames >= 1%; full profile in build/bench/profile.txt)</summary>",
                    "",
                    "```",
                ]
                + tree[:150]
                + ["```", "", "</details>"]
            )

    notes = results.get("notes") or []
    if notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    out += [
        "",
        "## Reproduce",
        "",
        "```",
        results.get("command", "make bench"),
        "```",
        "Options: `python -m bench --help` (model paths also from BENCH_MODEL_DIR / BENCH_KERAS_MODEL; `--quick` "
        "checks the code in a minute). Run it on an otherwise idle machine.",
        "",
    ]
    return "\n".join(out)
