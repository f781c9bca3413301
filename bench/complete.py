"""Benchmark: completing a slice painted with strokes, against the full mask of the truth.

    python bench/complete.py                  # every volume, 5 slices each
    python bench/complete.py --volumes snow --step 12

Per volume (the generated cases of ``ml4paleo.testing.phantoms`` and the snow scan), slices
are painted with strokes of the truth (``phantoms.strokes``: every ``--step``-th row and column
of each class, kept off the outlines) and completed two ways: in full, as training completes
them (every voxel assigned), and as the annotation page offers it (``supported_only``: voxels
no stroke reaches are left unlabeled). Printed: the structure's Dice of the full completion,
and for the offered one the share of voxels it labels and how many of those are right (a
completion that invents is one whose labeled voxels are wrong), and the seconds per slice.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loop import CASES as VOLUMES  # noqa: E402 - the bench folder's own modules
from methods import dice  # noqa: E402

from ml4paleo.compute.complete import complete_slice  # noqa: E402
from ml4paleo.testing import phantoms  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--volumes", nargs="+", default=list(VOLUMES), choices=list(VOLUMES))
    ap.add_argument("--slices", type=int, default=5)
    ap.add_argument("--step", type=int, default=6, help="stroke spacing (voxels)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    print(f"{'volume':8s} {'full Dice':>9s} {'offered: labeled':>16s} {'right':>7s} {'Dice on labeled':>15s} {'s/slice':>8s}")
    for name in args.volumes:
        vol, truth = VOLUMES[name]()
        n = vol.shape[0]
        full_d, share, right, on_labeled, seconds = [], [], [], [], []
        for z in sorted({int(round(z)) for z in np.linspace(0.1 * n, 0.9 * n, args.slices)}):
            marks = phantoms.strokes(truth[z], step=args.step)
            if len(np.unique(marks[marks > 0])) < 2:
                continue
            t0 = time.perf_counter()
            full = complete_slice(vol[z], marks)
            offered = complete_slice(vol[z], marks, supported_only=True)
            seconds.append(time.perf_counter() - t0)
            full_d.append(dice(full == 2, truth[z] == 1))
            labeled = offered > 0
            share.append(labeled.mean())
            right.append(float((offered[labeled] - 1 == truth[z][labeled]).mean()))
            on_labeled.append(dice((offered == 2)[labeled], (truth[z] == 1)[labeled]))
        print(f"{name:8s} {np.mean(full_d):9.3f} {np.mean(share):16.3f} {np.mean(right):7.3f} {np.mean(on_labeled):15.3f} "
              f"{np.mean(seconds):8.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
