"""The localiser's answers, now against a reference revision: every field equal, on a large fixed sample (issue #19).

    python -m bench.locate_equality [--reference REV] [--cache FILE] [--quick] [--classifier-sets]
    python -m bench.locate_equality --timing [--repeats N]

logic/localiser.py may only get faster: model 2.0 trains on crops computed by the current LOCALISER_VERSION (the
reference, BASELINE by default, loaded from git: the revision that set that version's answers). For each input below,
both localisers run on the same pixels and their answers must be identical: boxes (ints), scores and px_per_um
(bit-identical floats), ruler, width, height, and the candidate generator's intermediate output (_features_and_boxes:
every box and FEATURES row bit-identical, the cell level), so an equal answer is not an accident of the score
threshold. The inputs (../shared/data, sampled by
sha256, so the sample is fixed):
- 320 bccd images (TRAIN, TEST and TEST_SIMPLE mixed), 200 pbc, all 361 dbn, all fields (bccd, txl, phone);
- robustness versions (export.fields.VERSIONS) of 30 fields, and 12 MP (4000x3000) enlargements of 3 fields;
- events/*.jpg, and synthetic corner cases (grey, RGBA, float, tiny, blank, noise, non-contiguous arrays);
each as an array and as a PIL image (the serving path hands locate a PIL image, export.fields an array), and the
12 MP JPEGs and events also as the cell-model classify path decodes them (decode_for_model at DECODE_SIZE, then
cell_crop.isotropic). --cache keeps the reference's answers (a pickle) so a second run only runs the new code.
Exit status 1 on any difference.

--classifier-sets keeps only the classifier's images: the bccd, pbc and dbn sample, events/*.jpg, the synthetic corner
cases and the classify-path decodes ("served") of the 12 MP enlargements, and leaves out the fields, their robustness
versions and the 12 MP arrays and PIL images. A change meant to move the localiser's answers on whole fields (not on
the images model 2.0's crops come from) keeps LOCALISER_VERSION only when this finds 0 differences.

--datasets instead checks every image of bccd, pbc and dbn (~17,400, all splits), decoded as training decodes it:
how many of the crop models' training and validation images a new LOCALISER_VERSION moves (against --reference).

--timing instead times both localisers side by side in one process, interleaved, warm (one call per image first):
locate on 20 images of each size (bccd 320x240, pbc 360x363, dbn, fields/bccd 640x480; 12 MP enlargements of 5
fields as an array, as a PIL image and as the cell-model classify path decodes them), wall and CPU ms per call,
median and p90, with the load average: on a loaded machine the CPU times are the steadier comparison.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import pickle
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
LOCALISER = "functions/classifier/hematovision/logic/localiser.py"
# the revision whose answers define LOCALISER_VERSION "10" (version 9: 9e066755608a10fc84c68c1980e077c5f3f6935c,
# version 8: 1a591f242dc7fcf07dc7cae6f4fcbfd92eb948c0,
# version 7: 8a106e3934d8a6e5d9a824f429d912fce51ba6b1,
# version 6: 604becf52f42d4ee04807bdbbdcd90684326f1da,
# version 5: 42cdecc2de9ac348e74b0f15fb3f76d89d35f01f,
# version 4: 44e6a1da574a1a8b8c3f3e3d062363205120f8fb,
# version 3: c7ed8d1f66a04e286321d1a334e01c3ed808b69b,
# version 2: c845f356672501d1c50e1a8c2c21c67d797430df, version 1: f4840c11aac0593ea63f6115502cf76787c848d4)
BASELINE = "f29965aab055cfc12decd8ae3a3f5359f353e808"
TWELVE_MP = (4000, 3000)


def load_reference(rev: str) -> types.ModuleType:
    """The localiser module as it was at `rev` (git show), imported under its own name. Its files beside it (the
    candidate network, from version 6 on) are written to build/bench/revisions/REV/, where the module finds them."""
    source = subprocess.run(
        ["git", "show", f"{rev}:{LOCALISER}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    folder = ROOT / "build" / "bench" / "revisions" / rev
    folder.mkdir(parents=True, exist_ok=True)
    network = str(Path(LOCALISER).with_name("candidate_net.onnx"))
    shown = subprocess.run(["git", "show", f"{rev}:{network}"], cwd=ROOT, capture_output=True)
    if shown.returncode == 0:
        (folder / "candidate_net.onnx").write_bytes(shown.stdout)
    module = types.ModuleType("localiser_reference")
    module.__file__ = str(folder / "localiser.py")
    sys.modules[module.__name__] = module  # dataclasses resolve their module by name
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def _by_sha(paths: list[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: hashlib.sha256(p.relative_to(DATA).as_posix().encode()).hexdigest())


def _open(path: Path) -> Image.Image:
    with Image.open(path) as opened:
        return opened.convert("RGB")


def _served(data: bytes) -> Image.Image:
    """What the cell-model classify path hands locate (logic/classifier.py decode): decode_for_model, isotropic."""
    from hematovision.logic.cell_crop import DECODE_SIZE, isotropic
    from hematovision.logic.preprocessing import decode_for_model

    decoded = decode_for_model(data, size=DECODE_SIZE)
    return isotropic(decoded.image, decoded.width, decoded.height)[0]


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _synthetic() -> Iterator[tuple[str, Callable[[], object]]]:
    rng = np.random.default_rng(19)
    field = DATA / "fields" / "bccd" / "images"
    first = sorted(field.iterdir())[0] if field.is_dir() else None
    yield "synthetic/blank", lambda: np.full((240, 320, 3), 230, np.uint8)
    yield "synthetic/black", lambda: np.zeros((240, 320, 3), np.uint8)
    yield "synthetic/noise", lambda: rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    yield "synthetic/tiny", lambda: np.full((12, 40, 3), 200, np.uint8)
    yield "synthetic/thin", lambda: rng.integers(0, 256, (16, 900, 3), dtype=np.uint8)
    if first is not None:
        yield "synthetic/grey-2d", lambda: np.asarray(_open(first).convert("L"))
        yield "synthetic/grey-pil", lambda: _open(first).convert("L")
        yield "synthetic/rgba", lambda: np.asarray(_open(first).convert("RGBA"))
        yield "synthetic/rgba-pil", lambda: _open(first).convert("RGBA")
        yield "synthetic/palette-pil", lambda: _open(first).convert("P")
        yield "synthetic/float01", lambda: np.asarray(_open(first), dtype=np.float32) / 255.0
        yield "synthetic/float255", lambda: np.asarray(_open(first), dtype=np.float64)
        yield "synthetic/strided", lambda: np.asarray(_open(first))[::-1, ::-1]
        yield "synthetic/vignette-big", lambda: _vignetted_big(first)
        for w, h in ((1600, 1200), (2000, 1500), (3000, 800), (801, 1601)):
            yield f"synthetic/resized-{w}x{h}", lambda w=w, h=h: _open(first).resize((w, h), Image.Resampling.BILINEAR)


def _vignetted_big(path: Path) -> Image.Image:
    from export.fields import vignette

    return vignette(_open(path).resize((2400, 1800), Image.Resampling.BICUBIC), np.zeros((0, 4)))[0]


def _dataset_files(dataset: str) -> list[Path]:
    return [p for p in (DATA / dataset).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")]


def _decoded(path: Path) -> Image.Image:
    """The image as training and evaluation hand it to locate (export/train.py: decode_image of the file's bytes)."""
    from hematovision.logic.preprocessing import decode_image

    return decode_image(path.read_bytes())


def dataset_inputs() -> Iterator[tuple[str, Callable[[], object], tuple[str, ...]]]:
    """Every image of bccd, pbc and dbn (all splits), decoded as training decodes it: --datasets."""
    for dataset in ("bccd", "pbc", "dbn"):
        for path in sorted(_dataset_files(dataset)):
            yield f"{dataset}/{path.relative_to(DATA / dataset)}", lambda p=path: _decoded(p), ("pil",)


def inputs(
    quick: bool = False, small: bool = False, classifier_sets: bool = False
) -> Iterator[tuple[str, Callable[[], object], tuple[str, ...]]]:
    """(name, loader, forms): the fixed sample. Forms: "array", "pil" (the loaded image) and "served" (JPEG bytes
    decoded as the cell-model classify path decodes them). quick: about 1/20 of it; small: a few of each kind (the
    regression test's sample, tests/integration/test_localiser_reference.py); classifier_sets: the classifier's
    images only (no fields, no robustness versions; the 12 MP enlargements only as the classify path decodes them)."""
    both = ("array", "pil")
    if small:
        n = lambda k: min(k, 4)  # noqa: E731
    elif quick:
        n = lambda k: max(2, k // 20)  # noqa: E731
    else:
        n = lambda k: k  # noqa: E731
    for index, (name, load) in enumerate(_synthetic()):
        if not small or index % 3 == 0:
            yield name, load, both
    for path in sorted((ROOT / "events").glob("*.jpg")):
        yield f"events/{path.name}", path.read_bytes, ("array", "pil", "served")
    if not DATA.is_dir():
        return
    for dataset, count in (("bccd", 320), ("pbc", 200), ("dbn", 361)):
        for path in _by_sha(_dataset_files(dataset))[: n(count)]:
            yield f"{dataset}/{path.relative_to(DATA / dataset)}", lambda p=path: _open(p), both
    fields = {s: _by_sha(sorted((DATA / "fields" / s / "images").glob("*"))) for s in ("bccd", "txl", "phone")}
    if classifier_sets:
        for s, paths in list(fields.items())[: 1 if small else 3]:
            yield (
                f"fields/{s}/{paths[0].name}@12mp",
                lambda p=paths[0]: _jpeg(_open(p).resize(TWELVE_MP, Image.Resampling.BICUBIC)),
                ("served",),
            )
        return
    for s, paths in fields.items():
        for path in paths[: n(len(paths))]:
            yield f"fields/{s}/{path.name}", lambda p=path: _open(p), both
    from export.fields import VERSIONS

    for s, paths in fields.items():
        for path in paths[: 1 if small else n(10)]:
            for version, make in VERSIONS.items():
                yield f"fields/{s}/{path.name}@{version}", lambda p=path, m=make: m(_open(p), np.zeros((0, 4)))[0], both
    for s, paths in list(fields.items())[: 1 if small else 3]:
        yield (
            f"fields/{s}/{paths[0].name}@12mp",
            lambda p=paths[0]: _jpeg(_open(p).resize(TWELVE_MP, Image.Resampling.BICUBIC)),
            ("array", "pil", "served"),
        )


def as_form(value, form: str):
    if isinstance(value, bytes):
        if form == "served":
            return _served(value)
        image = _open_bytes(value)
        return np.asarray(image) if form == "array" else image
    if form == "array" and isinstance(value, Image.Image):
        return np.asarray(value)
    return value


def _open_bytes(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as opened:
        return opened.convert("RGB")


def answer(module: types.ModuleType, image) -> dict:
    """locate's answer as plain values, with the candidate generator's output captured on the way."""
    captured = {}
    inner = module._features_and_boxes

    def spy(*args, **kwargs):
        out = inner(*args, **kwargs)
        captured["candidates"] = out
        return out

    module._features_and_boxes = spy
    try:
        result = module.locate(image)
    finally:
        module._features_and_boxes = inner
    _, boxes, features, level = captured["candidates"]
    return {
        "boxes": [tuple(b) for b in result.boxes],
        "scores": list(result.scores),
        "px_per_um": result.px_per_um,
        "ruler": result.ruler,
        "size": (result.width, result.height),
        "candidate_boxes": np.asarray(boxes, dtype=np.float64),
        "features": np.asarray(features, dtype=np.float64),
        "cell_level": level,
    }


def differences(ref: dict, new: dict) -> list[str]:
    out = []
    for key in ("boxes", "scores", "px_per_um", "ruler", "size", "cell_level"):
        if ref[key] != new[key]:
            out.append(f"{key}: {ref[key]!r} != {new[key]!r}")
    for key in ("candidate_boxes", "features"):
        a, b = ref[key], new[key]
        if a.shape != b.shape:
            out.append(f"{key}: shape {a.shape} != {b.shape}")
        elif a.tobytes() != b.tobytes():
            out.append(f"{key}: max |diff| {float(np.nanmax(np.abs(a - b))):.3g}")
    return out


def timing_inputs() -> Iterator[tuple[str, object]]:
    """(row, image): 20 images of each size as locate gets them (PIL, as the serving path hands them), 12 MP too,
    and a 12 MP photo with no cell."""
    for row, folder, pattern in (
        ("bccd 320x240", DATA / "bccd", "*/*/*.jpeg"),
        ("pbc 360x363", DATA / "pbc", "*/*.jpg"),
        ("dbn", DATA / "dbn", "*/*.jpg"),
        ("fields/bccd 640x480", DATA / "fields" / "bccd" / "images", "*.jpg"),
    ):
        for path in _by_sha(sorted(folder.glob(pattern)))[:20]:
            yield row, _open(path)
    for path in _by_sha(sorted((DATA / "fields" / "bccd" / "images").glob("*.jpg")))[:5]:
        data = _jpeg(_open(path).resize(TWELVE_MP, Image.Resampling.BICUBIC))
        yield "12 MP, array", np.asarray(_open_bytes(data))
        yield "12 MP, PIL", _open_bytes(data)
        yield "12 MP, served (decode_for_model + isotropic)", _served(data)
    # a photo with no white cell takes the longest path (no candidate, then the one-cell check)
    blank = _jpeg(Image.fromarray(_blank_slide(TWELVE_MP)))
    for _ in range(5):
        yield "12 MP blank slide (no cell), PIL", _open_bytes(blank)


def _blank_slide(size: tuple[int, int]) -> np.ndarray:
    """A slide's empty background (light grey, sensor noise): no cell in view."""
    noise = np.random.default_rng(20).normal(0.0, 5.0, (size[1], size[0], 3))
    return np.clip(228.0 + noise, 0, 255).astype(np.uint8)


def timing(reference: types.ModuleType, new: types.ModuleType, repeats: int, rev: str) -> int:
    """Both localisers on the same images, interleaved call by call; wall and CPU ms, median and p90 per row."""
    rows: dict[str, dict[str, list[float]]] = {}
    different = 0
    load_before = os.getloadavg()[0]
    for row, image in timing_inputs():
        times = rows.setdefault(row, {})
        if differences(answer(reference, image), answer(new, image)):  # also the warm-up call of each
            different += 1
        for _ in range(repeats):
            for side, module in (("reference", reference), ("now", new)):
                wall, cpu = time.perf_counter(), time.process_time()
                module.locate(image)
                times.setdefault(f"{side} wall", []).append((time.perf_counter() - wall) * 1000)
                times.setdefault(f"{side} cpu", []).append((time.process_time() - cpu) * 1000)
    load = max(load_before, os.getloadavg()[0])
    print(
        f"locate, ms per call, 1 thread, {repeats} warm calls per image; load average up to {load:.1f} on "
        f"{os.cpu_count()} CPUs; reference {rev[:12]} | now"
    )
    print(
        "| images | calls | reference wall median / p90 | now wall median / p90 | reference CPU median / p90 "
        "| now CPU median / p90 | CPU speed-up (median) |"
    )
    print("|---|---|---|---|---|---|---|")

    def stat(values: list[float]) -> str:
        ordered = sorted(values)
        return f"{statistics.median(ordered):.1f} / {ordered[int(0.9 * (len(ordered) - 1))]:.1f}"

    for row, t in rows.items():
        speedup = statistics.median(t["reference cpu"]) / statistics.median(t["now cpu"])
        print(
            f"| {row} | {len(t['now wall'])} | {stat(t['reference wall'])} | {stat(t['now wall'])} | "
            f"{stat(t['reference cpu'])} | {stat(t['now cpu'])} | {speedup:.2f}x |"
        )
    print(f"answers different on {different} of the timed images")
    return 1 if different else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", default=BASELINE, help="git revision of the reference localiser")
    parser.add_argument("--cache", type=Path, help="pickle of the reference's answers (read if present, else written)")
    parser.add_argument("--quick", action="store_true", help="about 1/20 of the sample")
    parser.add_argument(
        "--classifier-sets",
        action="store_true",
        help="only the classifier's images (bccd, pbc, dbn, events, synthetic cases, classify-path decodes)",
    )
    parser.add_argument(
        "--datasets",
        action="store_true",
        help="instead: every image of bccd, pbc and dbn, as training decodes it",
    )
    parser.add_argument("--timing", action="store_true", help="time both localisers per image size instead")
    parser.add_argument("--repeats", type=int, default=5, help="--timing: calls per image and localiser")
    args = parser.parse_args(argv)

    from hematovision.logic import localiser as new

    if args.timing:
        return timing(load_reference(args.reference), new, args.repeats, args.reference)
    splits = []  # the inputs where a split cut fired (two touching white cells): the sample must exercise it
    split_cut = new._split_cut

    def counting_split_cut(*a):
        out = split_cut(*a)
        splits.append(out is not None)
        return out

    new._split_cut = counting_split_cut
    reference = None
    cached: dict = {}
    key = (args.reference, args.quick, args.classifier_sets, args.datasets)
    if args.cache and args.cache.exists():
        with args.cache.open("rb") as f:
            stored = pickle.load(f)
        if stored.get("key") == key:
            cached = stored["answers"]
    if not cached:
        reference = load_reference(args.reference)
    fresh: dict = {}
    checked = failed = boxes = 0
    rulers: dict[str, int] = {}
    started = time.perf_counter()
    sample = dataset_inputs() if args.datasets else inputs(args.quick, classifier_sets=args.classifier_sets)
    for name, load, forms in sample:
        value = load()
        for form in forms:
            image = as_form(value, form)
            tag = f"{name} [{form}]"
            if tag in cached:
                ref = cached[tag]
            else:
                ref = answer(reference, image)
                fresh[tag] = ref
            got = answer(new, image)
            checked += 1
            rulers[got["ruler"]] = rulers.get(got["ruler"], 0) + 1
            boxes += len(got["boxes"])
            diff = differences(ref, got)
            if diff:
                failed += 1
                print(f"DIFFERENT {tag}: " + "; ".join(diff), flush=True)
        if checked % 200 < len(forms):
            print(f"  {checked} checked, {failed} different, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if args.cache and fresh and not cached:
        with args.cache.open("wb") as f:
            pickle.dump({"key": key, "answers": fresh}, f)
    print(f"{checked} localisations compared with {args.reference[:12]}: {failed} different")
    print(f"coverage: {rulers}; {boxes} boxes; a split cut in {sum(splits)} of {len(splits)} candidate passes")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
