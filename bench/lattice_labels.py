"""Benchmark: coarse-to-fine labels against the exact labels, on the volumes that decide it.

    python bench/lattice_labels.py                              # every volume, strokes and full slices
    python bench/lattice_labels.py --volumes tubes --seeds 0 1 2 --modes strokes

Per volume (``bench/methods.py``'s touching blobs, thin tubes and snow scan; the grain scan of
``bench/fullsize.py`` at ``--grain-size``; the blobs-and-plates volume of ``bench/segment.py`` at
``--segment-size``) 5 slices are painted (strokes or whole slices of the truth) and a forest is
trained through the real pipeline; then the whole volume is labelled as one region both ways
(the packed forest for any size): exactly (``region_labels``) and coarse to fine
(``region_labels(..., lattice=True)``: the forest on the even lattice and where its voxels
disagree or are unsure). Printed per case: voxels whose label differs, the structure's Dice on the
unpainted slices both ways, the structure's connected components (26-neighbourhood) of the exact
labels that the coarse-to-fine labels lose half of or more (thin structures), the share of voxels
copied from the lattice, and the CPU seconds of each labelling (features included, computed alike).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ml4paleo.models._forest as forest  # noqa: E402
from ml4paleo.models import load_model, region_labels  # noqa: E402
from ml4paleo.pipelines.train import train_model  # noqa: E402


def grain_volume(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``bench/fullsize.py``'s grain scan at n^3, in memory (its truth and noise)."""
    import fullsize

    balls = fullsize.grains(n)
    truth = fullsize.truth_slab(n, 0, n, balls)
    folder = Path(tempfile.mkdtemp(prefix="ml4paleo-grain-"))
    try:
        fullsize.write_scan(folder, n, balls)
        import tifffile

        vol = np.stack([tifffile.imread(p) for p in sorted(folder.glob("*.tif"))])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return vol, truth


def volumes(args) -> dict:
    import methods
    import segment

    out = {}
    for name in args.volumes:
        if name in ("blobs", "tubes"):
            for seed in args.seeds:
                out[f"{name}/{seed}"] = lambda name=name, seed=seed: methods.VOLUMES[name](None, seed)
        elif name == "snow":
            out["snow"] = methods.snow
        elif name == "grain":
            out[f"grain {args.grain_size}^3"] = lambda: grain_volume(args.grain_size)
        elif name == "segment":
            out[f"segment {args.segment_size}^3"] = lambda: tuple(
                a.astype(np.uint8) if a.dtype == bool else a
                for a in segment.make_volume((args.segment_size,) * 3, "uint16"))
    return out


def lost_components(exact: np.ndarray, near: np.ndarray) -> tuple[int, int]:
    """(components of the exact structure, those the near labels keep less than half of)."""
    comp, n = ndi.label(exact, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return 0, 0
    size = np.bincount(comp.ravel(), minlength=n + 1)
    kept = np.bincount(comp.ravel(), weights=near.ravel().astype(np.float64), minlength=n + 1)
    return n, int(np.sum(kept[1:] < 0.5 * size[1:]))


def main(argv=None) -> int:
    import methods

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--volumes", nargs="+", default=["blobs", "tubes", "snow", "grain", "segment"],
                    choices=["blobs", "tubes", "snow", "grain", "segment"])
    ap.add_argument("--modes", nargs="+", default=["strokes", "full"], choices=["strokes", "full"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--grain-size", type=int, default=160)
    ap.add_argument("--segment-size", type=int, default=160)
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    forest.PACKED_MIN_ROWS = 1  # the whole volume is one region: the packed forest at any size
    work = Path(tempfile.mkdtemp(prefix="ml4paleo-bench-lattice-"))
    rows = []
    try:
        for name, make in volumes(args).items():
            vol, truth = make()
            truth = (np.asarray(truth) == 1)
            path = methods.write_scan(work / f"{len(rows)}.ome.zarr", vol)
            n = vol.shape[0]
            painted = sorted({int(round(z)) for z in np.linspace(0.1 * n, 0.9 * n, 5)})
            unseen = np.ones(vol.shape, bool)
            unseen[painted] = False
            for mode in args.modes:
                ann = {z: methods.paint(truth[z].astype(np.uint8), mode) for z in painted}
                train_model(path, ann, work / "model", method="forest", overwrite=True)
                model = load_model(work / "model")
                model.set_n_jobs(1)
                whole = ((0, 0, 0), vol.shape)
                region_labels(model, vol, *whole, lattice=True)  # the kernels' load
                c = time.process_time()
                exact = region_labels(model, vol, *whole) == 1
                c_exact = time.process_time() - c
                c = time.process_time()
                near = region_labels(model, vol, *whole, lattice=True) == 1
                c_near = time.process_time() - c
                diff = int(np.sum(exact != near))
                d_exact = methods.dice(exact[unseen], truth[unseen])
                d_near = methods.dice(near[unseen], truth[unseen])
                n_comp, lost = lost_components(exact, near)
                rows.append((name, mode, exact.size, diff, d_exact, d_near, n_comp, lost, c_exact, c_near))
                print(f"{name:14s} {mode:8s} {exact.size / 1e6:6.2f} M voxels: {diff} differ ({diff / exact.size:.1e}); "
                      f"Dice unpainted exact {d_exact:.4f} coarse-to-fine {d_near:.4f} ({d_near - d_exact:+.4f}); "
                      f"components {n_comp}, lost {lost}; CPU s {c_exact:.2f} -> {c_near:.2f}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n| volume | painted | voxels | labels differing | Dice exact | Dice coarse-to-fine | components lost | "
          f"CPU s exact -> coarse-to-fine |\n|---|---|---|---|---|---|---|---|")
    for name, mode, size, diff, d_exact, d_near, n_comp, lost, c_exact, c_near in rows:
        print(f"| {name} | {mode} | {size / 1e6:.2f} M | {diff} ({diff / size:.1e}) | {d_exact:.4f} | {d_near:.4f} | "
              f"{lost} of {n_comp} | {c_exact:.2f} -> {c_near:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
