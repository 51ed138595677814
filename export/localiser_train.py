"""Fit the localiser's candidate scorer on the TUNE split of the whole-field photos (never on report).

python -m export.localiser_train [--folds 5] [--versions blur,scale_x0.4,...] [--check-version saturation_x0.5]
python -m export.localiser_train --fit-scale

The stain-based candidate generator (hematovision.logic.localiser._features_and_boxes) proposes nucleus candidates
with a FEATURES row each; a candidate is positive when it matches a true WBC box one to one (export.fields.match).
A logistic regression (L2, Newton's method, numpy) on the standardised features scores them. It is fitted on the
tune fields as they are and in each robustness version (export.fields.VERSIONS; all of them by default), so the
scorer learns what a blur, a colour cast or a washed-out photo does to a nucleus. Its threshold is chosen by
cross-validation, in folds by field (a field and its versions share a fold): the one maximising the mean over the
three sets of the F1 score (recall and precision), averaged over the plain fields and every version. The script
prints the out-of-fold figures of every version at that threshold, and the constants to paste into localiser.py
(MODEL_*). Since localiser version 6 the served score is the mean of this logistic's and the candidate network's
probabilities (localiser.candidate_scores): the threshold printed here is the logistic's alone; SCORE_MIN is the
mean's, chosen by `python -m export.candidate_net cv`.

--fit-scale fits the red-cell scale's SCALE_FIT instead (fit_scale), on the tune fields that have a scale truth.
Fit it first: the scorer's features depend on the scale.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

import numpy as np
from PIL import Image

from export.fields import DATA_ROOT, SETS, VERSIONS, check_split, load_fields, match
from hematovision.logic import localiser as L

L2 = 1.0
PATCH_SHAPE = (L.PATCH_SIDE, L.PATCH_SIDE, 3)


@dataclass
class Candidates:
    group: np.ndarray  # field index per candidate
    set: np.ndarray  # set name per candidate
    boxes: np.ndarray
    features: np.ndarray
    positive: np.ndarray
    truths: dict  # field index -> (set, number of true boxes)
    truth_boxes: dict  # field index -> true WBC boxes
    patches: np.ndarray | None = None  # with_patches: L.candidate_patches of each candidate (export.candidate_net)


def collect(
    fields, version: str | None = None, root=DATA_ROOT, first_group: int = 0, with_patches: bool = False
) -> Candidates:
    """Every candidate of the fields (in a robustness version of export.fields.VERSIONS, or as they are); field i is
    group first_group + i. with_patches: each candidate's patch as well (L.candidate_patches)."""
    groups, sets, boxes, features, positive, truths, truth_boxes, patches = [], [], [], [], [], {}, {}, []
    for g, f in enumerate(fields, start=first_group):
        with Image.open(f.path(root)) as opened:
            image = opened.convert("RGB")
        image, truth = (image, f.wbc) if version is None else VERSIONS[version](image, f.wbc)
        rgb = np.asarray(image)
        prepared = L._working_copy(rgb)
        _, b, x, _ = L._features_and_boxes(rgb, prepared=prepared)
        if with_patches:
            patches.append(L.candidate_patches(prepared[1], b) if len(b) else np.zeros((0, *PATCH_SHAPE), np.float32))
        groups.append(np.full(len(b), g))
        sets.append(np.full(len(b), f.set))
        boxes.append(b)
        features.append(x)
        positive.append(np.array([bool(match(box[None], truth)) for box in b], dtype=bool))
        truths[g] = (f.set, len(truth))
        truth_boxes[g] = truth
    return Candidates(
        np.concatenate(groups),
        np.concatenate(sets),
        np.concatenate(boxes).reshape(-1, 4),
        np.concatenate(features).reshape(-1, len(L.FEATURES)),
        np.concatenate(positive),
        truths,
        truth_boxes,
        np.concatenate(patches) if with_patches else None,
    )


