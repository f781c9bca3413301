"""Benchmark: every training method against the truth of generated volumes and the snow scan.

    python bench/methods.py                     # all volumes, full masks and strokes
    python bench/methods.py --volumes blobs --modes strokes
    python bench/methods.py --slices 3 --xz     # 3 z slices and one XZ plane across the stack
    python bench/methods.py --volumes tex-orientation tex-length tex-anisotropy --methods forest unet auto \
        --unet-epochs 16 --seeds 0 1       # per kind: the forest, the network (as auto's budget trains it), auto
    python bench/methods.py --volumes tubes --modes strokes --methods auto --seeds 0 1 2 3

Per volume (``ml4paleo.testing.phantoms``: touching blobs where only shape separates, thin
tubes where only appearance does, texture-only, the texture family (``tex-orientation``,
``tex-length``, ``tex-anisotropy``: classes of the same mean and spread, told apart by the
lamellae's direction, length or alignment); and the real snow micro-CT scan of ``spam``),
5 slices are painted (whole slices from the truth, or strokes of it), and each method is
trained and segments the whole volume through the real pipelines. Printed per method: the
leave-one-slice-out Dice of the structure that the choice sees, the Dice on the slices nobody
painted (what the user gets), train and segment seconds, which method ``auto`` chose and whether
it scored the U-Net (and why); at the end a table per volume and painting of the unpainted
Dice of each method, auto's choice and its seconds (wall, and CPU seconds of this process, which
do not depend on the machine's load); with several ``--seeds``, each method's mean, lowest and
highest over them. Auto's line also gives every method it scored with its held-out fossil Dice,
the U-Net's among them when it scored the network. Peak RSS of this process at the end.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ml4paleo.compute.features import FILTERS
from ml4paleo.io.omezarr import OmeZarrWriter, open_level
from ml4paleo.pipelines.segment import segment_volume
from ml4paleo.pipelines.train import train_model
from ml4paleo.testing import phantoms

METHODS = ("forest", "context", "interpolation", "unet", "auto")
DEFAULT_METHODS = ("forest", "context", "interpolation", "auto")
"""The U-Net by name trains for minutes: asked for with ``--methods``."""
TEXTURE_SHAPE = (64, 128, 128)
"""The texture family's bench size (1 M voxels); the tests draw 32-48 voxel cubes."""


def snow():
    """The snow scan with its Otsu truth (as the quality test defines it)."""
    import tifffile
    from skimage.filters import threshold_otsu
    import spam

    vol = tifffile.imread(Path(spam.__file__).parent / "data" / "snow" / "snow.tif")
    # opened on an edge-padded copy: with scipy's zero border the opening erodes the six faces
    # (z0 and z99 lose a third of their structure), a truth no user would paint
    above = np.pad(vol > threshold_otsu(vol), 1, mode="edge")
    truth = ndi.binary_opening(above)[1:-1, 1:-1, 1:-1].astype(np.uint8)
    return vol, truth


VOLUMES = {
    "blobs": lambda shape, seed: phantoms.touching_blobs(seed=seed),
    "tubes": lambda shape, seed: phantoms.thin_tubes(seed=seed),
    "texture": lambda shape, seed: phantoms.texture_only(seed=seed),
    **{f"tex-{kind}": (lambda shape, seed, kind=kind: phantoms.texture_family(kind, shape=shape, seed=seed))
       for kind in phantoms.TEXTURE_KINDS},
    "snow": lambda shape, seed: snow(),
}
"""Each volume made from the texture family's shape and a seed (the snow scan has one of each)."""


def write_scan(path: Path, vol: np.ndarray) -> Path:
    """The volume as the OME-Zarr the pipelines read (isotropic unit voxels)."""
    with OmeZarrWriter(path, vol.shape, vol.dtype, chunks=64, voxel_size=(1.0, 1.0, 1.0)) as w:
        w.write_slab(0, vol)
    return path


