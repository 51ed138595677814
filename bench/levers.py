"""onnxruntime levers side by side, the physical bound and batch throughput; run in the serving venv (.venv).

    python -m bench.levers --model-dir DIR --images-file F --work DIR [--int8-dir DIR] --result OUT

Every variant is a session on the same preprocessed bccd TEST images; `session.run` at batch 1, 1 intra-op thread
(unless the row says otherwise), timed round-robin (image i goes through every variant before image i+1), so that
background load weighs on all rows alike and their ratios hold. The rows:

- the shipped options (hematovision.logic.inference.session_options) - the reference;
- graph optimisation level: disabled, basic, extended, all;
- an optimised model saved ahead of time (SessionOptions.optimized_model_filepath): at `extended` (portable: no
  CPU-specific layout) and loaded with `all`; at `all` (NCHWc blocks sized for this CPU's vector width: not
  portable to another CPU) and loaded with optimisations off - also its session creation time, a cold-start lever;
- intra-op spinning on (onnxruntime's default; the shipped options turn it off), the CPU memory arena off, memory
  patterns off;
- 2 threads with spinning on and off (spinning burns the CPU quota a fractional-vCPU Lambda is billed for), each
  timed in a block of its own after the round-robin of the single-thread rows;
- NCHW input: the graph edited so the input is [N, 3, H, W] and tf2onnx's input Transpose is gone (the caller
  would transpose instead: the row times session.run only);
- int8 (bench/quantize.py's QDQ model), when --int8-dir holds one.

Graph facts: op counts of the exported graph and of each saved optimised graph (Transposes, BatchNormalization,
FusedConv, NCHWc reorders), the MAC count (bench/hardware.py) and the bound on this CPU. Batch throughput:
images per second per thread through the shipped session at batch 1, 4, 8, 16, 32 (INFERENCE_BATCH chunks).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from bench.common import peak_rss_mib, summary_ms, write_result

BATCHES = (1, 4, 8, 16, 32)


def _options(threads: int = 1, level: str | None = None, **configs):
    """The shipped session options with one lever changed. level: disable|basic|extended|all; configs: the
    session config entries (e.g. allow_spinning="0") or attributes (enable_cpu_mem_arena=False)."""
    import onnxruntime as ort

    from hematovision.logic.inference import session_options

    options = session_options(threads)
    if level is not None:
        options.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[level]
    for key, value in configs.items():
        if key == "allow_spinning":
            options.add_session_config_entry("session.intra_op.allow_spinning", value)
        else:
            setattr(options, key, value)
    return options


def save_optimised(onnx_path: Path, out: Path, level: str) -> float:
    """Write the graph optimised at `level` to `out` (what a build step would ship); returns the seconds it took."""
    import onnxruntime as ort

    options = _options(1, level)
    options.optimized_model_filepath = str(out)
    start = time.perf_counter()
    ort.InferenceSession(str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"])
    return time.perf_counter() - start


def nchw_variant(onnx_path: Path, out: Path) -> bool:
    """The graph with an NCHW uint8 input: drop the Transpose that follows the (scalar) scaling, feed the scaling
    [N, 3, H, W] directly. False when the graph does not have that shape (nothing written)."""
    import onnx

    model = onnx.load(str(onnx_path))
    graph = model.graph
    transposes = [n for n in graph.node if n.op_type == "Transpose"]
    first = transposes[0] if transposes else None
    if first is None or [a.ints for a in first.attribute if a.name == "perm"] != [[0, 3, 1, 2]]:
        return False
    # everything between the input and that Transpose must be elementwise with scalar constants
    scalars = {i.name for i in graph.initializer if not list(i.dims)}
    for node in graph.node:
        if node is first:
            break
        if node.op_type not in ("Cast", "Mul", "Add", "Sub", "Div") or any(x not in scalars for x in node.input[1:]):
            return False
    for node in graph.node:
        node.input[:] = [first.input[0] if x == first.output[0] else x for x in node.input]
    graph.node.remove(first)
    dims = graph.input[0].type.tensor_type.shape.dim
    n, h, w, c = (onnx.TensorShapeProto.Dimension() for _ in range(4))
    n.CopyFrom(dims[0])
    h.CopyFrom(dims[1])
    w.CopyFrom(dims[2])
    c.CopyFrom(dims[3])
    del dims[:]
    dims.extend([n, c, h, w])
    onnx.save(model, str(out))
    return True


def graph_facts(path: Path) -> dict:
    import onnx

    from bench.hardware import op_counts

    counts = op_counts(onnx.load(str(path)))
    keys = ("Transpose", "BatchNormalization", "Conv", "FusedConv", "Clip", "nchwc:Conv", "nchwc:ReorderOutput")
    return {"nodes": sum(counts.values()), **{k: counts.get(k, 0) for k in keys}, "all": counts}


def session_seconds(path: Path, options_factory, repeats: int) -> float:
    """Median seconds to create a session (the model load of a cold start) over `repeats` fresh sessions."""
    import onnxruntime as ort

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        ort.InferenceSession(str(path), sess_options=options_factory(), providers=["CPUExecutionProvider"])
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True, type=Path)
    parser.add_argument("--images-file", required=True)
    parser.add_argument("--work", required=True, type=Path, help="where the variant graphs are written")
    parser.add_argument("--int8-dir", type=Path)
    parser.add_argument("--images", type=int, default=100, help="at most this many of the listed images (0: all)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch-repeats", type=int, default=20, help="runs per batch size in the throughput table")
    parser.add_argument("--create-repeats", type=int, default=3)
    parser.add_argument("--result")
    args = parser.parse_args(argv)
    write_result(args.result, measure(args))
    return 0


def measure(args) -> dict:
    import numpy as np
    import onnx
    import onnxruntime as ort

    from bench.hardware import bound, count_macs, cpu_features, reached_gmacs

    ort.set_default_logger_severity(3)  # a lever overriding a shipped config entry warns once per session
    from hematovision.logic.inference import Model
    from hematovision.logic.preprocessing import preprocess

    onnx_path = args.model_dir / "hematovision.onnx"
    args.work.mkdir(parents=True, exist_ok=True)
    model = Model(args.model_dir, intra_op_threads=1)
    size = model.input_size
    paths = [line.strip() for line in Path(args.images_file).read_text(encoding="utf-8").splitlines() if line.strip()]
    if args.images:  # every k-th, so the classes stay mixed; 100 x ~14 variants keeps make bench within its budget
        paths = paths[:: max(1, len(paths) // args.images)][: args.images]
    arrays = [preprocess(Path(p).read_bytes(), size=size)[None] for p in paths]
    names = ["probabilities"] + (["ood_similarity"] if model.has_ood else [])

    saved = {}
    for level in ("basic", "extended", "all"):
        out = args.work / f"optimised-{level}.onnx"
        saved[level] = {"path": out, "seconds": save_optimised(onnx_path, out, level)}
    nchw_path = args.work / "nchw.onnx"
    has_nchw = nchw_variant(onnx_path, nchw_path)

    # (label, model path, options factory, input transform)
    variants: list[tuple[str, Path, object, object]] = [
        ("shipped options (reference)", onnx_path, lambda: _options(1), None),
        ("optimisation: disabled", onnx_path, lambda: _options(1, "disable"), None),
        ("optimisation: basic", onnx_path, lambda: _options(1, "basic"), None),
        ("optimisation: extended", onnx_path, lambda: _options(1, "extended"), None),
        ("optimisation: all", onnx_path, lambda: _options(1, "all"), None),
        ("saved at extended, loaded with all", saved["extended"]["path"], lambda: _options(1, "all"), None),
        ("saved at all, loaded with optimisation off", saved["all"]["path"], lambda: _options(1, "disable"), None),
        ("spinning on (onnxruntime's default)", onnx_path, lambda: _options(1, allow_spinning="1"), None),
        ("memory arena off", onnx_path, lambda: _options(1, enable_cpu_mem_arena=False), None),
        ("memory pattern off", onnx_path, lambda: _options(1, enable_mem_pattern=False), None),
        ("2 threads, spinning on", onnx_path, lambda: _options(2, allow_spinning="1"), None),
        ("2 threads, spinning off", onnx_path, lambda: _options(2, allow_spinning="0"), None),
    ]
    # the reference again, as the last session created: the spread between the two is the table's noise
    variants.append(("shipped options again (noise check)", onnx_path, lambda: _options(1), None))
    if has_nchw:
        variants.append(("NCHW input (no input Transpose)", nchw_path, lambda: _options(1), "nchw"))
    int8_path = args.int8_dir / "hematovision.onnx" if args.int8_dir else None
    if int8_path is not None and int8_path.is_file():
        variants.append(("int8 (QDQ, bench/quantize.py)", int8_path, lambda: _options(1), None))

    sessions = []
    for label, path, factory, transform in variants:
        start = time.perf_counter()
        session = ort.InferenceSession(str(path), sess_options=factory(), providers=["CPUExecutionProvider"])
        created = time.perf_counter() - start
        feeds = [np.ascontiguousarray(a.transpose(0, 3, 1, 2)) if transform == "nchw" else a for a in arrays]
        sessions.append((label, path, session, feeds, created))
    for _, _, session, feeds, _ in sessions:  # warm-up: arenas, weights paged in, NCHWc buffers
        for x in feeds[: args.warmup]:
            session.run(names, {"image": x})
    time.sleep(0.2)  # the multi-thread sessions' pool threads stop spinning
    # CPU seconds beside wall seconds: with spinning on, pool threads burn CPU while waiting for work.
    # Single-thread sessions run round-robin; multi-thread ones each in a block of their own afterwards (their pool
    # threads go on spinning after a run and would slow, and bill CPU to, whichever session ran next).
    durations = {label: [] for label, *_ in sessions}
    cpu = {label: 0.0 for label, *_ in sessions}
    single = [s for s in sessions if s[2].get_session_options().intra_op_num_threads <= 1]
    multi = [s for s in sessions if s not in single]
    for index in range(len(arrays)):
        # the starting variant rotates with the image, so no row always runs first (after another model's run)
        shift = index % len(single)
        for label, _, session, feeds, _ in single[shift:] + single[:shift]:
            cpu_start, start = time.process_time(), time.perf_counter()
            session.run(names, {"image": feeds[index]})
            durations[label].append(time.perf_counter() - start)
            cpu[label] += time.process_time() - cpu_start
    for label, _, session, feeds, _ in multi:
        time.sleep(0.2)  # the previous block's spinning threads have gone to sleep
        cpu_start = time.process_time()
        for x in feeds:
            start = time.perf_counter()
            session.run(names, {"image": x})
            durations[label].append(time.perf_counter() - start)
        time.sleep(0.05)  # the spin tail after the last run belongs to this block
        cpu[label] = time.process_time() - cpu_start
    reference = sessions[0][2].run(names, {"image": arrays[0]})[0]
    rows = []
    for label, path, session, feeds, created in sessions:
        stats = summary_ms(durations[label])
        probabilities = session.run(names, {"image": feeds[0]})[0]
        rows.append(
            {
                "variant": label,
                "file": path.name,
                **stats,
                "cpu_ms": round(1000 * cpu[label] / max(1, len(arrays)), 3),
                "session_create_s": round(created, 3),
                "max_abs_diff": round(float(np.abs(probabilities - reference).max()), 6),
            }
        )
    del sessions

    # session creation (the model-load part of a cold start), fresh sessions each
    creation = {
        "exported graph, all": session_seconds(onnx_path, lambda: _options(1), args.create_repeats),
        "saved at extended, loaded with all": session_seconds(
            saved["extended"]["path"], lambda: _options(1, "all"), args.create_repeats
        ),
        "saved at all, loaded with optimisation off": session_seconds(
            saved["all"]["path"], lambda: _options(1, "disable"), args.create_repeats
        ),
    }

    # batch throughput through the shipped session (1 thread): images per second per vCPU
    throughput = {}
    stack = np.concatenate(arrays * (1 + max(BATCHES) // max(1, len(arrays))))
    for batch in BATCHES:
        x = np.ascontiguousarray(stack[:batch])
        for _ in range(2):
            model.session.run(names, {"image": x})
        times = []
        cpu_start = time.process_time()
        for _ in range(max(3, args.batch_repeats * 4 // batch)):
            start = time.perf_counter()
            model.session.run(names, {"image": x})
            times.append(time.perf_counter() - start)
        cpu_ms = 1000 * (time.process_time() - cpu_start) / (len(times) * batch)
        stats = summary_ms(times, per=batch)
        throughput[str(batch)] = {
            **stats,
            "images_per_s": round(1000.0 / stats["median_ms"], 1),
            "cpu_ms_per_image": round(cpu_ms, 3),
        }

    features = cpu_features(Path("/proc/cpuinfo").read_text(encoding="utf-8"))
    macs = count_macs(onnx.load(str(onnx_path)))
    limit = bound(macs["total"], features)
    shipped_ms = rows[0]["median_ms"]
    return {
        "model": model.summary,
        "input_size": size,
        "images": len(arrays),
        "onnxruntime": ort.__version__,
        "cpu": features,
        "macs": macs,
        "bound": {
            **limit,
            "shipped_ms": shipped_ms,
            "reached_gmacs": reached_gmacs(macs["total"], shipped_ms),
            "ratio": None if not limit["bound_ms"] else round(shipped_ms / limit["bound_ms"], 2),
        },
        "rows": rows,
        "graphs": {
            "exported": graph_facts(onnx_path),
            **{f"optimised at {level}": graph_facts(item["path"]) for level, item in saved.items()},
        },
        "optimise_seconds": {level: round(item["seconds"], 3) for level, item in saved.items()},
        "session_create_s": {k: round(v, 3) for k, v in creation.items()},
        "throughput": throughput,
        "peak_rss_mib": peak_rss_mib(),
        "tensorflow_imported": "tensorflow" in sys.modules,
    }


if __name__ == "__main__":
    sys.exit(main())