def fit(x: np.ndarray, y: np.ndarray, l2: float = L2) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Standardise, then L2 logistic regression by Newton's method on L.expand (the standardised features and their
    clipped squares): (mean, scale, weights, bias)."""
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = np.c_[L.expand((x - mean) / scale), np.ones(len(x))]
    w = np.zeros(z.shape[1])
    reg = np.full(z.shape[1], l2)
    reg[-1] = 0.0
    for _ in range(50):
        p = 1 / (1 + np.exp(-np.clip(z @ w, -30, 30)))
        grad = z.T @ (p - y) + reg * w
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return mean, scale, w[:-1], float(w[-1])


def predict(model, x: np.ndarray) -> np.ndarray:
    mean, scale, w, b = model
    return 1 / (1 + np.exp(-np.clip(L.expand((x - mean) / scale) @ w + b, -30, 30)))


def select(c: Candidates, p: np.ndarray, threshold: float) -> np.ndarray:
    """localiser.locate's choice: by score, above the threshold, skipping a box whose centre is in a kept box."""
    keep = np.zeros(len(p), bool)
    for g in np.unique(c.group):
        idx = np.nonzero(c.group == g)[0]
        kept = []
        for i in idx[np.argsort(-p[idx], kind="stable")]:
            if p[i] < threshold:
                break
            cx, cy = (c.boxes[i, 0] + c.boxes[i, 2]) / 2, (c.boxes[i, 1] + c.boxes[i, 3]) / 2
            if any(c.boxes[k, 0] <= cx <= c.boxes[k, 2] and c.boxes[k, 1] <= cy <= c.boxes[k, 3] for k in kept):
                continue
            kept.append(i)
        keep[kept] = True
    return keep


def figures(c: Candidates, keep: np.ndarray) -> dict[str, tuple[float, float]]:
    """Recall and precision per set of the kept boxes, matched one to one as export.fields does."""
    matched = dict.fromkeys(SETS, 0)
    for g, (name, _) in c.truths.items():
        idx = np.nonzero(keep & (c.group == g))[0]
        matched[name] += len(match(c.boxes[idx], c.truth_boxes[g])) if len(idx) else 0
    out = {}
    for name in SETS:
        true = sum(n for s, n in c.truths.values() if s == name)
        chosen = int((keep & (c.set == name)).sum())
        out[name] = (matched[name] / max(true, 1), matched[name] / max(chosen, 1))
    return out


def _pooled(parts: list[Candidates]) -> Candidates:
    return Candidates(
        np.concatenate([c.group for c in parts]),
        np.concatenate([c.set for c in parts]),
        np.concatenate([c.boxes for c in parts]),
        np.concatenate([c.features for c in parts]),
        np.concatenate([c.positive for c in parts]),
        {k: v for c in parts for k, v in c.truths.items()},
        {k: v for c in parts for k, v in c.truth_boxes.items()},
        np.concatenate([c.patches for c in parts]) if all(c.patches is not None for c in parts) else None,
    )


def _mean_f1(figs: dict[str, tuple[float, float]], sets) -> float:
    """The mean F1 over `sets` (those holding true boxes)."""
    return float(np.mean([2 * r * p / max(r + p, 1e-9) for name, (r, p) in figs.items() if name in sets]))


def collect_versions(tune, versions, with_patches: bool = False) -> dict[str | None, Candidates]:
    """The candidates of the tune fields as they are (key None) and in each version; field i of every part has
    group i (mod len(tune)), so a field and its versions share a cross-validation fold."""
    n = len(tune)
    parts = {None: collect(tune, with_patches=with_patches)}
    for i, version in enumerate(versions, start=1):
        parts[version] = collect(tune, version, first_group=i * n, with_patches=with_patches)
    return parts


def fold_of_field(n: int, folds: int, seed: int = 0) -> np.ndarray:
    """The cross-validation fold of each of n fields (every scorer compared out of fold uses these very folds)."""
    return np.random.default_rng(seed).integers(0, folds, n)


def out_of_fold(parts: dict, train: list, n: int, folds: int, l2: float = L2, seed: int = 0) -> dict:
    """Each part's scores from the scorer fitted, on the `train` parts, over the other folds (folds by field)."""
    fold = fold_of_field(n, folds, seed)
    pool = _pooled([parts[v] for v in train])
    train_fold = fold[pool.group % n]
    scores = {v: np.zeros(len(c.group)) for v, c in parts.items()}
    for k in range(folds):
        fitted = fit(pool.features[train_fold != k], pool.positive[train_fold != k], l2)
        for v, c in parts.items():
            held = fold[c.group % n] == k
            scores[v][held] = predict(fitted, c.features[held])
    return scores