def dice(a, b) -> float:
    return float(2 * np.logical_and(a, b).sum() / max(int(a.sum()) + int(b.sum()), 1))


def paint(truth_plane: np.ndarray, mode: str) -> np.ndarray:
    """The annotation of a plane of the truth: in full, or strokes of it."""
    return truth_plane + 1 if mode == "full" else phantoms.strokes(truth_plane)


def print_table(summary: list, methods) -> None:
    """Per volume and painting: each method's Dice on the unpainted slices; auto's choice and
    its train + segment seconds (wall, and CPU of this process; ``c``: CPU seconds)."""
    shown = [m for m in methods if m != "auto"]
    print("\n" + f"{'volume':16s} {'painted':8s} " + " ".join(f"{m:>13s}" for m in shown)
          + (f" {'auto':>6s} {'auto chose':14s} {'auto s':>7s} {'CPU s':>7s}" if "auto" in methods else ""))
    for name, mode, found in summary:
        line = f"{name:16s} {mode:8s} " + " ".join(f"{found[m][0]:6.3f} ({found[m][4]:4.0f}c)" for m in shown)
        if "auto" in found:
            dice_auto, chosen, train_s, segment_s, cpu_s = found["auto"]
            line += f" {dice_auto:6.3f} {chosen:14s} {train_s + segment_s:7.1f} {cpu_s:7.1f}"
        print(line)


def heldout(candidates: dict) -> str:
    """Each scored method's held-out Dice of the fossil, as auto compared them (the U-Net's too
    when it was scored: the network's line where it was not asked for by name)."""
    return ", ".join(f"{name} {m.get('fossil', {}).get('dice') or float('nan'):.3f}" for name, m in candidates.items())


