"""Benchmark: the correction loop, as a simulated user paints it.

    python bench/loop.py                                   # every case and strategy, 10 strokes
    python bench/loop.py --cases blobs --strategies suggest worst --strokes 15

The user of interactive-segmentation benchmarks: start from strokes on a few z slices, then
each round train with the default method (``auto``, the model of the round before known, as the
web app and the CLI pass it), segment the whole volume through the real pipelines, find the
largest wrong region and paint one stroke of the true class at its most interior point. Where
the stroke goes depends on the strategy:

- ``suggest``: the plane and region of the product's top suggestion (``suggestions.json`` of the
  model), the largest error inside its box (the whole plane when the box holds none);
- ``order``: z slices in a fixed order (top to bottom in steps of a tenth of the stack, as a user
  without guidance browses), the first one with an error;
- ``sequential``: z slices literally in order, from z0 each round (z0, z1, z2, ...), the first one
  with an error: the user "looking at slices in order" of issue 22 (``order`` is a spaced browse,
  a stronger strategy);
- ``worst``: the oracle, the plane of any axis holding the largest wrong region.

Printed per case and strategy: the structure's Dice over the whole volume after each stroke,
its mean over the strokes, strokes to reach 0.90 and 0.95 and to halve the start's error (``to
1/2``: where a case starts above 0.90 or 0.95 those read 0 for every strategy), strokes that changed nothing (no voxel within ``--reach`` voxels
of the stroke, the stroke itself left out, changed class, though the wrong region reached beyond
the stroke), strokes that lowered Dice by more than
0.01, the methods chosen and whether the U-Net was scored, carried or not, and the wall and CPU
seconds each round took (CPU of this process; a torch or forest thread counts); where the model
keeps corrections local (``LocalCorrections``, ``LocalNetwork``), the Dice of its ``near`` part
alone, which learned every correction everywhere; the model's own estimate of the Dice against the
truth (its numbers' mean error; where too little was painted for a number, how many of its ranges
held the truth and how wide they were); the peak RSS at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))

from methods import dice, snow, write_scan  # noqa: E402 - the bench folder's own module

from ml4paleo.compute.painted import keep_painted  # noqa: E402
from ml4paleo.io.omezarr import open_level  # noqa: E402
from ml4paleo.models import labels_from_proba, load_model  # noqa: E402
from ml4paleo.pipelines import _local_fit, suggest  # noqa: E402
from ml4paleo.pipelines.segment import segment_volume  # noqa: E402
from ml4paleo.pipelines.train import train_model  # noqa: E402
from ml4paleo.planes import AXES, SliceRef  # noqa: E402
from ml4paleo.testing import phantoms  # noqa: E402

CASES = {
    "blobs": lambda seed=0: phantoms.touching_blobs(seed=seed),
    "thin": lambda seed=0: phantoms.thin_tubes(seed=seed),
    "texture": lambda seed=0: phantoms.texture_only(seed=seed),
    "snow": lambda seed=0: snow(),
}
STRATEGIES = ("suggest", "order", "sequential", "worst")


def plane(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    return np.take(volume, index, axis=axis)


def largest_error(pred: np.ndarray, truth: np.ndarray, box=None) -> tuple[int, np.ndarray] | None:
    """(true class, mask of the largest 4-connected wrong region of one true class) of a plane,
    inside ``box`` (u0, v0, u1, v1) when given; None where the plane is right."""
    wrong = pred != truth
    if box is not None:
        inside = np.zeros_like(wrong)
        u0, v0, u1, v1 = box
        inside[u0:u1, v0:v1] = True
        wrong &= inside
    best = None
    for c in np.unique(truth[wrong]):
        comps, n = ndi.label(wrong & (truth == c))
        if n:
            sizes = np.bincount(comps.ravel())[1:]
            k = int(np.argmax(sizes)) + 1
            if best is None or sizes[k - 1] > best[1].sum():
                best = (int(c), comps == k)
    return best


def stroke_in(region: np.ndarray, radius: int = 3) -> np.ndarray:
    """A round dab of at most ``radius`` voxels at the region's most interior point, inside it."""
    depth = ndi.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    u, v = np.unravel_index(int(np.argmax(depth)), region.shape)
    r = int(np.clip(depth[u, v] - 1, 1, radius))
    uu, vv = np.ogrid[: region.shape[0], : region.shape[1]]
    return region & ((uu - u) ** 2 + (vv - v) ** 2 <= r * r)


