"""Benchmark: what a background correction costs a segmentation, two forests against one walk.

    python bench/correction_cost.py                       # thin tubes 96 x 320 x 288 (8.8 M voxels)
    python bench/correction_cost.py --shape 64 160 160 --repeats 1

Thin tubes, strokes on 3 z slices, a forest; then one "not here" dab of 2 voxels beside a tube on
z30 (a correction) and a retrain with the first model as the previous one, twice: beyond the
dab's reach the mean of the two full forests (``ONE_WALK`` off, as before), and one forest of half
of each (``ONE_WALK``, :func:`ml4paleo.models._local.mixed_forest`). Each model segments the whole
volume ``--repeats`` times, alternating. Printed: CPU seconds of this process per segmentation
(threads included; the wall clock depends on the load), voxels per CPU second, CPU s of each
retrain, Dice against the truth, voxels on which the two rules disagree, load and peak RSS.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))

from methods import dice, write_scan  # noqa: E402 - the bench folder's own module

from ml4paleo.io.omezarr import open_level  # noqa: E402
from ml4paleo.pipelines import _local_fit  # noqa: E402
from ml4paleo.pipelines.segment import segment_volume  # noqa: E402
from ml4paleo.pipelines.train import train_model  # noqa: E402
from ml4paleo.planes import SliceRef  # noqa: E402
from ml4paleo.testing import phantoms  # noqa: E402


def rim_dab(truth_slice: np.ndarray) -> np.ndarray:
    """Two background voxels side by side at distance 1 from a tube (annotation value 1)."""
    rim = ndi.binary_dilation(truth_slice) & ~truth_slice
    u, v = np.argwhere(rim)[len(np.argwhere(rim)) // 2]
    dab = np.zeros(truth_slice.shape, np.uint8)
    dab[u, v] = 1
    for du, dv in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        if rim[u + du, v + dv]:
            dab[u + du, v + dv] = 1
            break
    return dab


def timed_segment(path: Path, model: Path, out: Path) -> tuple[float, np.ndarray]:
    shutil.rmtree(out, ignore_errors=True)
    c0 = time.process_time()
    segment_volume(path, model, out)
    return time.process_time() - c0, np.asarray(open_level(out, 0)[:])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", nargs=3, type=int, default=[96, 320, 288])
    ap.add_argument("--repeats", type=int, default=2, help="segmentations per model (alternating)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    vol, truth = phantoms.thin_tubes(shape=tuple(args.shape), n_tubes=40)
    work = Path(tempfile.mkdtemp(prefix="ml4paleo-bench-cost-"))
    try:
        path = write_scan(work / "thin.ome.zarr", vol)
        n = vol.shape[0]
        ann = {SliceRef("z", z): phantoms.strokes(truth[z]) for z in (int(0.3 * n), n // 2, int(0.7 * n))}
        train_model(path, ann, work / "first", method="forest")
        z = min(30, n - 1)
        ann[SliceRef("z", z)] = rim_dab(truth[z])
        fits = {}
        for rule, one_walk in (("two forests", False), ("one walk", True)):
            _local_fit.ONE_WALK = one_walk
            c0 = time.process_time()
            train_model(path, ann, work / rule.replace(" ", "-"), method="forest", previous_model=work / "first")
            fits[rule] = time.process_time() - c0
        _local_fit.ONE_WALK = True
        seconds: dict[str, list[float]] = {"before the dab": [], "two forests": [], "one walk": []}
        labels = {}
        for _ in range(args.repeats):
            for rule, folder in (("before the dab", "first"), ("two forests", "two-forests"), ("one walk", "one-walk")):
                cpu, labels[rule] = timed_segment(path, work / folder, work / f"{folder}.ome.zarr")
                seconds[rule].append(cpu)
        voxels = vol.size
        print(f"thin tubes {' x '.join(map(str, vol.shape))} ({voxels / 1e6:.1f} M voxels), a 2-voxel background dab "
              f"on z{z}; load {os.getloadavg()[0]:.1f}")
        print(f"{'model':16s} {'segment CPU s':>20s} {'M voxels/CPU s':>15s} {'retrain CPU s':>14s} {'Dice':>7s}")
        for rule, cpu in seconds.items():
            fit = f"{fits[rule]:14.1f}" if rule in fits else f"{'-':>14s}"
            print(f"{rule:16s} {' / '.join(f'{c:.2f}' for c in cpu):>20s} {voxels / 1e6 / np.mean(cpu):15.2f} {fit} "
                  f"{dice(labels[rule] == 1, truth):7.4f}")
        differ = int(np.count_nonzero(labels["two forests"] != labels["one walk"]))
        print(f"voxels on which the two rules disagree: {differ} ({differ / voxels:.2e} of the volume); "
              f"changed by the dab: two forests {int(np.count_nonzero(labels['two forests'] != labels['before the dab']))}, "
              f"one walk {int(np.count_nonzero(labels['one walk'] != labels['before the dab']))}")
        print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
