"""Benchmark: the U-Net against the forest on a volume where only the grain tells fossil from matrix.

    python bench/unet.py                    # 5 painted 256^2 slices of a 24-slice volume (a few minutes)
    python bench/unet.py --size 512         # the issue's size: 5 painted 512^2 slices
    python bench/unet.py --context 0 --width 16 --augment flip   # measure a hyper-parameter
    python bench/unet.py --volume snow      # the real micro-CT scan shipped by spam (100^3, Otsu truth)
    python bench/unet.py --volume tex-orientation --xz   # a kind of the texture family, plus an XZ plane

The volume: ellipsoids of coarse-grained noise (Gaussian-smoothed, sigma 2.5) in fine-grained
noise, both with the same mean and standard deviation, a smooth intensity drift along x and
scanner noise on top. 5 slices are painted with brush-like strokes (every 6th row and column
of each class, 2 voxels away from its border). Prints, for the U-Net and for the forest of
``ml4paleo.pipelines.train.train_model`` on the same strokes: leave-one-slice-out Dice on the
painted voxels of each held-out slice (the forest's own report; the U-Net early-stops on the
held-out fold, as the method choice will do), Dice on every voxel of 3 unpainted slices, the
final model's training time, and the U-Net's inference throughput on 2 threads and 1 thread
and peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ml4paleo.testing import phantoms

FAMILY = tuple(f"tex-{kind}" for kind in phantoms.TEXTURE_KINDS)


def make_volume(shape, seed=0):
    """(uint16 volume, truth): coarse-grained ellipsoids in a fine-grained matrix, same mean and spread."""
    rng = np.random.default_rng(seed)
    Z, Y, X = shape
    truth = np.zeros(shape, dtype=bool)
    zz, yy, xx = np.ogrid[:Z, :Y, :X]
    for _ in range(max(3, Y * X // 20000)):
        c = rng.uniform(0.1, 0.9, 3) * shape
        r = rng.uniform(0.06, 0.14, 3) * np.array([Y * 1.5, Y, X])
        truth |= ((zz - c[0]) / r[0]) ** 2 + ((yy - c[1]) / r[1]) ** 2 + ((xx - c[2]) / r[2]) ** 2 <= 1
    fine = rng.normal(size=shape).astype(np.float32)
    coarse = ndi.gaussian_filter(rng.normal(size=shape).astype(np.float32), 2.5)
    coarse /= coarse.std()
    drift = 1 + 0.2 * np.sin(xx / X * 3.0)
    vol = 10000 + drift * (600 * np.where(truth, coarse, fine) + rng.normal(0, 150, shape))
    return np.clip(vol, 0, 65535).astype(np.uint16), truth


def snow_volume():
    """(volume, truth) of spam's snow scan, truth as tests/pipelines/test_quality.py makes it."""
    import importlib.metadata

    import tifffile
    from skimage.filters import threshold_otsu

    dist = importlib.metadata.distribution("spam")
    path = next(f for f in dist.files or [] if str(f).endswith("spam/data/snow/snow.tif"))
    vol = tifffile.imread(dist.locate_file(path))
    return vol, ndi.binary_opening(vol > threshold_otsu(vol))


def strokes(truth_slice, step=6, erode=2):
    """Annotation values (class + 1) on every ``step``-th row and column, ``erode`` voxels from borders."""
    out = np.zeros(truth_slice.shape, np.uint8)
    lines = np.zeros(truth_slice.shape, bool)
    lines[::step] = True
    lines[:, ::step] = True
    for c in (0, 1):
        inside = ndi.binary_erosion(truth_slice == c, iterations=erode)
        out[inside & lines] = c + 1
    return out


def dice(a, b):
    return float(2 * np.logical_and(a, b).sum() / max(a.sum() + b.sum(), 1))