def best_threshold(plain: Candidates, p: np.ndarray) -> tuple[float, float]:
    """The threshold with the best mean F1 over the sets on the plain fields: (threshold, mean F1)."""
    sets = {name for name, _ in plain.truths.values()}
    thresholds = np.arange(0.05, 0.96, 0.025)
    f1 = [_mean_f1(figures(plain, select(plain, p, t)), sets) for t in thresholds]
    i = int(np.argmax(f1))
    return float(thresholds[i]), f1[i]


def best_threshold_over_versions(parts: dict, scores: dict) -> tuple[float, float]:
    """The threshold with the best mean F1 over the sets, averaged over the plain fields and every version (the
    scorer is fitted on all of them; a threshold chosen on the plain fields alone gave the versions away):
    (threshold, that mean F1)."""
    sets = {name for name, _ in parts[None].truths.values()}
    thresholds = np.arange(0.05, 0.96, 0.025)
    f1 = [
        float(np.mean([_mean_f1(figures(c, select(c, scores[v], t)), sets) for v, c in parts.items()]))
        for t in thresholds
    ]
    i = int(np.argmax(f1))
    return float(thresholds[i]), f1[i]


def _line(name: str, parts: dict, scores: dict, threshold: float) -> str:
    sets = [s for s in SETS if s in {name for name, _ in parts[None].truths.values()}]
    out = []
    for version, c in parts.items():
        figs = figures(c, select(c, scores[version], threshold))
        out.append(
            f"{version or 'plain'} "
            + "  ".join(f"{s} {figs[s][0]:.3f}/{figs[s][1]:.3f}" for s in sets)
            + f" F1 {_mean_f1(figs, set(sets)):.3f}"
        )
    return f"{name} @ {threshold:.3f}: " + " | ".join(out)


def check_version(tune, version: str, folds: int = 5, l2: float = L2, seed: int = 0) -> None:
    """Does adding a robustness version of the tune fields to the scorer's training help on that version without
    costing the fields as they are? Out-of-fold figures (folds by field: a field and its version share a fold) on
    the plain and the versioned tune fields apart, for the served score (in-sample), a refit on the plain fields
    and a refit on both; each refit's threshold is the one best on the plain fields (mean F1 over the sets)."""
    parts = collect_versions(tune, [version], with_patches=True)
    committed = {v: L.served_score(L.score(c.features), L.network_probability(c.patches)) for v, c in parts.items()}
    print(_line("committed scorer (in-sample)", parts, committed, L.SCORE_MIN))
    for name, train in (("refit on plain", [None]), (f"refit on plain + {version}", [None, version])):
        scores = out_of_fold(parts, train, len(tune), folds, l2, seed)
        print(_line(name + " (out of fold)", parts, scores, best_threshold(parts[None], scores[None])[0]), flush=True)


SCALE_SETS = ("bccd", "txl")  # the sets with red-cell boxes (the phone photos have none)


def fit_scale(tune, root=DATA_ROOT) -> tuple[float, float]:
    """SCALE_FIT by least squares: log(true px/um) = log(the peak statistic's px/um) + a + b x the red-cell cover, over
    the tune fields of SCALE_SETS with a scale truth where the localiser used the red-cell ruler. The statistic's
    px/um is the localiser's answer with the current SCALE_FIT divided out. Prints the fields within +-15% of the truth
    (export.fields' figure, in sample) before and after, per set."""
    from export.fields import SCALE_TOLERANCE

    rows = []
    for f in tune:
        if f.set not in SCALE_SETS or f.px_per_um is None:
            continue
        with Image.open(f.path(root)) as opened:
            found = L.locate(np.asarray(opened.convert("RGB")))
        if found.ruler != "red_cells":
            rows.append((f.set, f.px_per_um, None, None, found.px_per_um))
            continue
        cover = found.red_cell_cover
        statistic = math.log(found.px_per_um) - (L.SCALE_FIT[0] + L.SCALE_FIT[1] * cover)
        rows.append((f.set, f.px_per_um, statistic, cover, found.px_per_um))
    used = [r for r in rows if r[2] is not None]
    y = np.array([math.log(r[1]) - r[2] for r in used])
    x = np.array([[1.0, r[3]] for r in used])
    (a, b), *_ = np.linalg.lstsq(x, y, rcond=None)
    for name in SCALE_SETS:
        mine = [r for r in rows if r[0] == name]
        before = np.mean([r[4] is not None and abs(r[4] / r[1] - 1) <= SCALE_TOLERANCE for r in mine])
        after = np.mean(
            [r[2] is not None and abs(math.exp(r[2] + a + b * r[3]) / r[1] - 1) <= SCALE_TOLERANCE for r in mine]
        )
        print(f"  {name}: {len(mine)} fields with a truth; within +-{SCALE_TOLERANCE:.0%}: {before:.3f} -> {after:.3f}")
    print(f"SCALE_FIT = ({a:.4g}, {b:.4g})  # {len(used)} tune fields with the red-cell ruler")
    return float(a), float(b)


