"""`sam build` of the working tree (offline: no Docker, no AWS), then checks of the built package."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hematovision.logic.inference import sha256_file
from tests.infrastructure.infra_helpers import (
    FUNCTION_DIR,
    HANDLER,
    MIB,
    MODEL_DIR,
    ROOT,
    find_python312,
    load_cfn,
    model_card,
    package_size,
    run_tool,
    skip_or_fail,
)

SMOKE = Path(__file__).with_name("lambda_smoke.py")
# Libraries the python3.12 runtime (Amazon Linux 2023) provides; everything else must be bundled.
SYSTEM_LIBS = {
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "librt.so.1",
    "libpthread.so.0",
    "libutil.so.1",
    "libstdc++.so.6",
    "libgcc_s.so.1",
    "ld-linux-x86-64.so.2",
    "libz.so.1",
    "libcrypt.so.2",
}


def test_build_layout(sam_build: Path, built_function: Path):
    built = load_cfn(sam_build / "template.yaml")
    fn = built["Resources"]["ClassifierFunction"]["Properties"]
    assert fn["CodeUri"] == "ClassifierFunction"
    for logical_id in ("UsagePlans", "Monitoring"):
        location = built["Resources"][logical_id]["Properties"]["Location"]
        assert (sam_build / location).is_file(), location
    assert (built_function / "hematovision" / "__init__.py").is_file()
    # local-only code stays out of the Lambda package
    assert not (built_function / "hematovision" / "local").exists()
    assert not (built_function / "hematovision" / "cli.py").exists()
    for junk in ("bin", "botocore", "pip", "setuptools"):
        assert not (built_function / junk).exists(), junk
    names = {p.name for p in built_function.rglob("*")}
    assert "tests" not in names and "RECORD" not in names
    assert not list(built_function.glob("*.dist-info/RECORD"))
    # every wheel is for CPython 3.12 on x86_64 Linux
    extensions = [p.name for p in built_function.rglob("*.so") if ".cpython-" in p.name]
    assert extensions and all("cpython-312-x86_64-linux-gnu" in n for n in extensions), extensions


def test_pre_traffic_hook_package(sam_build: Path):
    """The hook's package is its handler and its reference photo: no dependency, nothing else (hooks/Makefile)."""
    built = load_cfn(sam_build / "template.yaml")
    assert built["Resources"]["PreTrafficHookFunction"]["Properties"]["CodeUri"] == "PreTrafficHookFunction"
    hook_dir = sam_build / "PreTrafficHookFunction"
    assert sorted(p.name for p in hook_dir.iterdir()) == ["neutrophil.jpg", "pre_traffic.py"]


def test_bytecode_for_the_cold_start(python312: str, built_function: Path):
    """functions/classifier/cold_start_bytecode.py: unchecked-hash .pyc (the zip keeps no mtimes) for CPython
    3.12, for the modules a cold start imports - the handler, numpy's core - and not for the rest."""
    pycs = list(built_function.rglob("*.pyc"))
    assert pycs and all(p.name.endswith(".cpython-312.pyc") for p in pycs), [p.name for p in pycs[:5]]
    for pyc in pycs:
        flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
        assert flags == 0b01, f"{pyc}: not an unchecked-hash pyc (flags {flags:#b})"
    compiled = {p.relative_to(built_function).as_posix() for p in pycs}
    assert "hematovision/handlers/__pycache__/api.cpython-312.pyc" in compiled
    assert "numpy/_core/__pycache__/numeric.cpython-312.pyc" in compiled
    assert not any(name.startswith("numpy/polynomial/") for name in compiled)  # imported by no request


def test_package_size_budget(built_function: Path):
    report, text = package_size(built_function)
    print(text)
    assert report["total_mib"] <= report["lambda_limit_mib"], text
    if report["total_mib"] > report["budget_mib"]:
        binding = max(
            (
                p.stat().st_size
                for p in (built_function / "onnxruntime" / "capi").glob("onnxruntime_pybind11_state*.so")
            ),
            default=0,
        )
        if binding > 30 * MIB:
            # Known, reported cause: onnxruntime 1.32's Python binding alone is 35 MiB (1.23.2: 22 MiB,
            # 1.20.1: 17 MiB). Any other overrun is a real failure.
            pytest.xfail(
                f"package {report['total_mib']:.1f} MiB > {report['budget_mib']:.0f} MiB budget: "
                f"onnxruntime binding is {binding / MIB:.1f} MiB (pin in functions/classifier/requirements.txt)"
            )
        pytest.fail(f"package over the {report['budget_mib']:.0f} MiB budget:\n{text}")


