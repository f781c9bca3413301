"""Benchmark: what a stroke's new network would give, gated against the previous model, per round of the loop.

    python bench/gate_probe.py --case blobs --seed 2 --strategy suggest --strokes 5
    python bench/gate_probe.py --case thin --seed 0 --strategy sequential --strokes 2

Why (issue 22 item 3, "a stroke never makes things worse elsewhere"): plays ``bench/loop.py``'s user
from one z slice of strokes (``--start`` slices) with the product's rules, and at each round whose model
is a U-Net prints the structure's Dice of the previous model (``old``), of the new network that learned
every stroke (``newnet``; the near part of a local model), of their mean beyond the newest stroke's
reach (8 voxels, fading from 4; the newest network within it), and of gates ``tT``: beyond the reach
the new network where its top probability is at least T, the previous model elsewhere (``t1.01``: the
previous model alone beyond the reach). Then the voxels beyond the reach where the two disagree, right
(the new network's answer is the truth's) / wrong, in bins of the new network's top probability
(<.6, .6-.7, .7-.8, .8-.9, .9-.95, .95-.99, >=.99): whether a sure new answer is a right one.
The counterfactuals are one round deep: the loop goes on with the product's model. Peak RSS at the end.
"""
from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loop import CASES, choose, painted_with  # noqa: E402
from methods import dice, write_scan  # noqa: E402

from ml4paleo.compute.painted import keep_painted  # noqa: E402
from ml4paleo.compute.reach import CorrectionReach  # noqa: E402
from ml4paleo.io.omezarr import open_level  # noqa: E402
from ml4paleo.models import labels_from_proba, load_model  # noqa: E402
from ml4paleo.pipelines.segment import segment_volume  # noqa: E402
from ml4paleo.pipelines.train import train_model  # noqa: E402
from ml4paleo.planes import AXES, SliceRef  # noqa: E402
from ml4paleo.testing import phantoms  # noqa: E402

TAUS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.01)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", default="blobs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--strategy", default="suggest")
    ap.add_argument("--strokes", type=int, default=5)
    ap.add_argument("--start", type=int, default=1, help="z slices painted with strokes at the start")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    work = Path(tempfile.mkdtemp(prefix="probe-"))
    vol, truth = CASES[args.case](args.seed)
    path = write_scan(work / "scan.ome.zarr", vol)
    st = truth == 1
    n = vol.shape[0]
    starts = sorted({int(round(z)) for z in np.linspace(0.3 * n, 0.7 * n, args.start)})
    ann = {SliceRef("z", z): phantoms.strokes(truth[z]) for z in starts}
    previous, cursor, newest = None, [0], None
    arr = open_level(path, 0)
    shape = vol.shape
    for r in range(args.strokes + 1):  # noqa: PLR0915 - one round as bench/loop.py plays it
        model, c0 = work / f"m{r}", time.process_time()
        res = train_model(path, ann, model, validate="later", **({"previous_model": previous} if previous else {}))
        labels = work / f"m{r}.ome.zarr"
        segment_volume(path, model, labels)
        pred = np.asarray(open_level(labels, 0)[:])
        line = f"round {r} {res.method:10s} dice {dice(pred == 1, st):.4f} ({time.process_time() - c0:.1f} CPU s)"
        found = load_model(model)
        if previous is not None and newest is not None and res.method == "unet":
            old_model = load_model(previous)
            old = old_model.predict_region(arr, (0, 0, 0), shape)
            old = keep_painted(old, getattr(old_model, "painted", ()), (0, 0, 0), shape)
            new = (found.near if hasattr(found, "near") else found).predict_region(arr, (0, 0, 0), shape)
            painted = getattr(found, "painted", ())
            w = CorrectionReach([newest], (1.0, 1.0, 1.0), 8.0).weight((0, 0, 0), shape)[..., None]
            conf = new.max(-1, keepdims=True)
            parts = [f"old {dice(labels_from_proba(old) == 1, st):.4f}",
                     f"newnet {dice(labels_from_proba(keep_painted(new.copy(), painted, (0,0,0), shape)) == 1, st):.4f}"]
            mean = w * new + (1 - w) * (0.5 * new + 0.5 * old)
            parts.append(f"mean {dice(labels_from_proba(keep_painted(mean, painted, (0,0,0), shape)) == 1, st):.4f}")
            for tau in TAUS:
                g = np.where(conf >= tau, new, old)
                p = w * new + (1 - w) * g
                lab = labels_from_proba(keep_painted(p, painted, (0, 0, 0), shape))
                parts.append(f"t{tau:g} {dice(lab == 1, st):.4f}")
            # where the changes beyond reach lie in new's confidence
            flip = (labels_from_proba(new) != labels_from_proba(old)) & (w[..., 0] == 0)
            good = flip & ((labels_from_proba(new) == 1) == st)
            bins = np.digitize(conf[..., 0], [0.6, 0.7, 0.8, 0.9, 0.95, 0.99])
            parts.append("good/bad by conf " + " ".join(
                f"{np.sum(good & (bins == b))}/{np.sum(flip & ~good & (bins == b))}" for b in range(7)))
            line += "  | " + "  ".join(parts)
        print(line, flush=True)
        if r == args.strokes:
            break
        hit = choose(args.strategy, pred, truth, model, cursor, ann)
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
        previous = model
        axis, index, cls, region = hit
        ann, dab = painted_with(ann, hit)
        newest = (axis, index, dab.astype(np.uint8))
        print(f"stroke {r + 1}: {AXES[axis]}{index}:{'bg' if cls == 0 else 'st'}", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
