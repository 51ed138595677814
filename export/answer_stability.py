"""Does the localiser give the same answer when the same photo arrives another way?

python -m export.answer_stability [--split report|tune] [--sets bccd,txl,phone] [--rev REV] [--limit N]

For each field of the split (../shared/data/fields, export.fields' fixed split), the localiser's boxes on the photo as
it is, mapped into each of three copies of it (as export.fields maps the true boxes of its versions), are compared
with its boxes on the copy:
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
from pathlib import Path

import numpy as np
from PIL import Image

from export.fields import DATA_ROOT, SETS, _locate_boxes, load_fields, match, rescale, rotate90

TWELVE_MP_LONG_SIDE = 4000
JPEG_QUALITY = 85


def enlarged(image: Image.Image, boxes: np.ndarray) -> tuple[Image.Image, np.ndarray]:
    """The photo enlarged to a 12 MP photo's long side, and the boxes in its pixels (export.fields.rescale)."""
    return rescale(image, boxes, TWELVE_MP_LONG_SIDE / max(image.size))


def resaved(image: Image.Image, boxes: np.ndarray) -> tuple[Image.Image, np.ndarray]:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB"), boxes


# each copy of the photo with the photo's boxes mapped into its pixels (export.fields' versions' own mappings)
COPIES = {"12mp": enlarged, "jpeg85": resaved, "rot90": rotate90}


def changed(native: np.ndarray, other: np.ndarray) -> bool:
    """`native`: the photo's boxes mapped into the copy's pixels; `other`: the boxes found on the copy."""
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
    sets = [s for s in args.sets.split(",") if s]
    fields = load_fields(args.data, sets)
    total = dict.fromkeys(COPIES, 0)
    checked = 0
    for name in sets:
        chosen = [f for f in fields if f.set == name and f.split == args.split][: args.limit]
        counts = dict.fromkeys(COPIES, 0)
        for f in chosen:
            with Image.open(f.path(args.data)) as opened:
                image = opened.convert("RGB")
            native, _ = _locate_boxes(locate, image)
            for copy, make in COPIES.items():
                copied, mapped = make(image, native)
                counts[copy] += changed(mapped, _locate_boxes(locate, copied)[0])
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