@dataclass
class Run:
    dices: list[float] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    """CPU seconds of this process each round (the wall clock depends on the machine's load)."""
    idle: int = 0
    worse: int = 0
    planes: list[str] = field(default_factory=list)
    estimates: list[float | tuple[float, float] | None] = field(default_factory=list)
    """The model's own estimate of the structure's Dice (``suggestions.json``) each round: a number,
    or (low, high) where too little was painted to measure the outlines' odds."""

    near: list[tuple[int, float]] = field(default_factory=list)
    """(round, Dice) of the near model alone where the model keeps corrections local."""

    def reach(self, goal: float) -> int | None:
        return next((i for i, d in enumerate(self.dices) if d >= goal), None)

    def halved(self) -> int | None:
        """Strokes until the start's error (1 - Dice) is halved: a target relative to the case,
        where 0.90 and 0.95 are reached before the first stroke."""
        return self.reach(1 - (1 - self.dices[0]) / 2)

    def mean_after(self) -> float | None:
        """Mean Dice over the strokes (round 0 left out): the whole curve, not one crossing."""
        return float(np.mean(self.dices[1:])) if len(self.dices) > 1 else None


def choose(strategy: str, pred: np.ndarray, truth: np.ndarray, model: Path, cursor: list[int], ann: dict):
    """(axis, index, true class, wrong region) where the user paints this round, or None."""
    if strategy == "suggest":
        path = model / "suggestions.json"
        found = json.loads(path.read_text()).get("suggestions", []) if path.exists() else []
        for s in found:
            a = AXES.index(s["axis"])
            if not 0 <= s["index"] < pred.shape[a]:
                continue
            hit = largest_error(plane(pred, a, s["index"]), plane(truth, a, s["index"]), s.get("bbox"))
            hit = hit or largest_error(plane(pred, a, s["index"]), plane(truth, a, s["index"]))
            if hit:
                if s.get("reason", "").startswith("few painted"):
                    print(f"  suggestion {s['axis']}{s['index']} box {s.get('bbox')}: a scarce class's near miss")
                return (a, s["index"], *hit)
        return None
    if strategy in ("order", "sequential"):
        n = pred.shape[0]
        step = max(n // 10, 1) if strategy == "order" else 1
        order = [z for start in range(step) for z in range(start, n, step)]
        if strategy == "sequential":
            cursor[0] = 0  # from the top again each round: the first slice with an error
        for _ in range(n):
            z = order[cursor[0] % n]
            cursor[0] += 1
            hit = largest_error(pred[z], truth[z])
            if hit:
                return (0, z, *hit)
        return None
    best = None
    for a in range(3):
        for i in range(pred.shape[a]):
            hit = largest_error(plane(pred, a, i), plane(truth, a, i))
            if hit and (best is None or hit[1].sum() > best[3].sum()):
                best = (a, i, *hit)
    return best


def held_out_scores(model: Path) -> str:
    """Each candidate's held-out Dice per class (strokes; the band near outlines in brackets) and
    per fold, from the model's metadata: what ``auto`` chose on."""
    meta = json.loads((model / "metadata.json").read_text())
    out = []
    for n, c in meta.get("candidates", {}).items():
        classes = " ".join(fmt(m["dice"]) for m in c.get("metrics", {}).values()) or "-"
        band = " ".join(fmt(m["dice"]) for m in c.get("band", {}).values())
        folds = " ".join(fmt(d) for d in c.get("fold_dice", []))
        out.append(f"{n} {classes}" + (f" [{band}]" if band else "") + (f" folds {folds}" if folds else "")
                   + (" (carried)" if c.get("carried") else ""))
    return "; ".join(out) + f"  | {meta.get('method')}: {meta.get('method_reason')}"


def near_alone(path: Path, model: Path, shape) -> np.ndarray | None:
    """Labels of the whole volume from the ``near`` part alone of a model whose corrections act
    where painted (what the same training gives without the rule), None for any other model."""
    found = load_model(model)
    if getattr(found, "near", None) is None:
        return None
    start, stop = (0, 0, 0), tuple(shape)
    proba = found.near.predict_region(open_level(path, 0), start, stop)
    return labels_from_proba(keep_painted(proba, found.painted, start, stop))


def estimate_of(doc: dict, name: str) -> float | tuple[float, float] | None:
    """The structure's estimated Dice in ``suggestions.json``: its number, or its (low, high) range."""
    if name in doc.get("estimated_dice", {}):
        return doc["estimated_dice"][name]
    span = (doc.get("estimated_dice_range") or {}).get(name)
    return tuple(span) if span else None


def fmt_estimate(value) -> str:
    return f"{value[0]:.3f}-{value[1]:.3f}" if isinstance(value, tuple) else fmt(value)


def fmt(value) -> str:
    return "-" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))