def test_package_size_script(built_function: Path):
    proc = subprocess.run(
        ["python3", str(ROOT / "infra" / "package_size.py"), str(built_function), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    assert report["total_bytes"] > 10 * MIB
    assert "onnxruntime" in report["groups"] and "numpy" in report["groups"]


def test_native_libraries_resolve(built_function: Path):
    """Every bundled ELF library finds its dependencies in the package or in the runtime's base set."""
    readelf = shutil.which("readelf")
    if not readelf:
        pytest.skip("readelf (binutils) not installed")
    bundled = {p.name for p in built_function.rglob("*.so*") if p.is_file()}
    missing = {}
    for lib in built_function.rglob("*.so*"):
        if not lib.is_file():
            continue
        out = subprocess.run([readelf, "-h", "-d", str(lib)], capture_output=True, text=True, timeout=60).stdout
        if "Advanced Micro Devices X86-64" not in out:
            missing[str(lib.relative_to(built_function))] = "not an x86-64 ELF"
            continue
        needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out))
        unresolved = needed - bundled - SYSTEM_LIBS
        if unresolved:
            missing[str(lib.relative_to(built_function))] = sorted(unresolved)
    assert not missing, missing


def test_model_in_package_matches_card(built_function: Path):
    card = model_card()
    if card is None:
        skip_or_fail(f"model not committed yet: {MODEL_DIR.relative_to(ROOT)}/hematovision.onnx + model_card.json")
    onnx = built_function / "model" / "hematovision.onnx"
    assert onnx.is_file(), "the model must travel inside the Lambda package"
    assert re.fullmatch(r"[0-9a-f]{64}", card["sha256"]), card.get("sha256")
    assert sha256_file(onnx) == card["sha256"], "packaged model differs from the sha256 its card states"
    assert json.loads((built_function / "model" / "model_card.json").read_text()) == card


def test_the_localisers_network_travels_in_the_package_with_the_bytes_it_is_pinned_to(built_function: Path):
    from hematovision.logic import localiser

    packaged = built_function / "hematovision" / "logic" / localiser.CANDIDATE_NET.name
    assert packaged.is_file(), "the candidate network must travel inside the Lambda package"
    assert sha256_file(packaged) == localiser.CANDIDATE_NET_SHA256


@pytest.fixture(scope="module")
def python312() -> str:
    found = find_python312()
    if not found:
        pytest.skip(
            "no Python 3.12 interpreter here (Lambda's runtime version; tried $HEMATOVISION_PYTHON312, PATH, "
            "pyenv, uv): the built package cannot be imported on this machine"
        )
    return found


def _template_environment() -> dict[str, str]:
    """The function's environment as template.yaml sets it, parameters at their defaults."""
    template = load_cfn(ROOT / "template.yaml")
    env = {}
    variables = template["Resources"]["ClassifierFunction"]["Properties"]["Environment"]["Variables"]
    for name, value in variables.items():
        if isinstance(value, dict) and "Ref" in value:
            value = template["Parameters"][value["Ref"]].get("Default", "")
        env[name] = str(value)
    return env


def _run_smoke(python312: str, package: Path, extra_env: dict[str, str], *args: str) -> dict:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_LAMBDA_FUNCTION_NAME": "hematovision-smoke",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        **_template_environment(),
        "POWERTOOLS_TRACE_DISABLED": "true",
        **extra_env,
    }
    # -I isolated, -S no site-packages (only the stdlib + the package, as in Lambda), -B no .pyc
    proc = subprocess.run(
        [python312, "-I", "-S", "-B", str(SMOKE), str(package), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=package,
    )
    assert proc.returncode == 0, f"smoke test failed under {python312}:\n{proc.stdout}\n{proc.stderr[-6000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_dependencies_work_under_python312(python312: str, built_function: Path):
    """numpy/OpenBLAS, Pillow codecs, onnxruntime and powertools work after the trimming."""
    report = _run_smoke(python312, built_function, {})
    assert report["python"].startswith("3.12")
    assert set(report["decoded_formats"]) == {"JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF"}
    if model_card() is not None:
        assert report.get("model_inference") is True


def _fake_model_dir(tmp_path: Path) -> Path | None:
    """tests/fakes.py builds a random-weights stand-in honouring the artifact contract (needs onnx)."""
    if importlib.util.find_spec("onnx") is None:
        return None
    from tests import fakes

    target = tmp_path / "fake-model"
    target.mkdir()
    fakes.build_fake_model(target)
    return target


def test_handler_importable_with_built_dependencies(python312: str, built_function: Path, tmp_path: Path):
    module_file = FUNCTION_DIR / Path(*HANDLER.split(".")[:-1]).with_suffix(".py")
    if not module_file.exists():
        pytest.skip(f"handler module {module_file.relative_to(ROOT)} does not exist yet (issue 3)")
    extra_env = {}
    if model_card() is None:
        fake = _fake_model_dir(tmp_path)
        if fake is None:
            skip_or_fail("no model to load at init: real model not committed and tests/fakes.py unusable")
        # the handler loads the model at import; until the real one lands, point it at the stand-in
        extra_env["HEMATOVISION_MODEL_DIR"] = str(fake)
    report = _run_smoke(python312, built_function, extra_env, "--handler", HANDLER)
    assert report["handler"] == HANDLER


def test_built_template_lints_clean(sam_build: Path, cfn_lint):
    proc = run_tool([cfn_lint, "--", sam_build / "template.yaml"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