def scores(confusion):
    """Dice per class (background, fossil) from a confusion matrix (rows truth, columns prediction)."""
    tp = np.diag(confusion)
    return [round(float(2 * tp[k] / max(confusion[k].sum() + confusion[:, k].sum(), 1)), 4) for k in range(2)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--volume", choices=("texture", "snow", *FAMILY), default="texture",
                    help="the generated texture volume (default), a kind of the generated texture family "
                         "(tex-orientation, tex-length, tex-anisotropy) or spam's snow scan (--size, --slices ignored)")
    ap.add_argument("--full", action="store_true", help="paint whole slices instead of strokes")
    ap.add_argument("--xz", action="store_true", help="also paint the XZ plane through the middle (the U-Net only)")
    ap.add_argument("--size", type=int, default=256, help="edge of the (y, x) slices (default 256; the issue's is 512)")
    ap.add_argument("--slices", type=int, default=24, help="slices in the volume (default 24)")
    ap.add_argument("--painted", type=int, default=5, help="painted slices (default 5)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads for inference (default 2)")
    ap.add_argument("--train-threads", type=int, default=None,
                    help="torch threads for training (default: --threads; 1 on a machine others load: two threads "
                         "contending for two busy cores measured ~8x slower than one)")
    ap.add_argument("--max-seconds", type=float, default=None, help="time budget of each U-Net training")
    ap.add_argument("--skip-forest", action="store_true")
    ap.add_argument("--skip-loso", action="store_true", help="train the final U-Net only (its default epochs)")
    ap.add_argument("--seed", type=int, default=0)
    for name in ("width", "depth", "dilation", "context", "epochs", "steps-per-epoch", "batch-size", "patch", "patience"):
        ap.add_argument(f"--{name}", type=int, default=None, help="U-Net hyper-parameter (default: the model's)")
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--augment", default=None, help="comma-separated subset of flip,rot90,intensity ('' for none)")
    args = ap.parse_args(argv)

    import torch

    from ml4paleo.io.omezarr import OmeZarrWriter, open_level
    from ml4paleo.models import load_model
    from ml4paleo.models.unet import UNetSegmenter
    from ml4paleo.compute.regions import slice_features

    train_threads = args.train_threads or args.threads
    torch.set_num_threads(train_threads)
    params = {k: getattr(args, k) for k in ("width", "depth", "dilation", "context", "epochs", "steps_per_epoch", "batch_size",
                                            "patch", "patience", "lr") if getattr(args, k) is not None}
    if args.augment is not None:
        params["augment"] = tuple(a for a in args.augment.split(",") if a)
    t = time.perf_counter()
    if args.volume == "snow":
        vol, truth = snow_volume()
        shape = vol.shape
    elif args.volume in FAMILY:
        shape = (args.slices, args.size, args.size)
        vol, truth = phantoms.texture_family(args.volume[4:], shape=shape, seed=args.seed)
    else:
        shape = (args.slices, args.size, args.size)
        vol, truth = make_volume(shape, args.seed)
    painted = [int(round(f)) for f in np.linspace(1, shape[0] - 2, args.painted)]
    gaps = [(a + b) // 2 for a, b in zip(painted, painted[1:]) if b - a > 1]
    unseen = [gaps[i] for i in np.linspace(0, len(gaps) - 1, min(3, len(gaps))).astype(int)] if gaps else [0]
    ann = {z: (truth[z].astype(np.uint8) + 1 if args.full else strokes(truth[z])) for z in painted}
    planes = {("y", shape[1] // 2): (truth[:, shape[1] // 2].astype(np.uint8) + 1 if args.full
                                     else strokes(truth[:, shape[1] // 2]))} if args.xz else {}
    n_painted = sum(int((a > 0).sum()) for a in ann.values())
    print(f"{args.volume} volume {shape} {vol.dtype}, fossil {truth.mean():.1%}, made in {time.perf_counter() - t:.1f}s; painted slices "
          f"{painted} ({n_painted} voxels), unseen slices scored {unseen}; torch {torch.__version__}, "
          f"{train_threads} training / {args.threads} inference threads; U-Net params {params or 'defaults'}")

    def unet(**kw):
        return UNetSegmenter(("background", "fossil"), n_jobs=train_threads, **{**params, **kw})

    best_epochs = []
    if not args.skip_loso:
        confusion = np.zeros((2, 2), np.int64)
        t = time.perf_counter()
        for z in painted:
            fold = unet().fit(vol, {**{k: v for k, v in ann.items() if k != z}, **planes}, heldout={z: ann[z]},
                              max_seconds=args.max_seconds, seed=args.seed)
            best_epochs.append(fold.best_epochs)
            pred = fold.predict_slice(vol, z)
            sel = ann[z] > 0
            np.add.at(confusion, (ann[z][sel].astype(np.intp) - 1, pred[sel]), 1)
            print(f"  fold {z}: best epoch {fold.best_epochs} of {len(fold.curve)}, {fold.curve[-1]['seconds']:.1f}s, "
                  f"held-out Dice {fold.curve[fold.best_epochs - 1]['heldout_dice']:.4f}")
        t_loso = time.perf_counter() - t
        print(f"U-Net leave-one-slice-out Dice (background, fossil) {scores(confusion)}, {len(painted)} folds in {t_loso:.1f}s")
    epochs = {"epochs": max(1, int(round(float(np.median(best_epochs)))))} if best_epochs else {}
    t = time.perf_counter()
    final = unet(**epochs).fit(vol, {**ann, **planes}, max_seconds=args.max_seconds, seed=args.seed)
    t_unet = time.perf_counter() - t
    ours = np.stack([final.predict_slice(vol, z) for z in unseen]).astype(bool)
    print(f"U-Net final model: {len(final.curve)} epochs ({'median best of the folds' if epochs else 'default'}) "
          f"trained in {t_unet:.1f}s; Dice (fossil) on unseen slices {dice(ours, truth[unseen]):.4f}")

    block = (min(8, shape[0]), shape[1], shape[2])
    nv = int(np.prod(block))
    for threads in (args.threads, 1):
        final.set_n_jobs(threads)
        final.predict_region(vol, (0, 0, 0), (1, 64, 64))  # warm-up
        t = time.perf_counter()
        final.predict_region(vol, (0, 0, 0), block)
        print(f"U-Net inference, block {block} + halo {final.halo}, {threads} thread(s): "
              f"{nv / (time.perf_counter() - t) / 1e6:.2f} M voxels/s")
    final.set_n_jobs(args.threads)

    if not args.skip_forest:
        from ml4paleo.pipelines.train import train_model

        work = Path(tempfile.mkdtemp(prefix="ml4paleo-bench-unet-"))
        try:
            with OmeZarrWriter(work / "vol.ome.zarr", shape, vol.dtype, chunks=64) as w:
                w.write_slab(0, vol)
            t = time.perf_counter()
            result = train_model(work / "vol.ome.zarr", ann, work / "model")
            t_forest = time.perf_counter() - t
            forest = load_model(work / "model")
            arr = open_level(work / "vol.ome.zarr")
            pred = []
            for z in unseen:
                f = slice_features(arr, z, forest.feature_settings)
                pred.append(forest.predict(f.reshape(-1, f.shape[-1])).reshape(shape[1:]) == 1)
            lo = result.metrics
            print(f"forest leave-one-slice-out Dice (background, fossil) "
                  f"[{lo['background']['dice']}, {lo['fossil']['dice']}], trained (with its validation) in "
                  f"{t_forest:.1f}s; Dice (fossil) on unseen slices {dice(np.stack(pred), truth[unseen]):.4f}")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
