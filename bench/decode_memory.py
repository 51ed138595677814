"""Peak memory and time of decoding hostile-but-valid images: small files that declare up to 50 megapixels.

Each case is one request through the real Lambda handler in a fresh process (`python -m bench.decode_memory
--child ...`): the process imports the handler (the model loads, as in a Lambda init), handles the one event, and
reports its status, its time and its peak RSS (VmHWM of /proc/self/status, which includes the init). The bound
is 75% of the function's MemorySize in template.yaml (1327 MB at 1769 MB).

    .venv/bin/python -m bench.decode_memory                 # every case, a table; exit 1 if one is over a bound
    .venv/bin/python -m bench.decode_memory --only png-rgba-50mp batch-16-png-rgba-50mp

tests/hardening/test_decode_memory.py runs the same cases (and the handler under a cgroup memory limit, and
through `hematovision serve --memory-mb`), with a loose time guard; the < 2 s target is this script's.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = ROOT / "functions" / "classifier" / "model"
WIDTH, HEIGHT = 8000, 6250  # 50,000,000 pixels: exactly the pixel cap (limits.MAX_PIXELS)
FIELD = (4000, 3000)  # a 12 MP whole-field photo: must stay accepted in every format
MEMORY_FRACTION = 0.75  # of the function's MemorySize
TIME_TARGET_S = 2.0
CLASSIFY, BATCH, ANALYZE = "/v1/classify", "/v1/classify/batch", "/v1/analyze"
COLOUR = (182, 120, 168, 200)  # a stained-smear pink, with some transparency


@dataclass
class MemoryCase:
    name: str
    path: str
    content_type: str
    body: bytes
    status: int  # the status after issue #20
    item_statuses: list[int] | None = field(default=None)  # batch: each item's status

    @property
    def event_body_bytes(self) -> int:
        return len(self.body)


# ------------------------------------------------------------------ builders (tiny files, huge declared sizes)
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_uniform(width: int, height: int, bit_depth: int, colour_type: int, pixel: bytes) -> bytes:
    """A PNG of one colour, written row by row (no full image in memory): IDAT compresses ~1000:1."""
    row = b"\x00" + pixel * width
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(row) for _ in range(height)]
    idat = b"".join(parts) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def bmp_rle8(width: int, height: int) -> bytes:
    """An 8-bit RLE-compressed BMP of one palette colour: ~66 bytes a row whatever the width."""
    row = bytearray()
    left = width
    while left:
        run = min(255, left)
        row += bytes((run, 1))
        left -= run
    row += b"\x00\x00"  # end of line
    pixels = bytes(row) * height + b"\x00\x01"  # end of bitmap
    palette = b"\x00\x00\x00\x00" + bytes((COLOUR[2], COLOUR[1], COLOUR[0], 0)) + b"\x00" * 4 * 254
    offset = 14 + 40 + len(palette)
    header = struct.pack("<2sIHHI", b"BM", offset + len(pixels), 0, 0, offset)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(pixels), 2835, 2835, 256, 0)
    return header + info + palette + pixels


def pillow(mode: str, size: tuple[int, int], value, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, value).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def multipart(parts: list[tuple[str, bytes]], boundary: str = "hvMemoryBoundary") -> tuple[str, bytes]:
    out = io.BytesIO()
    for filename, data in parts:
        out.write(f"--{boundary}\r\n".encode())
        out.write(f'Content-Disposition: form-data; name="image"; filename="{filename}"\r\n'.encode())
        out.write(b"Content-Type: application/octet-stream\r\n\r\n")
        out.write(data)
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", out.getvalue()


def images(width: int = WIDTH, height: int = HEIGHT) -> dict[str, tuple[str, bytes]]:
    """name -> (content type, file) for one declared size."""
    r, g, b, a = COLOUR
    size = (width, height)
    deflate = {"compression": "tiff_adobe_deflate"}
    return {
        "png-rgba": ("image/png", png_uniform(width, height, 8, 6, bytes((r, g, b, a)))),
        "png-la": ("image/png", png_uniform(width, height, 8, 4, bytes((r, a)))),
        "png-16bit-grey": ("image/png", png_uniform(width, height, 16, 0, struct.pack(">H", r * 257))),
        "png-16bit-rgba": (
            "image/png",
            png_uniform(width, height, 16, 6, struct.pack(">HHHH", *(c * 257 for c in COLOUR))),
        ),
        "png-rgb": ("image/png", png_uniform(width, height, 8, 2, bytes((r, g, b)))),
        "png-1bit": ("image/png", _png_1bit(width, height)),
        "tiff-32bit-int": ("image/tiff", pillow("I", size, r * 257, "TIFF", **deflate)),
        "tiff-32bit-float": ("image/tiff", pillow("F", size, float(r), "TIFF", **deflate)),
        "tiff-rgba": ("image/tiff", pillow("RGBA", size, COLOUR, "TIFF", **deflate)),
        "tiff-16bit-grey": ("image/tiff", pillow("I;16", size, r * 257, "TIFF", **deflate)),
        "tiff-cmyk": ("image/tiff", pillow("CMYK", size, (10, 60, 20, 0), "TIFF", **deflate)),
        "gif": ("image/gif", pillow("P", size, 1, "GIF")),
        "bmp-rle8": ("image/bmp", bmp_rle8(width, height)),
        "jpeg": ("image/jpeg", pillow("RGB", size, COLOUR[:3], "JPEG", quality=80)),
        "jpeg-cmyk": ("image/jpeg", pillow("CMYK", size, (10, 60, 20, 0), "JPEG", quality=80)),
        "webp-rgba-lossless": ("image/webp", _webp(size)),
    }


def _png_1bit(width: int, height: int) -> bytes:
    row = b"\x00" + b"\xaa" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _webp(size: tuple[int, int]) -> bytes:
    width, height = min(size[0], 16383), min(size[1], 16383)  # WebP's largest side
    return pillow("RGBA", (width, height), COLOUR, "WEBP", lossless=True, quality=0, method=0)


def build_cases() -> list[MemoryCase]:
    """The 50 MP cases (accepted or refused by the decode budget), 12 MP fields (accepted), and batches."""
    try:
        from hematovision.logic.preprocessing import decode_cost
    except ImportError:  # before issue #20: no decode budget, everything is expected to pass

        def decode_cost(data: bytes) -> int:
            return 0

    cases = []
    big = images()
    for name, (content_type, data) in big.items():
        cost = decode_cost_of(data, decode_cost)
        cases.append(MemoryCase(f"{name}-50mp", CLASSIFY, content_type, data, 413 if cost is None else 200))
    for name, (content_type, data) in images(*FIELD).items():
        cases.append(MemoryCase(f"{name}-12mp", CLASSIFY, content_type, data, 200))
    for name in ("png-rgba", "tiff-32bit-int", "png-16bit-grey", "gif"):  # whole-field analysis decodes larger
        content_type, data = big[name]
        cost = decode_cost_of(data, decode_cost)
        cases.append(MemoryCase(f"analyze-{name}-50mp", ANALYZE, content_type, data, 413 if cost is None else 200))
    worst = big["png-rgba"][1]
    content_type, body = multipart([(f"{i}.png", worst) for i in range(16)])
    statuses = batch_statuses([worst] * 16, decode_cost)
    cases.append(MemoryCase("batch-16-png-rgba-50mp", BATCH, content_type, body, 200, statuses))
    mixed = [big[n][1] for n in ("tiff-32bit-int", "png-16bit-grey", "png-la", "gif", "tiff-rgba", "png-16bit-rgba")]
    mixed = (mixed * 3)[:16]
    content_type, body = multipart([(f"{i}.bin", d) for i, d in enumerate(mixed)])
    cases.append(MemoryCase("batch-16-mixed-50mp", BATCH, content_type, body, 200, batch_statuses(mixed, decode_cost)))
    return cases


def decode_cost_of(data: bytes, decode_cost) -> int | None:
    """The image's decode cost in bytes, or None when it is over the per-image budget."""
    from hematovision import limits

    cost = decode_cost(data)
    if not hasattr(limits, "MAX_DECODE_BYTES"):
        return cost
    MAX_DECODE_BYTES = limits.MAX_DECODE_BYTES  # noqa: N806
    return cost if cost <= MAX_DECODE_BYTES else None


