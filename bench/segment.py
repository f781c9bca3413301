"""Benchmark: train + segment a generated volume, against the per-slice baseline a naive user writes.

    python bench/segment.py                 # 512^3 uint16 (the issue's size; ~15 min on 2 cores)
    python bench/segment.py --size 192      # quicker
    python bench/segment.py --shape 512 1024 1024 --dtype uint8 --skip-baseline   # memory check

The volume holds blobs and plates (the "fossil") in a noisy matrix, with a smooth intensity
drift. Scribbles: every 4th voxel of 4 slices. Prints feature, prediction and end-to-end
throughput (voxels/s, and voxels per CPU-second: the machine is shared, so wall time alone
says little), peak RSS (this process and the largest worker), and Dice on the slices not
annotated; features vs prediction on one task's block, scikit-learn's predict_proba vs the
packed forest's probabilities vs its labels-only early exit (with the share of voxels decided
early and after how many trees), back to back; and one task's block as the segmentation runs it,
with probabilities, labels only and coarse to fine (how many voxels differ from the exact
labels), in CPU time and where it goes (the block under cProfile, its
functions grouped into stages). The baseline:
``skimage.feature.multiscale_basic_features`` per 2D slice
(sigma 1..32) + a 50-tree depth-12 random forest, predicted slice by slice; with
``--baseline-slices N`` it is timed on N slices and its throughput extrapolated (it is linear
in the number of slices), its Dice measured on those slices.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import os
import pstats
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ml4paleo.io.omezarr import OmeZarrWriter, open_level
from ml4paleo.compute.regions import features_of_region
from ml4paleo.pipelines.segment import block_shape, segment_volume, task_voxels
from ml4paleo.pipelines.train import train_model
from ml4paleo.models import labels_from_proba, load_model, region_labels
from ml4paleo.models._packed import pack_forest
from threadpoolctl import threadpool_limits


def make_volume(shape, dtype, seed=0):
    """(volume, truth): blobs + plates brighter than a noisy matrix."""
    rng = np.random.default_rng(seed)
    Z, Y, X = shape
    truth = np.zeros(shape, dtype=bool)
    zz, yy, xx = np.ogrid[:Z, :Y, :X]
    n_blobs = max(4, int(np.prod(shape) / 64**3 * 3))
    for _ in range(n_blobs):
        c = rng.uniform(0, 1, 3) * shape
        r = rng.uniform(6, 18)  # voxels: the fossil fraction stays ~10-20 % at any size
        z0, z1 = max(0, int(c[0] - r)), min(Z, int(c[0] + r) + 1)
        y0, y1 = max(0, int(c[1] - r)), min(Y, int(c[1] + r) + 1)
        x0, x1 = max(0, int(c[2] - r)), min(X, int(c[2] + r) + 1)
        sub = ((zz[z0:z1] - c[0]) ** 2 + (yy[:, y0:y1] - c[1]) ** 2 + (xx[:, :, x0:x1] - c[2]) ** 2) <= r * r
        truth[z0:z1, y0:y1, x0:x1] |= sub
    for _ in range(max(2, min(16, n_blobs // 96))):
        normal = rng.normal(size=3)
        normal /= np.linalg.norm(normal)
        c = rng.uniform(0.2, 0.8, 3) * shape
        for z0 in range(0, Z, 64):
            z1 = min(Z, z0 + 64)
            d = (zz[z0:z1] - c[0]) * normal[0] + (yy - c[1]) * normal[1] + (xx - c[2]) * normal[2]
            truth[z0:z1] |= np.abs(d) <= 2.5
    hi = 255 if np.dtype(dtype) == np.uint8 else 40000
    scale = hi / 255
    vol = np.empty(shape, dtype=dtype)
    for z0 in range(0, Z, 32):
        z1 = min(Z, z0 + 32)
        base = 90 + 20 * np.sin(xx / X * 3.0) + 10 * (zz[z0:z1] / Z)
        v = base + 60 * truth[z0:z1] + rng.normal(0, 22, (z1 - z0, Y, X))
        vol[z0:z1] = np.clip(v * scale, 0, hi).astype(dtype)
    return vol, truth


def dice(a, b):
    return float(2 * np.logical_and(a, b).sum() / max(a.sum() + b.sum(), 1))


class RssSampler:
    """Peak RSS of this process and of its worker processes, sampled every 0.1 s (ru_maxrss of
    children would count the parent's pages a spawned child holds between fork and exec)."""

    def __init__(self) -> None:
        import threading

        import psutil

        self.me = psutil.Process()
        self.peak_total = self.peak_worker = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                kids = [c.memory_info().rss for c in self.me.children(recursive=True)]
            except psutil.Error:
                kids = []
            self.peak_worker = max([self.peak_worker, *kids])
            self.peak_total = max(self.peak_total, self.me.memory_info().rss + sum(kids))
            self._stop.wait(0.1)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def baseline(vol, truth, annotated, slices):
    from skimage.feature import multiscale_basic_features
    from sklearn.ensemble import RandomForestClassifier

    def feats(z):
        return multiscale_basic_features(vol[z].astype(np.float32), sigma_min=1, sigma_max=32)

    t = time.perf_counter()  # training time includes the annotated slices' features, as ours does
    Xs, ys = [], []
    for z in annotated:
        f = feats(z)
        Xs.append(f[::4, ::4].reshape(-1, f.shape[-1]))
        ys.append(truth[z, ::4, ::4].ravel())
    rf = RandomForestClassifier(n_estimators=50, max_depth=12, random_state=0).fit(np.concatenate(Xs), np.concatenate(ys))
    t_fit = time.perf_counter() - t
    t = time.perf_counter()
    pred = np.zeros((len(slices),) + vol.shape[1:], dtype=bool)
    for i, z in enumerate(slices):
        f = feats(z)
        pred[i] = rf.predict(f.reshape(-1, f.shape[-1])).reshape(vol.shape[1:])
    t_pred = time.perf_counter() - t
    return t_fit, t_pred, dice(pred, truth[slices])


STAGES = {
    "read": ("read_padded",),
    "gaussian": ("correlate1d", "valid_pass"),
    "derivatives": ("gradient", "_gradient_on", "second_derivatives"),
    "eigenvalues": ("_eig3", "_eig2", "_eigen"),
    "upsampling": ("_upsample", "_upsample_axis", "upsample_pass", "take"),
    "downsampling": ("_box_mean",),
    "transpose": ("ascontiguousarray",),
    "forest": ("forest_sum", "forest_sum_columns", "forest_labels_columns", "forest_labels_lattice", "predict_proba"),
}
"""Functions (cProfile's own time) counted in each stage of a block; the rest is "other"."""


def cpu_seconds() -> float:
    """CPU time of this process and its waited-for children (user + system)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def stage_breakdown(run) -> dict[str, float]:
    """CPU seconds per stage of ``run()``, one block's prediction as a segmentation task makes
    it: cProfile's own time per function, grouped by :data:`STAGES`; "read" is the whole read of
    the block with its halo (zarr, decompression, mirror padding)."""
    prof = cProfile.Profile(time.process_time)
    prof.runcall(run)
    out: dict[str, float] = {}
    total = 0.0
    for (_, _, name), (_, _, own, cum, _) in pstats.Stats(prof).stats.items():  # type: ignore[attr-defined]
        total += own
        quoted = name.split("'")  # "<method 'take' of 'numpy.ndarray' objects>"
        name = quoted[1] if len(quoted) > 2 else name.strip("<>").split(" ")[-1].split(".")[-1]
        stage = next((k for k, names in STAGES.items() if name in names), None)
        if stage is not None:
            out[stage] = out.get(stage, 0.0) + (cum if stage == "read" else own)
    out["other"] = total - sum(out.values())
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=512, help="edge of the cubic volume (default 512)")
    ap.add_argument("--shape", type=int, nargs=3, default=None, metavar=("Z", "Y", "X"))
    ap.add_argument("--dtype", default="uint16")
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--baseline-slices", type=int, default=0, help="time the baseline on N slices (0: all)")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--block", type=int, nargs=3, default=None, metavar=("Z", "Y", "X"),
                    help="block timed for features vs prediction (default: the segmentation's task block)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--exact-labels", action="store_true", help="segment with the exact labels (default: coarse to fine)")
    args = ap.parse_args(argv)
    shape = tuple(args.shape or (args.size,) * 3)
    n = int(np.prod(shape))
    work = Path(args.workdir or tempfile.mkdtemp(prefix="ml4paleo-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        vol, truth = make_volume(shape, args.dtype)
        with OmeZarrWriter(work / "vol.ome.zarr", shape, vol.dtype, chunks=args.chunk, overwrite=True) as w:
            for z0 in range(0, shape[0], args.chunk):
                w.write_slab(z0, vol[z0:z0 + args.chunk])
        print(f"volume {shape} {vol.dtype}, fossil {truth.mean():.1%} of voxels, written in {time.perf_counter() - t:.1f}s")
        annotated = [int(round(f * (shape[0] - 1))) for f in (0.15, 0.4, 0.6, 0.85)]
        ann = {}
        for z in annotated:
            m = np.zeros(shape[1:], np.uint8)
            m[::4, ::4] = np.where(truth[z, ::4, ::4], 2, 1)
            ann[z] = m
        others = np.array([z for z in range(shape[0]) if z not in annotated])

        phases: dict[str, float] = {}
        clock = [time.perf_counter(), "reading"]

        def phase(done, total, stage=""):
            if stage and stage != clock[1]:
                now = time.perf_counter()
                phases[clock[1]] = phases.get(clock[1], 0.0) + now - clock[0]
                clock[:] = [now, stage]

        t = time.perf_counter()
        result = train_model(work / "vol.ome.zarr", ann, work / "model", overwrite=True, progress=phase)
        t_train = time.perf_counter() - t
        t_validate = phases.get("validating (leave one slice out)", 0.0)
        print(f"train: {t_train:.1f}s ({', '.join(f'{k} {v:.1f}s' for k, v in phases.items())}), "
              f"{result.n_slices} slices, LOSO Dice {result.metrics}")

        from ml4paleo.pipelines.preview import predict_slice

        z_mid = shape[0] // 2 + 1
        t = time.perf_counter()
        predict_slice(work / "vol.ome.zarr", work / "model", z_mid)
        t_first = time.perf_counter() - t
        t = time.perf_counter()
        predict_slice(work / "vol.ome.zarr", work / "model", z_mid)
        t_again = time.perf_counter() - t
        print(f"preview of one {shape[1]}x{shape[2]} slice: {t_first:.2f}s first (model load + features), "
              f"{t_again:.3f}s again (after a brush stroke)")

        model = load_model(work / "model")
        arr = open_level(work / "vol.ome.zarr")
        block = args.block or block_shape(shape, arr.chunks, task_voxels(shape, model.feature_settings.n_features))
        region = (min(block[0], shape[0]), min(block[1], shape[1]), min(block[2], shape[2]))
        z0 = (shape[0] - region[0]) // 2
        nv = int(np.prod(region))
        times: dict[str, list[float]] = {"features": [], "scikit-learn": [], "packed": [], "packed labels": []}
        decided_at = None
        with threadpool_limits(1):
            model.set_n_jobs(1)
            for _ in range(args.repeats):  # interleaved, best of each: the machine is shared
                t = time.perf_counter()
                f = features_of_region(arr, (z0, 0, 0), (z0 + region[0], region[1], region[2]), model.feature_settings)
                times["features"].append(time.perf_counter() - t)
                rows = f.reshape(-1, f.shape[-1])
                t = time.perf_counter()
                expected = model.estimator.predict_proba(rows)
                times["scikit-learn"].append(time.perf_counter() - t)
                if model.metadata["kind"] == "random-forest":
                    packed = pack_forest(model.estimator)
                    t = time.perf_counter()
                    got = packed.predict_proba(rows)
                    times["packed"].append(time.perf_counter() - t)
                    assert np.array_equal(got, expected), "packed forest differs from scikit-learn"
                    decided_at = np.zeros(len(packed.root) + 1, np.int64)
                    t = time.perf_counter()
                    labels = packed.predict_labels(rows, decided_at=decided_at)
                    times["packed labels"].append(time.perf_counter() - t)
                    assert np.array_equal(labels, labels_from_proba(expected.astype(np.float32))), \
                        "packed labels differ from scikit-learn's"
        best = {k: min(v) for k, v in times.items() if v}
        print(f"one core, block {region} + halo, best of {args.repeats}: features "
              f"({model.feature_settings.n_features}/voxel of the bank's "
              f"{dataclasses.replace(model.feature_settings, selected=None).n_features}) "
              f"{nv / best['features'] / 1e6:.2f} M voxels/s "
              f"({best['features']:.2f}s)")
        for k in ("scikit-learn", "packed", "packed labels"):
            if k in best:
                print(f"  prediction ({model.metadata['kind']}, {k}): {nv / best[k] / 1e6:.2f} M voxels/s "
                      f"({best[k]:.2f}s)")
        if "packed" in best:
            print(f"  packed forest: probabilities identical to scikit-learn's, "
                  f"{best['scikit-learn'] / best['packed']:.2f}x; "
                  f"features + prediction {nv / (best['features'] + best['scikit-learn']) / 1e6:.2f} -> "
                  f"{nv / (best['features'] + best['packed']) / 1e6:.2f} M voxels/s per core")
        if decided_at is not None:
            n_trees = len(decided_at) - 1
            walked = (decided_at * np.arange(n_trees + 1)).sum() / (nv * n_trees)
            print(f"  packed labels (no probabilities; labels identical to scikit-learn's argmax): "
                  f"{best['packed'] / best['packed labels']:.2f}x the packed probabilities; rows decided early "
                  f"{decided_at[:-1].sum() / nv:.1%}, {walked:.1%} of the tree walks done; rows decided after "
                  + ", ".join(f"{t} trees {c / nv:.1%}" for t, c in enumerate(decided_at) if c))
        del f, rows
        with threadpool_limits(1):
            model.set_n_jobs(1)
            start, stop = (z0, 0, 0), (z0 + region[0], region[1], region[2])
            ways = {"with probabilities": lambda: labels_from_proba(model.predict_region(arr, start, stop)),
                    "labels only": lambda: region_labels(model, arr, start, stop),
                    "coarse to fine": lambda: region_labels(model, arr, start, stop, lattice=True)}
            first = {k: run() for k, run in ways.items()}  # the kernels' load from numba's cache
            differ = int(np.sum(first["coarse to fine"] != first["labels only"]))
            cpu: dict[str, list[float]] = {k: [] for k in ways}
            for _ in range(args.repeats):  # interleaved: the machine is shared
                for k, run in ways.items():
                    t = time.process_time()
                    run()
                    cpu[k].append(time.process_time() - t)
            stages = {k: stage_breakdown(run) for k, run in ways.items()}
        for k in ways:
            total = sum(stages[k].values())
            print(f"one task's block as segmentation runs it, {k} (one thread): "
                  f"{nv / min(cpu[k]) / 1e6:.2f} M voxels per CPU-s (best of {args.repeats}, {min(cpu[k]):.2f}s); "
                  f"stages (cProfile, CPU s, share): "
                  + ", ".join(f"{s} {v:.2f} ({v / total:.0%})"
                              for s, v in sorted(stages[k].items(), key=lambda kv: -kv[1])))
        print(f"  coarse to fine (the segmentation's default) against the exact labels: {differ} of {nv} voxels differ")

        rss_before = RssSampler().me.memory_info().rss
        load_before = os.getloadavg()[0]
        with RssSampler() as rss:
            t, c = time.perf_counter(), cpu_seconds()
            seg = segment_volume(work / "vol.ome.zarr", work / "model", work / "seg.ome.zarr", overwrite=True,
                                 exact_labels=args.exact_labels)
            t_seg, c_seg = time.perf_counter() - t, cpu_seconds() - c
        labels = np.asarray(open_level(work / "seg.ome.zarr")[:]) == 1
        ours_dice = dice(labels[others], truth[others])
        me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"segment end-to-end ({seg.n_blocks} blocks, scheduler {seg.scheduler}, "
              f"{'exact' if args.exact_labels else 'coarse-to-fine'} labels): {t_seg:.1f}s = {n / t_seg / 1e6:.2f} M voxels/s;"
              f" with training {n / (t_seg + t_train) / 1e6:.2f} M voxels/s; CPU {c_seg:.1f}s = "
              f"{n / c_seg / 1e6:.2f} M voxels per CPU-s on {os.cpu_count()} cores "
              f"(load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after)")
        print(f"Dice (fossil, {len(others)} slices not annotated): {ours_dice:.4f}")
        print(f"peak RSS while segmenting: main + workers {rss.peak_total / 2**20:.0f} MB (the bench's own arrays "
              f"{rss_before / 2**20:.0f} MB included), largest worker {rss.peak_worker / 2**20:.0f} MB; "
              f"bench process peak overall {me:.0f} MB")
        if not args.skip_baseline:
            slices = others if not args.baseline_slices else others[np.linspace(0, len(others) - 1, args.baseline_slices).astype(int)]
            b_fit, b_pred, b_dice = baseline(vol, truth, annotated, slices)
            per_voxel = b_pred / (len(slices) * shape[1] * shape[2])
            b_total = per_voxel * n + b_fit
            print(f"baseline (multiscale_basic_features per slice + RF 50 trees depth 12): "
                  f"{1 / per_voxel / 1e6:.2f} M voxels/s predicting ({len(slices)} slices timed), "
                  f"fit {b_fit:.1f}s, Dice {b_dice:.4f}")
            print(f"end-to-end ratio (ours / baseline, incl. training): {b_total / (t_seg + t_train):.2f}x;"
                  f" without our leave-one-slice-out validation (the baseline has none): "
                  f"{b_total / (t_seg + t_train - t_validate):.2f}x; segmentation only: {per_voxel * n / t_seg:.2f}x")
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
