"""The physical bound of one inference: the CPU's instruction set and clock, the model's multiply-adds. Pure.

    python -m bench.hardware [--model-dir DIR]      # prints the CPU, the MAC count and the bound

The bound is the time the multiply-adds alone take at the core's peak fp32 FMA rate: MACs / (lanes x FMA units x
clock). Real kernels also move data (depthwise convolutions are memory-bound), so 1.5x the bound is a good result.
The MAC count is read from the ONNX graph itself (Conv, Gemm, MatMul with shapes from onnx.shape_inference), so
it follows the model that ships (224 or 160 px, any width), not a figure from the MobileNetV2 paper.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

# fp32 lanes of one FMA instruction, by the widest vector extension the CPU reports
LANES = {"avx512f": 16, "avx2": 8, "avx": 8, "sse2": 4}
# FMA units per core: 2 on every x86 server core of the last decade that Lambda may run on (Intel Skylake-SP to
# Sapphire Rapids Gold/Platinum, AMD Zen 2-4). Some Xeon Silver/Bronze parts have one 512-bit unit; the bound is
# then optimistic, which errs on the strict side.
FMA_UNITS = 2
# Where a core's FMA units are narrower than its widest instruction, an instruction takes more than one cycle per unit:
# AMD Zen 4 (family 0x19, the first AMD cores with AVX-512) splits each 512-bit FMA into two 256-bit halves, so its
# peak is AVX2's. Zen 5 (0x1A) server cores and Intel's AVX-512 cores have full-width units.
FMA_UNIT_LANES = {("AuthenticAMD", 25): 8}


def cpu_features(cpuinfo: str) -> dict:
    """Model name, clock (MHz, the first core's current value) and the vector flags that matter, from
    /proc/cpuinfo's text."""
    model, mhz, flags, vendor, family = "?", None, set(), None, None
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model == "?":
            model = value.strip()
        elif key == "vendor_id" and vendor is None:
            vendor = value.strip()
        elif key == "cpu family" and family is None:
            family = int(value)
        elif key == "cpu MHz" and mhz is None:
            mhz = float(value)
        elif key == "flags" and not flags:
            flags = set(value.split())
    # the nominal clock in the model name ("@ 2.50GHz") when the kernel reports none
    found = re.search(r"@\s*([\d.]+)\s*GHz", model)
    if mhz is None and found:
        mhz = float(found.group(1)) * 1000
    isa = next((name for name in LANES if name in flags), "scalar")
    lanes = LANES.get(isa, 1)
    return {
        "model": model,
        "mhz": mhz,
        "isa": isa,
        "lanes": min(lanes, FMA_UNIT_LANES.get((vendor, family), lanes)),  # fp32 lanes an FMA unit does per cycle
        "fma": "fma" in flags or isa == "avx512f",
        "vnni": sorted(f for f in flags if "vnni" in f),  # avx512_vnni (Cascade Lake+), avx_vnni (Alder Lake+, Zen 5)
        "amx": sorted(f for f in flags if f.startswith("amx")),
    }


def peak_macs_per_second(features: dict, fma_units: int = FMA_UNITS) -> float | None:
    """fp32 multiply-adds per second of one core at the reported clock: lanes x FMA units x Hz."""
    if not features.get("mhz"):
        return None
    lanes = features.get("lanes", LANES.get(features["isa"], 1))
    per_cycle = lanes * fma_units if features.get("fma") else lanes  # without FMA: one mul + one add port
    return per_cycle * features["mhz"] * 1e6


def _dims(value_info) -> list[int | None]:
    return [d.dim_value if d.HasField("dim_value") else None for d in value_info.type.tensor_type.shape.dim]


def count_macs(model, batch: int = 1) -> dict:
    """Multiply-adds of one run at `batch`: {"total": n, "by_op": {op_type: n}, "nodes": {op_type: count}}.

    Conv: output elements x (input channels / group) x kernel area. Gemm / MatMul: output elements x the shared
    dimension. Elementwise ops, pooling and the softmax are left out (a few per cent at most, and not FMAs). The
    graph's dynamic batch is fixed to `batch` before shape inference, on a copy."""
    import onnx

    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    initializers = {i.name: list(i.dims) for i in graph.initializer}
    for item in graph.input:
        if item.name in initializers:
            continue
        dims = item.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_value = batch
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    shapes = {v.name: _dims(v) for v in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output)}
    shapes.update(initializers)
    by_op: dict[str, int] = {}
    nodes: dict[str, int] = {}
    for node in inferred.graph.node:
        if node.op_type not in ("Conv", "Gemm", "MatMul", "ConvTranspose"):
            continue
        out = shapes.get(node.output[0])
        if not out or any(d is None for d in out):
            raise ValueError(f"no static shape for the output of {node.op_type} {node.name!r}")
        if node.op_type == "Conv":
            weight = shapes[node.input[1]]  # [M, C/group, kH, kW]
            macs = math.prod(out) * math.prod(weight[1:])
        elif node.op_type == "ConvTranspose":
            weight = shapes[node.input[1]]  # [C, M/group, kH, kW]: every input element meets the whole kernel
            macs = math.prod(shapes[node.input[0]]) * math.prod(weight[1:])
        else:
            a = shapes[node.input[0]]
            trans_a = any(x.name == "transA" and x.i for x in node.attribute)
            shared = a[-2] if trans_a else a[-1]
            macs = math.prod(out) * shared
        by_op[node.op_type] = by_op.get(node.op_type, 0) + int(macs)
        nodes[node.op_type] = nodes.get(node.op_type, 0) + 1
    return {"total": sum(by_op.values()), "by_op": by_op, "nodes": nodes, "batch": batch}