def batch_statuses(datas: list[bytes], decode_cost) -> list[int]:
    """Per-item statuses under the per-image and per-request decode budgets (decoded in order)."""
    from hematovision import limits

    MAX_DECODE_BYTES = getattr(limits, "MAX_DECODE_BYTES", 1 << 62)  # noqa: N806
    MAX_REQUEST_DECODE_BYTES = getattr(limits, "MAX_REQUEST_DECODE_BYTES", 1 << 62)  # noqa: N806
    spent, statuses = 0, []
    for data in datas:
        cost = decode_cost(data)
        if cost > MAX_DECODE_BYTES or spent + cost > MAX_REQUEST_DECODE_BYTES:
            statuses.append(413)
        else:
            spent += cost
            statuses.append(200)
    return statuses


# ------------------------------------------------------------------ measuring one case in a fresh process
def function_memory_mb(template: Path = ROOT / "template.yaml") -> int:
    from hematovision.local.template import load_api_config

    return load_api_config(template).function_memory


def memory_bound_mb(template: Path = ROOT / "template.yaml") -> float:
    return MEMORY_FRACTION * function_memory_mb(template)


def peak_rss_kb() -> int:
    """This process's peak resident set (VmHWM), in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class _Context:
    function_name = "hematovision-decode-memory"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:hematovision-decode-memory"
    aws_request_id = "decode-memory"
    log_group_name = "/aws/lambda/hematovision-decode-memory"
    log_stream_name = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 15000


def child(spec_path: Path) -> int:
    """Runs in the fresh process: init the handler, handle one event, print one JSON line."""
    spec = json.loads(spec_path.read_text())
    body = Path(spec["body"]).read_bytes()
    os.environ["HEMATOVISION_MODEL_DIR"] = spec["model_dir"]
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "HematoVision")
    os.environ["LOG_LEVEL"] = "WARNING"
    from hematovision.handlers import api
    from hematovision.local.events import build_event

    event = build_event(
        "POST",
        spec["path"],
        spec["path"],
        headers=[("Content-Type", spec["content_type"]), ("x-api-key", "bench")],
        body=body,
        binary=True,
        api_key="bench",
    )
    del body
    init_kb = peak_rss_kb()
    start = time.perf_counter()
    response = api.lambda_handler(event, _Context())
    seconds = time.perf_counter() - start
    answer = json.loads(response["body"])
    items = [r["status"] for r in answer.get("results", [])] or None
    code = (answer.get("error") or {}).get("code")
    print(
        json.dumps(
            {
                "status": response["statusCode"],
                "code": code,
                "items": items,
                "seconds": seconds,
                "init_mb": init_kb / 1024,
                "peak_mb": peak_rss_kb() / 1024,
            }
        ),
        flush=True,
    )
    return 0


def measure(case: MemoryCase, model_dir: Path = MODEL_DIR, work: Path | None = None, timeout: float = 120) -> dict:
    """Run `case` in a fresh process; {status, code, items, seconds, init_mb, peak_mb} (or {"error": ...})."""
    with tempfile.TemporaryDirectory(dir=work) as folder:
        body_path = Path(folder) / "body.bin"
        body_path.write_bytes(case.body)
        spec_path = Path(folder) / "spec.json"
        spec = {"body": str(body_path), "path": case.path, "content_type": case.content_type}
        spec_path.write_text(json.dumps({**spec, "model_dir": str(Path(model_dir).resolve())}))
        done = subprocess.run(
            [sys.executable, "-m", "bench.decode_memory", "--child", str(spec_path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{") and '"peak_mb"' in line]
    if done.returncode != 0 or not lines:
        return {"error": f"exit {done.returncode}: {done.stderr[-800:]}"}
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.decode_memory", description=__doc__.split("\n")[0])
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--only", nargs="*", help="case names (default: all)")
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR)
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child)
    bound = memory_bound_mb()
    cases = [c for c in build_cases() if not args.only or c.name in args.only]
    print(f"bound: {bound:.0f} MB peak RSS (75% of MemorySize {function_memory_mb()} MB), target < {TIME_TARGET_S} s")
    print(f"{'case':<28} {'body KB':>8} {'status':>6} {'want':>5} {'time s':>7} {'init MB':>8} {'peak MB':>8}  ok")
    rows, failed = [], 0
    for case in cases:
        result = measure(case, args.model_dir)
        if "error" in result:
            failed += 1
            print(f"{case.name:<28} {len(case.body) / 1024:>8.0f}  FAILED: {result['error'][-300:]}")
            rows.append({"case": case.name, **result})
            continue
        ok = (
            result["status"] == case.status
            and (case.item_statuses is None or result["items"] == case.item_statuses)
            and result["peak_mb"] < bound
            and result["seconds"] < TIME_TARGET_S
        )
        failed += not ok
        print(
            f"{case.name:<28} {len(case.body) / 1024:>8.0f} {result['status']:>6} {case.status:>5} "
            f"{result['seconds']:>7.2f} {result['init_mb']:>8.0f} {result['peak_mb']:>8.0f}  {'ok' if ok else 'NO'}"
            + (f"  items {result['items']}" if result["items"] else "")
            + (f"  {result['code']}" if result["code"] else "")
        )
        rows.append({"case": case.name, "body_bytes": len(case.body), "want": case.status, **result})
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
