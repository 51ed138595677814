"""Smoke check of a built Lambda package, run by a Python 3.12 interpreter in isolated mode.

    python3.12 -I -S lambda_smoke.py <package-dir> [--handler module.attr]

-S keeps the interpreter's own site-packages out, so only the standard library and the package are
importable - as in Lambda, minus the runtime's own boto3/botocore (nothing here needs them at import).
Prints one JSON line with what was checked; exits non-zero with a traceback on any failure.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import sys


def main(argv: list[str]) -> int:
    pkg = os.path.abspath(argv[0])
    handler = None
    if "--handler" in argv:
        handler = argv[argv.index("--handler") + 1]
    sys.path.insert(0, pkg)
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
    os.environ.setdefault("AWS_REGION", os.environ["AWS_DEFAULT_REGION"])
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "hematovision")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "HematoVision")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("LAMBDA_TASK_ROOT", pkg)
    report: dict[str, object] = {"python": sys.version.split()[0]}

    import numpy as np

    report["numpy"] = np.__version__
    assert np.__file__.startswith(pkg), np.__file__
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert float((a @ a.T).sum()) > 0  # exercises the bundled OpenBLAS

    from PIL import Image, features

    report["pillow"] = Image.__version__ if hasattr(Image, "__version__") else features.version("pil")
    decoded = []
    for fmt in ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF"):
        buf = io.BytesIO()
        Image.new("RGB", (32, 24), (200, 30, 90)).save(buf, fmt)
        buf.seek(0)
        im = Image.open(buf)
        im.load()
        assert im.size == (32, 24), (fmt, im.size)
        im.convert("RGB").resize((224, 224), Image.Resampling.BILINEAR)
        decoded.append(fmt)
    report["decoded_formats"] = decoded

    import onnxruntime as ort
    from onnxruntime.datasets import get_example

    report["onnxruntime"] = ort.__version__
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(get_example("sigmoid.onnx"), opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    x = np.zeros([d if isinstance(d, int) else 1 for d in inp.shape], dtype=np.float32)
    y = sess.run(None, {inp.name: x})[0]
    assert np.allclose(y, 0.5), y

    model = os.path.join(pkg, "model", "hematovision.onnx")
    if os.path.exists(model):
        sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        x = np.zeros((1, 224, 224, 3), dtype=np.uint8)
        names = [o.name for o in sess.get_outputs()]
        wanted = "probabilities" if "probabilities" in names else names[0]
        out = sess.run([wanted], {inp.name: x})[0]
        assert out.shape[-1] == 4 and abs(float(out.sum()) - 1.0) < 1e-3, out
        report["model_inference"] = True

    for mod in (
        "pydantic",
        "aws_lambda_powertools",
        "aws_lambda_powertools.event_handler",
        "aws_lambda_powertools.logging",
        "aws_lambda_powertools.metrics",
    ):
        importlib.import_module(mod)
    from aws_lambda_powertools import Logger, Metrics
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

    Logger()
    Metrics()
    APIGatewayRestResolver(enable_validation=True)

    if handler:
        module_name, _, attr = handler.rpartition(".")
        module = importlib.import_module(module_name)
        assert callable(getattr(module, attr)), handler
        report["handler"] = handler
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