def op_counts(model) -> dict[str, int]:
    """Nodes per op type; ops of another domain than ONNX's own are prefixed with its last part ("nchwc:Conv",
    onnxruntime's blocked layout, "microsoft:FusedConv" is counted as plain "FusedConv")."""
    counts: dict[str, int] = {}
    for node in model.graph.node:
        domain = node.domain.rsplit(".", 1)[-1] if node.domain not in ("", "ai.onnx", "com.microsoft") else ""
        name = f"{domain}:{node.op_type}" if domain else node.op_type
        counts[name] = counts.get(name, 0) + 1
    return counts


def bound(macs: int, features: dict) -> dict:
    """The bound in ms for `macs` on one core, and the rate it assumes."""
    peak = peak_macs_per_second(features)
    return {
        "macs": macs,
        "peak_gmacs": None if peak is None else round(peak / 1e9, 2),
        "bound_ms": None if peak is None else round(1000.0 * macs / peak, 4),
        "fma_units": FMA_UNITS,
        "lanes": features.get("lanes", LANES.get(features.get("isa"), 1)),
    }


def reached_gmacs(macs: int, ms: float | None) -> float | None:
    """The multiply-add rate a measured run reached (G MAC/s)."""
    return None if not ms else round(macs / (ms / 1000.0) / 1e9, 2)


def main(argv: list[str] | None = None) -> int:
    from bench.common import DEFAULT_MODEL_DIR

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    args = parser.parse_args(argv)
    import onnx

    features = cpu_features(Path("/proc/cpuinfo").read_text(encoding="utf-8"))
    macs = count_macs(onnx.load(str(args.model_dir / "hematovision.onnx")))
    limit = bound(macs["total"], features)
    print(f"CPU: {features['model']}, {features['mhz']} MHz, {features['isa']}, VNNI {features['vnni'] or 'no'}")
    parts = ", ".join(f"{k} {v / 1e6:.1f} M" for k, v in macs["by_op"].items())
    print(f"MACs at batch 1: {macs['total'] / 1e6:.1f} M ({parts})")
    print(f"peak {limit['peak_gmacs']} G MAC/s per core -> bound {limit['bound_ms']} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
