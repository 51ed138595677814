"""Does the localiser give the same answer when the same photo arrives another way?

python -m export.answer_stability [--split report|tune] [--sets bccd,txl,phone] [--rev REV] [--limit N]

For each field of the split (../shared/data/fields, export.fields' fixed split), the localiser's boxes on the photo as
it is are compared with its boxes on three copies of it, mapped back to the photo's pixels:
- `12mp`: enlarged (bilinear) to a 4000-pixel long side, the path a phone's 12 MP photo takes (Pillow's reduce, then
  the resize to the working size);
- `jpeg85`: re-saved as a JPEG at quality 85;
- `rot90`: turned a quarter (counter-clockwise).
An answer has changed when the two lists differ in length or do not pair one to one (export.fields.match: each box's
centre inside the other). Prints, per set, how many fields changed under each copy. No truth is involved: this is
the answer's stability, not its accuracy. --rev: the localiser as it was at a git revision, to compare two versions.
"""

from __future__ import annotations

import argparse
import io
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from export.fields import DATA_ROOT, SETS, load_fields, match

TWELVE_MP_LONG_SIDE = 4000
JPEG_QUALITY = 85


def boxes_of(locate: Callable, image: Image.Image) -> np.ndarray:
    return np.asarray(locate(np.asarray(image)).boxes, dtype=np.float64).reshape(-1, 4)


def enlarged(locate: Callable, image: Image.Image) -> np.ndarray:
    """Boxes found on the photo enlarged to a 12 MP photo's long side, in the photo's pixels."""
    k = TWELVE_MP_LONG_SIDE / max(image.size)
    large = image.resize((round(image.width * k), round(image.height * k)), Image.Resampling.BILINEAR)
    return boxes_of(locate, large) * np.array([image.width / large.width, image.height / large.height] * 2)


def resaved(locate: Callable, image: Image.Image) -> np.ndarray:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return boxes_of(locate, decoded.convert("RGB"))


def unrotate(boxes: np.ndarray, width: int) -> np.ndarray:
    """Boxes found on the photo turned a quarter counter-clockwise (a pixel (x, y) went to (y, width - x)), back in
    the photo's pixels."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.stack([width - b[:, 3], b[:, 0], width - b[:, 1], b[:, 2]], axis=1)


def turned(locate: Callable, image: Image.Image) -> np.ndarray:
    return unrotate(boxes_of(locate, image.transpose(Image.Transpose.ROTATE_90)), image.width)


COPIES = {"12mp": enlarged, "jpeg85": resaved, "rot90": turned}


def changed(native: np.ndarray, other: np.ndarray) -> bool:
    return len(native) != len(other) or len(match(other, native)) != len(native)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.answer_stability", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA_ROOT, help="folder holding fields/")
    parser.add_argument("--split", choices=["report", "tune"], default="report")
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated sets (default: all)")
    parser.add_argument("--rev", help="the localiser as it was at this git revision")
    parser.add_argument("--limit", type=int, help="the first N fields of each set only")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.rev:
        from bench.locate_equality import load_reference

        locate = load_reference(args.rev).locate
    else:
        from hematovision.logic.localiser import locate
    fields = load_fields(args.data, [s for s in args.sets.split(",") if s])
    total = dict.fromkeys(COPIES, 0)
    checked = 0
    for name in [s for s in args.sets.split(",") if s]:
        chosen = [f for f in fields if f.set == name and f.split == args.split][: args.limit]
        counts = dict.fromkeys(COPIES, 0)
        for f in chosen:
            with Image.open(f.path(args.data)) as opened:
                image = opened.convert("RGB")
            native = boxes_of(locate, image)
            for copy, find in COPIES.items():
                counts[copy] += changed(native, find(locate, image))
        for copy in COPIES:
            total[copy] += counts[copy]
        checked += len(chosen)
        print(
            f"{name}/{args.split}: {len(chosen)} fields, answer changed: "
            + ", ".join(f"{copy} {n}" for copy, n in counts.items()),
            flush=True,
        )
    print(
        f"all: {sum(total.values())} of {checked * len(COPIES)} checks changed ("
        + ", ".join(f"{copy} {n}" for copy, n in total.items())
        + ")"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
