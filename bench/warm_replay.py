"""Benchmark: does the same correction give the same U-Net? One round of the loop, replayed.

    python bench/warm_replay.py --case blobs --start 2 --replays 3
    python bench/warm_replay.py --case blobs --start 1 --strategy order --before 3 --seeds 0 1 2 --control
    python bench/warm_replay.py --case blobs --start 1 --strategy order --before 3 --control --warm-lrs 0.3 0.1

Why: a warm start that stops on a CPU budget trains as far as the machine's load lets it, so the
same strokes gave another network each run (issue 22). This trains round 0 of ``bench/loop.py``
(``--start`` z slices of strokes, the default method), paints the product's top suggestion as the
loop's user does, then retrains from the round-0 model ``--replays`` times on the same annotations
and prints each retrain's Dice, the epochs each U-Net trained (``unet.json``'s curve, per network
of a model that keeps corrections local) and its training CPU seconds; the peak RSS at the end.

To tell a stroke's effect from the retrain's draw where the loop saw a drop: ``--strategy`` and
``--before N`` play the loop's first N strokes as it does (each round trained from the one before),
then replay stroke N + 1 with each of ``--seeds`` (``train_model``'s seed: the U-Net's weights and
crops, the forest's trees and draws), and with ``--control`` the same retrains without the stroke
(the previous annotations, warm-started again): the spread a retrain alone gives. With ``--where``
(and ``--control``) each replay's voxels that turned against its control's are split by kind (new
false positives, fixed false negatives...), by distance from the stroke and from the truth's
surface: a stroke that moves its neighbourhood, against one that moves every outline of the volume.

    python bench/warm_replay.py --case texture --start 1 --before 1 --seeds 0 1 --control --where
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loop import CASES, choose, painted_with  # noqa: E402 - the bench folder's own modules
from methods import dice, write_scan  # noqa: E402

from scipy import ndimage as ndi  # noqa: E402

from ml4paleo.io.omezarr import open_level  # noqa: E402
from ml4paleo.pipelines.segment import segment_volume  # noqa: E402
from ml4paleo.pipelines.train import train_model  # noqa: E402
from ml4paleo.planes import AXES, SliceRef  # noqa: E402
from ml4paleo.testing import phantoms  # noqa: E402


def trained(path: Path, ann: dict, model: Path, truth: np.ndarray, previous: Path | None = None,
            seed: int = 0) -> np.ndarray:
    """Train (from ``previous`` when given), segment, print one line; the labels."""
    c0 = time.process_time()
    result = train_model(path, ann, model, validate="later", seed=seed,
                         **({"previous_model": previous} if previous else {}))
    cpu = time.process_time() - c0
    labels = model.with_suffix(".ome.zarr")
    segment_volume(path, model, labels)
    pred = np.asarray(open_level(labels, 0)[:])
    epochs = {cfg.parent.name: len(json.loads(cfg.read_text()).get("curve", [])) for cfg in model.rglob("unet.json")}
    fp, fn = int(np.sum((pred == 1) & (truth != 1))), int(np.sum((pred != 1) & (truth == 1)))
    print(f"{model.name:8s} {result.method:14s} dice {dice(pred == 1, truth == 1):.4f} (FP {fp}, FN {fn})  "
          f"train {cpu:5.1f} CPU s  "
          f"U-Net epochs {epochs or '-'}", flush=True)
    return pred


def where(pred: np.ndarray, control: np.ndarray, truth: np.ndarray, stroke: np.ndarray) -> None:
    """Print where ``pred`` (with the stroke) differs from ``control`` (without it): per kind of
    change, how many voxels lie within 8, 8-16 and beyond 16 voxels of the ``stroke`` (a 3D mask),
    and at which distance (voxels, 1..4+) from the truth's surface."""
    st = truth == 1
    from_stroke = ndi.distance_transform_edt(~stroke)
    from_surface = np.where(st, ndi.distance_transform_edt(st), ndi.distance_transform_edt(~st))
    kinds = {"new FP": (pred == 1) & (control != 1) & ~st, "fixed FN": (pred == 1) & (control != 1) & st,
             "new FN": (pred != 1) & (control == 1) & st, "fixed FP": (pred != 1) & (control == 1) & ~st}
    for name, changed in kinds.items():
        d, depth = from_stroke[changed], np.minimum(np.rint(from_surface[changed]).astype(int), 4)
        print(f"    {name:8s} {changed.sum():6d}: from the stroke <=8 {np.sum(d <= 8):5d}, 8-16 "
              f"{np.sum((d > 8) & (d <= 16)):5d}, >16 {np.sum(d > 16):5d}; from the surface 1/2/3/4+ "
              f"{'/'.join(str(n) for n in np.bincount(depth, minlength=5)[1:])}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", default="blobs", choices=list(CASES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", type=int, default=2, help="z slices painted with strokes at the start")
    ap.add_argument("--replays", type=int, default=3)
    ap.add_argument("--strategy", default="suggest", help="bench/loop.py's strategy that chooses the strokes")
    ap.add_argument("--before", type=int, default=0, help="strokes of the loop played before the replayed one")
    ap.add_argument("--seeds", type=int, nargs="+", help="one replay per seed (instead of --replays at seed 0)")
    ap.add_argument("--control", action="store_true", help="each replay also without the stroke")
    ap.add_argument("--where", action="store_true",
                    help="with --control: where each replay's changed voxels lie (kind, distance from the stroke "
                         "and from the truth's surface)")
    ap.add_argument("--background-local-only", action="store_true",
                    help="a forest's structure corrections teach everywhere (the rule before "
                         "_local_fit.EVERY_CLASS_LOCAL), in every round")
    ap.add_argument("--network-local-all", action="store_true",
                    help="the replays only: a U-Net's corrections of every class act fully only near where painted "
                         "(_local_fit.NETWORK_LOCAL_CLASSES; an experiment, as bench/loop.py's)")
    ap.add_argument("--no-focus", action="store_true",
                    help="the replays (not the strokes before) without a warm start's focus on the newest strokes "
                         "(FOCUS_WEIGHT 1, FOCUS_SHARE 0)")
    ap.add_argument("--focus-weights", type=float, nargs="+",
                    help="replay once per weight (unet.FOCUS_WEIGHT, the newest strokes' weight in a warm start's "
                         "loss; the bench's only, FOCUS_SHARE unchanged), each with every seed")
    ap.add_argument("--warm-lrs", type=float, nargs="+",
                    help="replay once per warm learning rate (unet.WARM_LR, a fraction of the U-Net's lr; the "
                         "bench's only), each with every seed and weight")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.background_local_only:
        from ml4paleo.pipelines import _local_fit

        _local_fit.EVERY_CLASS_LOCAL = False
    work = Path(tempfile.mkdtemp(prefix="ml4paleo-bench-warm-"))
    try:
        vol, truth = CASES[args.case](args.seed)
        path = write_scan(work / "scan.ome.zarr", vol)
        n = vol.shape[0]
        ann = {SliceRef("z", z): phantoms.strokes(truth[z])
               for z in sorted({int(round(z)) for z in np.linspace(0.3 * n, 0.7 * n, args.start)})}
        cursor, last = [0], work / "round0"
        pred = trained(path, ann, last, truth)
        for r in range(args.before + 1):
            hit = choose(args.strategy, pred, truth, last, cursor, ann)
            axis, index, cls, _ = hit
            painted, dab = painted_with(ann, hit)
            print(f"stroke {r + 1}: {AXES[axis]}{index}:{'bg' if cls == 0 else 'st'}")
            if r < args.before:
                ann = painted
                pred = trained(path, ann, work / f"round{r + 1}", truth, previous=last)
                last = work / f"round{r + 1}"
        from ml4paleo.models import _unet_data, unet

        if args.network_local_all:
            from ml4paleo.pipelines import _local_fit

            _local_fit.NETWORK_LOCAL_CLASSES = tuple(range(255))
        if args.no_focus:
            unet.FOCUS_WEIGHT, _unet_data.FOCUS_SHARE = 1.0, 0.0
        rates, weights = args.warm_lrs or [unet.WARM_LR], args.focus_weights or [unet.FOCUS_WEIGHT]
        for rate, weight in ((r, w) for r in rates for w in weights):
            unet.WARM_LR, unet.FOCUS_WEIGHT = rate, weight
            print(f"warm lr {rate:g}, focus weight {weight:g}", flush=True)
            tag = f"lr{rate:g}-w{weight:g}".replace(".", "p")  # no dot: the labels' name is the model's with a suffix
            for k, seed in enumerate(args.seeds if args.seeds is not None else [0] * args.replays):
                with_stroke = trained(path, painted, work / f"{tag}-replay{k}", truth, previous=last,
                                      seed=seed)
                if args.control:
                    control = trained(path, ann, work / f"{tag}-control{k}", truth, previous=last, seed=seed)
                    if args.where:
                        stroke = np.zeros(truth.shape, bool)
                        at: list = [slice(None)] * 3
                        at[axis] = index
                        stroke[tuple(at)] = dab
                        where(with_stroke, control, truth, stroke)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
