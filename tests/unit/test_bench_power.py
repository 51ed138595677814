"""The pure parts of issue 19's benchmark code: MAC counting, the physical bound, the price arithmetic, the cgroup
writer (against a temporary directory) and the report sections. Nothing here times anything."""

import json
import shutil
from pathlib import Path

import pytest

from bench import hardware, power, report
from tests import fakes
from tests.unit.test_bench import run_bench_child

ROOT = Path(__file__).resolve().parents[2]

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Processor @ 2.50GHz
cpu MHz\t\t: 2499.998
flags\t\t: fpu sse2 avx fma avx2 avx512f avx512bw avx512_vnni

processor\t: 1
model name\t: Intel(R) Xeon(R) Processor @ 2.50GHz
cpu MHz\t\t: 1200.000
flags\t\t: fpu sse2 avx fma avx2
"""


def tiny_model():
    """[N,3,8,8] -> 3x3 conv to 4 channels (pads 1) -> 3x3 depthwise conv -> global pool -> Gemm to 5 classes."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    weights = [
        numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.float32), "w_conv"),
        numpy_helper.from_array(np.zeros((4, 1, 3, 3), np.float32), "w_dw"),
        numpy_helper.from_array(np.zeros((4, 5), np.float32), "w_fc"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w_conv"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["c1", "w_dw"], ["c2"], pads=[1, 1, 1, 1], group=4),
        helper.make_node("GlobalAveragePool", ["c2"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w_fc"], ["y"]),
        helper.make_node("Transpose", ["c2"], ["t"], perm=[0, 2, 3, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5]),
            helper.make_tensor_value_info("t", TensorProto.FLOAT, ["N", 8, 8, 4]),
        ],
        weights,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_mac_count_of_a_tiny_graph():
    conv, depthwise, gemm = 4 * 8 * 8 * 3 * 3 * 3, 4 * 8 * 8 * 1 * 3 * 3, 4 * 5
    counted = hardware.count_macs(tiny_model())
    assert counted["by_op"] == {"Conv": conv + depthwise, "Gemm": gemm}
    assert counted["total"] == conv + depthwise + gemm and counted["nodes"] == {"Conv": 2, "Gemm": 1}
    assert hardware.count_macs(tiny_model(), batch=3)["total"] == 3 * (conv + depthwise + gemm)
    assert hardware.op_counts(tiny_model())["Transpose"] == 1


def test_cpu_features_and_the_bound():
    features = hardware.cpu_features(CPUINFO)
    assert features["model"].startswith("Intel(R) Xeon(R)") and features["mhz"] == pytest.approx(2499.998)
    assert features["isa"] == "avx512f" and features["fma"] and features["vnni"] == ["avx512_vnni"]
    # 16 fp32 lanes x 2 FMA units x 2.5 GHz = 80 G MAC/s: 300 M MACs take 3.75 ms
    features["mhz"] = 2500.0
    assert hardware.bound(300_000_000, features)["bound_ms"] == pytest.approx(3.75)
    avx2 = hardware.cpu_features("model name\t: AMD EPYC\ncpu MHz\t: 2000.0\nflags\t: sse2 avx fma avx2\n")
    assert avx2["isa"] == "avx2" and avx2["vnni"] == [] and hardware.peak_macs_per_second(avx2) == pytest.approx(32e9)
    # no MHz line: the nominal clock in the model name
    assert hardware.cpu_features("model name\t: X @ 3.00GHz\nflags\t: avx2 fma\n")["mhz"] == pytest.approx(3000.0)
    assert hardware.reached_gmacs(300_000_000, 10.0) == pytest.approx(30.0)


def test_avx512_on_half_width_units_peaks_as_avx2():
    # AMD Zen 4 (family 25) reports avx512f but runs each 512-bit FMA as two 256-bit halves; Zen 5 (26) does not
    zen4 = "vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel name\t: AMD EPYC\ncpu MHz\t: 2500.0\n"
    zen4 += "flags\t: avx2 fma avx512f\n"
    features = hardware.cpu_features(zen4)
    assert features["isa"] == "avx512f" and features["lanes"] == 8
    assert hardware.peak_macs_per_second(features) == pytest.approx(40e9)
    assert hardware.bound(300_000_000, features)["lanes"] == 8
    zen5 = hardware.cpu_features(zen4.replace("family\t: 25", "family\t: 26"))
    assert zen5["lanes"] == 16 and hardware.peak_macs_per_second(zen5) == pytest.approx(80e9)
    assert hardware.cpu_features(CPUINFO)["lanes"] == 16  # Intel: full-width units


def test_cpu_share_and_quota():
    assert power.cpu_share(1769) == pytest.approx(1.0)
    assert power.cfs_quota_us(1769) == 100_000
    assert power.cfs_quota_us(1024) == 57_886  # 1024/1769 of a 100 ms period
    assert power.cfs_quota_us(3008) == 170_040
    assert power.cfs_quota_us(8000) == 200_000  # at most the 2 CPUs a function sees
    assert power.cfs_quota_us(1769, period_us=20_000) == 20_000


def test_price_arithmetic():
    assert [power.billed_ms(d) for d in (0.2, 10.0, 10.0001, 10.9)] == [1, 10, 11, 11]
    assert power.gb_seconds(10.2, 1024) == pytest.approx(0.011)  # 11 ms at 1 GB
    cost = power.cost_per_1000([10.2, 9.5], 2048)  # billed 11 and 10 ms at 2 GB: 0.021 GB-s on average
    assert cost["gb_seconds_per_request"] == pytest.approx(0.021)
    assert cost["lambda_compute"] == pytest.approx(1000 * 0.021 * 0.0000166667)
    assert cost["lambda_requests"] == pytest.approx(0.0002) and cost["api_gateway"] == pytest.approx(0.0035)
    assert cost["total"] == pytest.approx(cost["lambda_compute"] + 0.0037)
    with pytest.raises(ValueError):
        power.cost_per_1000([], 512)


def test_choice_of_the_memory_size():
    def row(mb, mean_ms):
        return {
            "memory_mb": mb,
            "threads": 1,
            "warm": {"mean_ms": mean_ms},
            "cost_per_1000": power.cost_per_1000([mean_ms], mb),
        }

    # 1024 MB: half the CPU of 2048 MB, twice the time: the same price; 2048 is 50% faster at no extra cost
    chosen = power.choose([row(1024, 40.0), row(2048, 20.0), row(3008, 19.0)])
    assert chosen["cheapest_mb"] in (1024, 2048) and chosen["memory_mb"] == 2048
    # a faster size that costs much more is not chosen
    assert power.choose([row(512, 30.0), row(3008, 20.0)])["memory_mb"] == 512
    # 2 threads at 3008 MB: chosen when cheap enough and the spinning is off, as shipped
    two = dict(row(3008, 12.0), threads=2, spinning="0")
    spinning = dict(row(3008, 11.0), threads=2, spinning="1")
    chosen = power.choose([row(1769, 20.0), two, spinning])
    assert (chosen["memory_mb"], chosen["threads"], chosen["cheapest_threads"]) == (3008, 2, 1)


def test_own_cgroups():
    text = "12:memory:/process_api/abc\n3:cpu,cpuacct:/\n0::/user.slice\n"
    assert power.own_cgroups(text) == {"memory": "/process_api/abc", "cpu": "/", "cpuacct": "/", "": "/user.slice"}


def test_cgroup_v1_writer(tmp_path, monkeypatch):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    (tmp_path / "memory" / "session").mkdir(parents=True)
    group = power.Cgroup("hv-bench-1024", root=tmp_path, parents={"cpu": "/", "memory": "/session"})
    assert group.version == 1
    assert group.dirs == {
        "cpu": tmp_path / "cpu" / "hv-bench-1024",
        "memory": tmp_path / "memory/session/hv-bench-1024",
    }
    group.create(1024)
    assert group.settings() == {
        "cpu.cfs_period_us": "100000",
        "cpu.cfs_quota_us": "57886",
        "memory.limit_in_bytes": str(1024 * 2**20),
    }
    group.attach(4321)
    assert (group.dirs["cpu"] / "cgroup.procs").read_text() == "4321\n"
    assert (group.dirs["memory"] / "cgroup.procs").read_text() == "4321\n"
    (group.dirs["memory"] / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert group.oom_kills() == 2
    monkeypatch.setattr(power.Cgroup, "_rmdir", staticmethod(shutil.rmtree))  # cgroupfs dirs rmdir with files in
    group.remove()
    assert not group.dirs["cpu"].exists() and not group.dirs["memory"].exists()
    assert (tmp_path / "memory" / "session").is_dir()
    group.remove()  # already gone: nothing to do


def test_cgroup_v2_writer(tmp_path):
    (tmp_path / "user.slice").mkdir()
    group = power.Cgroup("hv-bench-512", root=tmp_path, parents={"": "/user.slice"})
    assert group.version == 2 and group.dirs == {"unified": tmp_path / "user.slice" / "hv-bench-512"}
    group.create(512, period_us=100_000)
    assert group.settings() == {"cpu.max": "28943 100000", "memory.max": str(512 * 2**20)}
    assert (group.dirs["unified"] / "memory.swap.max").read_text() == "0\n"


def _power_results(quick=False):
    def row(mb, mean, threads=1, spinning=None, cold=True):
        r = {
            "memory_mb": mb,
            "threads": threads,
            "spinning": spinning,
            "cpu_share": power.cpu_share(mb),
            "warm": {"median_ms": mean, "mean_ms": mean, "p90_ms": mean * 1.2},
            "cost_per_1000": power.cost_per_1000([mean], mb),
            "warm_peak_rss_mib": 200,
        }
        if cold:
            r["cold"] = {"spawn_to_answer_s": 1.0, "peak_rss_mib": 110, "init_cost_usd": 1e-6}
        return r

    rows = [row(1024, 40.0), row(2048, 20.0), row(3008, 20.0, 2, "0", cold=False)]
    return {
        "environment": {"date": "today", "cpu": "cpu", "cores": 2},
        "model": "m 1",
        "model_dir": "model",
        "images": 10,
        "prices": {"as_of": "today", "lambda_x86_per_gb_second": 1.66667e-05, "lambda_per_request": 2e-7},
        "rows": rows,
        "choice": power.choose(rows),
        "quick": quick,
    }


def test_power_section_and_its_replacement():
    section = "\n".join(report.power_section(_power_results()))
    assert (
        "| 3008, 2 threads, spinning off | 1.70 |" in section
        and "| - / 200 |" in section
        and "**2048 MB, IntraOpThreads 1**" in section
    )
    document = "# Benchmarks\n\n## Warm\n\ntext\n\n## Reproduce\n\n```\nmake bench\n```\n"
    once = report.replace_power_section(document, section)
    assert once.index(report.POWER_START) < once.index("## Reproduce") and once.count(report.POWER_START) == 1
    again = report.replace_power_section(once, section.replace("**2048 MB", "**1024 MB"))
    assert again.count(report.POWER_START) == 1 and "**1024 MB" in again and "**2048 MB" not in again
    assert report.replace_power_section("# no reproduce", section).endswith(report.POWER_END + "\n")


def test_levers_child_on_the_test_model(tmp_path):
    """bench.levers on the stand-in model: every row, the graph facts, the bound and the batch table are there."""
    model_dir = fakes.build_fake_model(tmp_path / "model")
    fakes.synthetic_image_list(tmp_path, 2)
    arguments = ["--model-dir", str(model_dir), "--images-file", str(tmp_path / "images.txt")]
    arguments += ["--work", str(tmp_path / "levers"), "--warmup", "1", "--batch-repeats", "1", "--create-repeats", "1"]
    result = run_bench_child("bench.levers", arguments, tmp_path / "levers.json")
    labels = [r["variant"] for r in result["rows"]]
    assert (
        labels[0] == "shipped options (reference)"
        and "spinning on (onnxruntime's default)" in labels
        and "2 threads, spinning on" in labels
    )
    assert all(r["samples"] == 2 for r in result["rows"])
    assert all(r["max_abs_diff"] < 1e-4 for r in result["rows"])  # every lever computes the same answer
    assert result["macs"]["total"] > 0 and result["bound"]["shipped_ms"] > 0
    assert set(result["throughput"]) == {"1", "4", "8", "16", "32"}
    assert result["tensorflow_imported"] is False
    section = "\n".join(report.levers_section(result))
    assert "## onnxruntime levers" in section and "The physical bound" in section and "VNNI" in section


def test_serving_child_handler_only_durations(tmp_path):
    model_dir = fakes.build_fake_model(tmp_path / "model")
    path = tmp_path / "cell.jpg"
    path.write_bytes(fakes.synthetic_cell(seed=1))
    (tmp_path / "images.txt").write_text(f"{path}\n{path}\n")
    arguments = ["warm", "--model-dir", str(model_dir), "--images-file", str(tmp_path / "images.txt")]
    arguments += ["--batches", "1", "--warmup", "1", "--handler-only", "--durations", "--spinning", "0"]
    result = run_bench_child("bench.serving_child", arguments, tmp_path / "warm.json")
    assert result["bare"] == {} and len(result["durations_ms"]["1"]) == 2
    assert json.dumps(result)  # plain JSON for bench.power