def print_seed_spread(summary: list, methods) -> None:
    """Per generated volume, painting and method: the mean unpainted Dice over the seeds, the
    lowest and the highest (a loss smaller than the seeds' spread is no evidence of one)."""
    by: dict = {}
    for name, mode, found in summary:
        for method, (value, *_rest) in found.items():
            by.setdefault((name.split("/")[0], mode, method), []).append(value)
    print(f"\n{'volume':16s} {'painted':8s} {'method':14s} {'seeds':>5s} {'mean':>6s} {'min':>6s} {'max':>6s}")
    for (volume, mode, method), values in by.items():
        print(f"{volume:16s} {mode:8s} {method:14s} {len(values):5d} {np.mean(values):6.3f} {min(values):6.3f} {max(values):6.3f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--volumes", nargs="+", default=list(VOLUMES), choices=list(VOLUMES))
    ap.add_argument("--modes", nargs="+", default=["full", "strokes"], choices=["full", "strokes"])
    ap.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), choices=list(METHODS))
    ap.add_argument("--unet-seconds", type=float, default=None,
                    help="max_train_seconds for the U-Net asked for by name (default: the pipeline's)")
    ap.add_argument("--unet-epochs", type=int, default=None,
                    help="epochs of each fit of the U-Net asked for by name, instead of a clock: what auto's 60 CPU s "
                         "give it is ~13-18 epochs at the texture family's size (load-independent)")
    ap.add_argument("--slices", type=int, default=5, help="painted slices, spread over the middle 80 %%")
    ap.add_argument("--xz", action="store_true", help="also paint the XZ plane through the middle")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0],
                    help="seeds of the generated volumes (each a row; with several, their mean and spread at the end)")
    ap.add_argument("--filters", nargs="+", default=None, choices=list(FILTERS),
                    help="the filter bank's filters (default: all; e.g. without orient energy: the bank before them)")
    ap.add_argument("--unet-params", nargs="+", default=[], metavar="NAME=INT",
                    help="U-Net hyper-parameters for the U-Net by name and auto's (e.g. depth=3)")
    ap.add_argument("--texture-shape", type=int, nargs=3, default=TEXTURE_SHAPE, metavar=("Z", "Y", "X"),
                    help="size of the texture family's volumes")
    args = ap.parse_args(argv)
    options = {"unet_params": {k: int(v) for k, v in (p.split("=", 1) for p in args.unet_params)}}
    if args.filters:
        options["features"] = {"filters": list(args.filters)}
    warnings.filterwarnings("ignore")
    work = Path(tempfile.mkdtemp(prefix="ml4paleo-bench-methods-"))
    summary: list = []
    print(f"{'volume':16s} {'painted':8s} {'method':14s} {'chosen':14s} {'LOSO':>6s} {'unpainted':>9s} {'train s':>8s} {'segment s':>9s}")
    try:
        for volume, seed in [(v, s) for v in args.volumes for s in (args.seeds if v != "snow" else [0])]:
            name = volume if len(args.seeds) == 1 or volume == "snow" else f"{volume}/{seed}"
            vol, truth = VOLUMES[volume](tuple(args.texture_shape), seed)
            path = write_scan(work / f"{name.replace('/', '-')}.ome.zarr", vol)
            n = vol.shape[0]
            painted = sorted({int(round(z)) for z in np.linspace(0.1 * n, 0.9 * n, args.slices)})
            unseen = np.ones(vol.shape, bool)
            unseen[painted] = False
            mid = vol.shape[1] // 2
            if args.xz:
                unseen[:, mid] = False
            for mode in args.modes:
                ann = {z: paint(truth[z], mode) for z in painted}
                if args.xz:
                    ann[("y", mid)] = paint(truth[:, mid], mode)
                found = {}
                for method in args.methods:
                    stem = f"{name.replace('/', '-')}-{mode}-{method}"
                    model, labels = work / stem, work / f"{stem}.ome.zarr"
                    t0, c0 = time.perf_counter(), time.process_time()
                    budget = {"max_train_seconds": args.unet_seconds} if method == "unet" and args.unet_seconds else {}
                    net = {**options["unet_params"], **({"epochs": args.unet_epochs} if method == "unet" and args.unet_epochs else {})}
                    result = train_model(path, ann, model, method=method, **budget, **{**options, "unet_params": net})
                    t1, c1 = time.perf_counter(), time.process_time()
                    segment_volume(path, model, labels)
                    t2, c2 = time.perf_counter(), time.process_time()
                    out = np.asarray(open_level(labels, 0)[:])
                    loso = result.metrics.get("fossil", {}).get("dice")
                    found[method] = (dice(out[unseen] == 1, truth[unseen] == 1), result.method, t1 - t0, t2 - t1,
                                      c2 - c0)
                    network = getattr(result, "network", "")  # whether auto scored the U-Net, and why
                    print(f"{name:16s} {mode:8s} {method:14s} {result.method:14s} {loso if loso is not None else float('nan'):6.3f} "
                          f"{found[method][0]:9.3f} {t1 - t0:8.1f} {t2 - t1:9.1f}"
                          + f"  ({c1 - c0:.0f} + {c2 - c1:.0f} CPU s to train + segment)"
                          + (f"  held-out fossil {heldout(result.candidates)}  U-Net {network}"
                             if method == "auto" and network else ""), flush=True)
                summary.append((name, mode, found))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(summary, args.methods)
    for name, mode, found in summary:
        truth_best = max((m for m in found if m != "auto"), key=lambda m: found[m][0], default=None)
        if truth_best and "auto" in found:
            chosen = found["auto"][1]
            loss = found[truth_best][0] - found["auto"][0]
            verdict = "matches" if chosen == truth_best else (f"loses {loss:.3f}" if loss > 0 else f"beats it by {-loss:.3f}")
            print(f"choice {name:16s} {mode:8s} best on truth {truth_best:14s} auto chose {chosen:14s} {verdict}")
    if len(args.seeds) > 1:
        print_seed_spread(summary, args.methods)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
