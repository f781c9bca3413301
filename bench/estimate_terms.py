"""Benchmark helper: why an estimated Dice range misses, per dumped model.

    python bench/suggest_dump.py --out /tmp/states --cases thin --starts 1 --rounds 2   # the models, once
    python bench/estimate_terms.py /tmp/states                                          # seconds a model

The range of ``suggestions.json`` (``suggest.UNMEASURED_ENDS``) is the soft Dice
``2 tp / (pred + mass)`` of the structure over the scored planes at two readings of the votes. Per
model (``bench/suggest_dump.py``'s files) this prints the truth, the range, and the high end's three
sums against what the truth has in their place: ``tp`` (the votes over the predicted structure)
against its true positives, ``pred`` (the same on both sides), ``mass`` (the votes for structure over
every voxel) against the true structure's count; then the high end with the true mass put in. With
``--bands``: the structure's true share among the voxels of each band of the model's vote, and
where the votes outside the predicted structure lie (voxels from it). Why: where a forest knows a
class from a handful of painted voxels its votes spread around every structure's wall, and the mass
of that shell, not the votes on the structure, kept the high end below the truth (docs/decisions.md,
"Why the estimate's range misses").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suggest_estimate import load, terms_over  # noqa: E402 - the bench folder's own module

from ml4paleo.pipelines.suggest import UNMEASURED_ENDS  # noqa: E402

BANDS = (0.0, 0.05, 0.15, 0.3, 0.5, 0.7, 0.9, 1.01)
"""Edges of the bands of the structure's vote."""


def true_sums(s: dict) -> tuple[int, int, int]:
    """(true positives, predicted, true) of the structure summed over the scored planes (a voxel on
    two planes counts twice, as in the estimate)."""
    pred = np.argmax(s["proba"], axis=-1) == 1
    truth = s["truth"] == 1
    tp = n_pred = n_true = 0
    for axis, index in s["planes"]:
        p, t = np.take(pred, index, axis=axis), np.take(truth, index, axis=axis)
        tp, n_pred, n_true = tp + int((p & t).sum()), n_pred + int(p.sum()), n_true + int(t.sum())
    return tp, n_pred, n_true


def bands(s: dict) -> list[str]:
    """The vote's reliability by band and where the structure mass outside the prediction lies."""
    vote = s["proba"][..., 1].astype(np.float64)
    truth = s["truth"] == 1
    pred = np.argmax(s["proba"], axis=-1) == 1
    sharp = vote ** 2 / (vote ** 2 + (1 - vote) ** 2)  # the high end's reading (power 2)
    out = []
    for lo, hi in zip(BANDS[:-1], BANDS[1:]):
        at = (vote >= lo) & (vote < hi)
        share = float(truth[at].mean()) if at.any() else 0.0
        out.append(f"  vote {lo:.2f}-{min(hi, 1.0):.2f}: {int(at.sum()):7d} voxels, structure in truth {share:.3f}, "
                   f"mass (squared) {sharp[at].sum():8.0f}")
    away = ndi.distance_transform_edt(~pred)
    for lo, hi in ((0.5, 1.5), (1.5, 3.0), (3.0, 6.0), (6.0, np.inf)):
        at = ~pred & (away >= lo) & (away < hi)
        out.append(f"  outside the prediction, {lo:g}-{hi:g} voxels from it: mass {sharp[at].sum():8.0f}, "
                   f"true structure {int(truth[at].sum())}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("states", type=Path, nargs="+")
    ap.add_argument("--bands", action="store_true", help="the vote's reliability by band and the shell's mass")
    args = ap.parse_args(argv)
    for folder in args.states:
        for f in sorted(folder.glob("*.npz")):
            s = load(f)
            low, high = (terms_over(s["proba"], s["prior"], s["planes"], trust, power)[1]
                         for trust, power in UNMEASURED_ENDS)
            tp, n_pred, n_true = true_sums(s)
            print(f"{folder.name}/{s['tag']:16s} {s['method']:6s} truth {s['dice']:.3f} range "
                  f"[{2 * low[0] / (low[1] + low[2]):.3f}, {2 * high[0] / (high[1] + high[2]):.3f}] | high end: tp "
                  f"{high[0]:.0f} (true {tp}), pred {n_pred}, mass {high[2]:.0f} (true {n_true}); with the true mass "
                  f"{2 * high[0] / (high[1] + n_true):.3f}", flush=True)
            if args.bands:
                print("\n".join(bands(s)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