def set_passes(text: str) -> None:
    """The generator's threshold sets for this process (an experiment): "chroma,low,high,gap;..." into L.PASSES."""
    L.PASSES = _threshold_sets(text)


def _threshold_sets(text: str, first_id: int = 0) -> tuple:
    """Threshold sets written "chroma,low,high,gap;..." as PASSES entries, numbered from first_id."""
    return tuple((*(float(v) for v in item.split(",")), first_id + i) for i, item in enumerate(text.split(";")))


def add_eyepiece_passes(text: str) -> None:
    """More threshold sets ("chroma,low,high,gap;...") appended to L.EYEPIECE_PASSES (an experiment, this process
    only): the served generator runs them, after its own, only on photos inside an eyepiece's circle."""
    L.EYEPIECE_PASSES = L.EYEPIECE_PASSES + _threshold_sets(text, len(L.PASSES) + len(L.EYEPIECE_PASSES))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.localiser_train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--versions", default=",".join(VERSIONS), help="comma-separated export.fields.VERSIONS trained on ('' for none)"
    )
    parser.add_argument("--l2", type=float, default=L2)
    parser.add_argument("--passes", default="", help="chroma,low,high;...: the generator's threshold sets")
    parser.add_argument("--set", action="append", default=[], help="NAME=VALUE: a generator constant of localiser.py")
    parser.add_argument(
        "--check-version",
        default="",
        help="a VERSIONS name: out-of-fold figures with and without it in training, on plain and versioned tune fields",
    )
    parser.add_argument("--fit-scale", action="store_true", help="fit SCALE_FIT (the red-cell scale) and exit")
    args = parser.parse_args(argv)
    if args.passes:
        set_passes(args.passes)
    for item in args.set:
        name, value = item.split("=")
        setattr(L, name, float(value))
    fields = load_fields()
    check_split(fields)
    tune = [f for f in fields if f.split == "tune"]
    if args.fit_scale:
        fit_scale(tune)
        return 0
    if args.check_version:
        check_version(tune, args.check_version, args.folds, args.l2)
        return 0
    versions = [v for v in args.versions.split(",") if v]
    parts = collect_versions(tune, versions)
    c = _pooled(list(parts.values()))
    print(
        f"{len(c.group)} candidates from {len(c.truths)} fields (plain + {len(versions)} versions), "
        f"{int(c.positive.sum())} positive"
    )
    for name in SETS:
        print(f"  generator recall {name} (plain): {figures(parts[None], parts[None].set == name)[name][0]:.3f}")
    scores = out_of_fold(parts, list(parts), len(tune), args.folds, args.l2)
    threshold, f1 = best_threshold_over_versions(parts, scores)
    print(_line("out of fold", parts, scores, threshold).replace(" | ", "\n  "))
    model = fit(c.features, c.positive, args.l2)
    mean, scale, w, b = model
    np.set_printoptions(precision=5, suppress=True, linewidth=200)

    def arr(v):
        return "np.array([" + ", ".join(f"{x:.5g}" for x in v) + "])"

    print(f"logistic alone: threshold {threshold:.3f}, out-of-fold mean F1 over the tune fields and versions {f1:.3f}")
    print(f"MODEL_MEAN = {arr(mean)}")
    print(f"MODEL_SCALE = {arr(scale)}")
    print(f"MODEL_WEIGHTS = {arr(w)}")
    print(f"MODEL_BIAS = {b:.5g}")
    print(f"PASSES = {L.PASSES}")
    names = [*L.FEATURES, *(f"{n}^2" for n in L.FEATURES)]
    print("weights:", dict(zip(names, np.round(w, 3).tolist(), strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