def key_of(axis: int, index: int) -> SliceRef:
    return SliceRef(AXES[axis], index)


def painted_with(ann: dict, hit) -> tuple[dict, np.ndarray]:
    """The annotations with the loop user's stroke in ``hit`` (axis, index, class, wrong region),
    and the stroke's pixels on its plane (every bench that replays the loop paints through this)."""
    axis, index, cls, region = hit
    dab = stroke_in(region)
    key = key_of(axis, index)
    mask = ann.get(key, np.zeros(region.shape, np.uint8)).copy()
    mask[dab] = cls + 1
    return {**ann, key: mask}, dab


def run_case(name: str, strategy: str, vol: np.ndarray, truth: np.ndarray, path: Path, work: Path,
             strokes: int, start: int, reach: int, scores: bool = False) -> Run:
    n = vol.shape[0]
    ann: dict[SliceRef, np.ndarray] = {}
    for z in sorted({int(round(z)) for z in np.linspace(0.3 * n, 0.7 * n, start)}):
        ann[SliceRef("z", z)] = phantoms.strokes(truth[z])
    run, previous, cursor, before = Run(), None, [0], None
    last_stroke = np.zeros(vol.shape, bool)
    struct = truth == 1
    for round_ in range(strokes + 1):
        model, labels = work / f"{name}-{strategy}-{round_}", work / f"{name}-{strategy}-{round_}.ome.zarr"
        t0, c0 = time.perf_counter(), time.process_time()
        kwargs = {"previous_model": previous} if previous else {}
        if os.environ.get("LOOP_DUMP"):  # the annotations of each round, to replay one by hand
            np.savez(Path(os.environ["LOOP_DUMP"]) / f"{name}-{strategy}-{round_}.npz",
                     **{ref.name: m for ref, m in ann.items()})
        result = train_model(path, ann, model, validate="later", **kwargs)
        segment_volume(path, model, labels)
        pred = np.asarray(open_level(labels, 0)[:])
        run.seconds.append(time.perf_counter() - t0)
        run.cpu.append(time.process_time() - c0)
        if run.methods and result.method != run.methods[-1]:
            print(f"  {name:8s} {strategy:8s} method {run.methods[-1]} -> {result.method}: {result.validation.get('reason')}")
        run.methods.append(result.method)
        run.dices.append(dice(pred == 1, struct))
        near = near_alone(path, model, vol.shape)  # the rule's counterfactual: the model that learned everything
        if near is not None:
            run.near.append((round_, dice(near == 1, struct)))
            print(f"  {name:8s} {strategy:8s} stroke {round_:2d}  near alone (the model that learned every "
                  f"correction everywhere) dice {run.near[-1][1]:.4f}")
        run.estimates.append(estimate_of(result.suggestions, result.classes[1]))
        if before is not None:
            around = ndi.binary_dilation(last_stroke, iterations=reach) & ~last_stroke
            # a stroke that covered its whole wrong region needed nothing else to change
            if before[1] and not np.any((pred != before[0]) & around):
                run.idle += 1
                print(f"  {name:8s} {strategy:8s} stroke {round_:2d} changed nothing around it")
            if run.dices[-1] < run.dices[-2] - 0.01:
                run.worse += 1
        print(f"  {name:8s} {strategy:8s} stroke {round_:2d}  dice {run.dices[-1]:.4f}  {result.method:14s} "
              f"{run.seconds[-1]:5.1f} s ({run.cpu[-1]:5.1f} CPU s)  estimated {fmt_estimate(run.estimates[-1])}  "
              f"U-Net {result.network.split(':')[0] or '-'}"
              + (" (its folds not trained: no switch possible)" if "folds were not trained" in result.network else "")
              + (f"  painted {run.planes[-1]}" if run.planes else ""), flush=True)
        if scores:
            print(f"  {name:8s} {strategy:8s}   scores {held_out_scores(model)}")
        hit = None if round_ == strokes else choose(strategy, pred, truth, model, cursor, ann)
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
        previous = model  # the next round's model replaces this one, as the web app's does
        shutil.rmtree(labels, ignore_errors=True)
        if round_ == strokes:
            break
        if hit is None:
            print(f"  {name}: no error left to paint")
            break
        axis, index, cls, region = hit
        ann, dab = painted_with(ann, hit)
        last_stroke = np.zeros(vol.shape, bool)
        at = [slice(None)] * 3
        at[axis] = index
        last_stroke[tuple(at)] = dab
        before = (pred, bool((region & ~dab).any()))
        run.planes.append(f"{AXES[axis]}{index}:{'bg' if cls == 0 else 'st'}")
    return run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=list(STRATEGIES))
    ap.add_argument("--strokes", type=int, default=10, help="correction strokes per run")
    ap.add_argument("--start", type=int, default=3, help="z slices painted with strokes at the start")
    ap.add_argument("--reach", type=int, default=5, help="voxels around a stroke that must change")
    ap.add_argument("--two-forests", action="store_true",
                    help="beyond a background correction's reach, the mean of two full forests (before ONE_WALK)")
    ap.add_argument("--network-local-all", action="store_true",
                    help="a U-Net's corrections of every class act fully only near where painted (an experiment)")
    ap.add_argument("--background-local-only", action="store_true",
                    help="a forest's structure corrections teach everywhere (the rule before "
                         "_local_fit.EVERY_CLASS_LOCAL)")
    ap.add_argument("--outline-dab-share", action="store_true",
                    help="a U-Net's background dab on a plane of outlines that began as a correction reaches beyond "
                         "its reach by FAR_SHARE (the rule before _local_fit.OUTLINE_DAB_ALONE)")
    ap.add_argument("--seed", type=int, default=0, help="the generated volumes' seed (another draw of each case)")
    ap.add_argument("--scores", action="store_true",
                    help="print each round's held-out scores of every candidate (metadata.json)")
    ap.add_argument("--scarce-first", action="store_true",
                    help="a class painted on fewer than FEW_PAINTED voxels puts its near misses first (suggest.SCARCE_FIRST)")
    ap.add_argument("--focus-weight", type=float,
                    help="a warm start's weight of the newest strokes in the U-Net's loss (unet.FOCUS_WEIGHT; "
                         "the bench's only)")
    ap.add_argument("--across-every-class", action="store_true",
                    help="ACROSS_RIGHT on each fold's Dice over every class, not only those painted there "
                         "(scoring.ACROSS_PRESENT off: the rule before)")
    args = ap.parse_args(argv)
    if args.across_every_class:
        from ml4paleo.pipelines import scoring

        scoring.ACROSS_PRESENT = False
    if args.scarce_first:
        suggest.SCARCE_FIRST = True
    if args.focus_weight is not None:
        from ml4paleo.models import unet

        unet.FOCUS_WEIGHT = args.focus_weight
    if args.two_forests:
        _local_fit.ONE_WALK = False
    if args.background_local_only:
        _local_fit.EVERY_CLASS_LOCAL = False
    if args.network_local_all:
        _local_fit.NETWORK_LOCAL_CLASSES = tuple(range(255))
    if args.outline_dab_share:
        _local_fit.OUTLINE_DAB_ALONE = False
    warnings.filterwarnings("ignore")
    if args.seed and "snow" in args.cases:
        print(f"snow is one real scan: --seed {args.seed} draws the generated cases only; snow runs as always")
    work = Path(tempfile.mkdtemp(prefix="ml4paleo-bench-loop-"))
    table = []
    try:
        for name in args.cases:
            vol, truth = CASES[name](args.seed)
            path = write_scan(work / f"{name}.ome.zarr", vol)
            for strategy in args.strategies:
                run = run_case(name, strategy, vol, truth, path, work, args.strokes, args.start, args.reach,
                               args.scores)
                table.append((name, strategy, run))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nload {os.getloadavg()[0]:.1f}; {args.start} z slices of strokes to start, {args.strokes} strokes")
    print(f"{'case':8s} {'strategy':8s} {'start':>6s} {'end':>6s} {'best':>6s} {'mean':>6s} {'to .90':>6s} {'to .95':>6s} "
          f"{'to 1/2':>6s} "
          f"{'idle':>4s} {'worse':>5s} {'s/round':>7s} {'CPU s':>6s}  methods")
    for name, strategy, run in table:
        print(f"{name:8s} {strategy:8s} Dice per round: {' '.join(f'{d:.3f}' for d in run.dices)}")
    for name, strategy, run in table:
        methods = " ".join(sorted(set(run.methods)))
        print(f"{name:8s} {strategy:8s} {run.dices[0]:6.3f} {run.dices[-1]:6.3f} {max(run.dices):6.3f} "
              f"{fmt(run.mean_after()):>6s} {fmt(run.reach(0.90)):>6s} {fmt(run.reach(0.95)):>6s} "
              f"{fmt(run.halved()):>6s} {run.idle:4d} {run.worse:5d} "
              f"{np.mean(run.seconds):7.1f} {np.mean(run.cpu):6.1f}  {methods} ({sum(a != b for a, b in zip(run.methods, run.methods[1:]))} switches)")
    for name, strategy, run in table:
        if run.near:
            print(f"{name:8s} {strategy:8s} Dice of near alone (the rounds whose model keeps corrections local): "
                  + " ".join(f"{r}:{d:.3f}/{run.dices[r]:.3f}" for r, d in run.near) + " (near / the model)")
    estimates = [(e, d) for _, _, run in table for e, d in zip(run.estimates, run.dices) if e is not None]
    pairs = np.array([(e, d) for e, d in estimates if not isinstance(e, tuple)])
    ranges = [(e, d) for e, d in estimates if isinstance(e, tuple)]
    if ranges:
        outside = np.array([lo - d if d < lo else d - hi if d > hi else 0.0 for (lo, hi), d in ranges])
        print(f"estimated Dice as a range (too little painted) over {len(ranges)} models: truth inside "
              f"{int((outside == 0).sum())}, mean distance outside {outside.mean():.3f}, largest {outside.max():.3f}, "
              f"mean width {np.mean([hi - lo for (lo, hi), _ in ranges]):.3f}")
    if len(pairs):
        error = pairs[:, 0] - pairs[:, 1]
        print(f"estimated Dice against the truth over {len(pairs)} models: mean error {error.mean():+.3f}, "
              f"mean |error| {np.abs(error).mean():.3f}, largest |error| {np.abs(error).max():.3f}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
