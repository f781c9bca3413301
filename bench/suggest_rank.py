"""Benchmark: how well a ranking of planes points at the errors a stroke would fix.

    python bench/suggest_rank.py /tmp/states            # states of bench/suggest_dump.py

Per dumped model (``bench/suggest_dump.py``) and per ranking rule, every plane the product
would score (``suggest.candidate_planes``, or every unpainted plane with ``--all-planes``) is
ranked from the model's probabilities and outlines alone; the truth then says, per plane, the size
of the largest wrong region (what ``bench/loop.py``'s simulated user paints a stroke into) inside
the suggested box. Printed per rule: ``top/oracle``, the top suggestion's wrong region over the
largest wrong region of any plane of any axis (1.0: the oracle's pick); ``order/oracle``, the same
for the fixed order's first slice (z0, as ``bench/loop.py`` starts); Spearman's rank correlation
between the plane scores and the planes' largest wrong regions, over all axes, z planes alone and
y/x planes alone; the top suggestion's axis.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi, stats

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loop import largest_error  # noqa: E402

from ml4paleo.compute.uncertainty import doubt_map, plane_doubt, plane_worst  # noqa: E402
from ml4paleo.pipelines.suggest import candidate_planes  # noqa: E402
from ml4paleo.planes import AXES, SliceRef  # noqa: E402


@dataclass(frozen=True)
class Ranked:
    axis: int
    index: int
    bbox: tuple[int, int, int, int]
    score: float


def _doubt(proba, prior, trust, context):
    worst = plane_doubt(doubt_map(proba, prior))
    return None if worst is None else (worst.bbox, worst.doubt)


def wrong_map(proba, prior, trust, own=False):
    """Each voxel's chance that the model is wrong: 1 - its top probability where the outlines agree
    (or are absent), the outlines' odds where they disagree."""
    p = 1.0 - proba.max(axis=-1)
    if prior is not None:
        p = np.where(np.argmax(proba, axis=-1) != prior, np.maximum(trust, p) if own else trust, p)
    return p


def largest(p, threshold=0.25):
    worst = plane_doubt(p, threshold)
    return None if worst is None else (worst.bbox, worst.doubt)


def _expected(proba, prior, trust, context):
    return largest(wrong_map(proba, prior, trust))


def beyond_rows(context):
    """(rows,) slices beyond the painted z range of each row of the plane (0 within it)."""
    axis, index, zs, shape = context["axis"], context["index"], context["z_painted"], context["shape"]
    z = np.array([index]) if axis == 0 else np.arange(shape[0])
    if not zs:
        return np.zeros(z.size)
    return np.maximum(zs[0] - z, 0) + np.maximum(z - zs[-1], 0)


def drift_band(labels, d, drift):
    """Voxels within d * drift of the predicted labels' outline, half of which the outline's drift beyond
    the painted range makes wrong."""
    edge = labels != np.roll(labels, 1, axis=0)
    edge |= labels != np.roll(labels, 1, axis=1)
    dist = ndi.distance_transform_edt(~edge)
    return np.where(dist <= d * drift, 0.5, 0.0)


def _expected2(proba, prior, trust, context):
    return largest(wrong_map(proba, prior, trust, True))


def _extrap(proba, prior, trust, context, own=False, weight=0.5):
    d = beyond_rows(context)
    p = wrong_map(proba, prior, trust, own)
    drift = context.get("drift", 0.0) if context.get("outlines", True) else 0.0
    if drift > 0 and d.max() > 0:
        dd = d[:, None] if context["axis"] else np.full((1, 1), d[0])
        band = drift_band(np.argmax(proba, axis=-1), np.broadcast_to(dd, p.shape), drift) * (weight / 0.5)
        p = np.maximum(p, band)
    return largest(p)


def _product(proba, prior, trust, context):
    worst = plane_worst(proba, prior, trust)
    return None if worst is None else (worst.bbox, worst.doubt)


RULES = {"product": _product, "doubt": _doubt, "expected": _expected, "expected2": _expected2, "extrap": _extrap,
         "extrap2": lambda *a: _extrap(*a, own=True), "extrap2w": lambda *a: _extrap(*a, own=True, weight=0.3)}


def outline_drift(prior, zs):
    """Voxels the painted outlines move per slice: changed voxels between consecutive painted z slices over
    their mean outline length and their distance."""
    if prior is None or len(zs) < 2:
        return 0.0
    rates = []
    for a, b in zip(zs, zs[1:]):
        ma, mb = prior[a], prior[b]
        edge = lambda m: int(((m != np.roll(m, 1, 0)) | (m != np.roll(m, 1, 1))).sum())
        length = max((edge(ma) + edge(mb)) / 2, 1)
        rates.append((ma != mb).sum() / length / (b - a))
    return float(np.mean(rates))


def rank_planes(proba, prior, painted, planes, trust, rule, outlines=True) -> list[Ranked]:
    """The planes ranked best first by ``rule`` (a function of a plane's probabilities, outlines, the
    outlines' odds and the plane's context: axis, index, painted z range)."""
    z_painted = sorted(r.index for r in painted if r.axis == "z")
    drift = outline_drift(prior, z_painted)
    out = []
    for axis, index in planes:
        p = np.take(proba, index, axis=axis)
        labels = None if prior is None else np.take(prior, index, axis=axis)
        found = RULES[rule](p, labels, trust, {"axis": axis, "index": index, "z_painted": z_painted,
                                               "shape": proba.shape[:3], "drift": drift,
                                               "outlines": outlines})
        if found is not None:
            out.append(Ranked(axis, index, tuple(int(b) for b in found[0]), float(found[1])))
    return sorted(out, key=lambda r: -r.score)


def wrong_size(pred: np.ndarray, truth: np.ndarray, axis: int, index: int, box=None) -> int:
    """The largest wrong region the loop's user would paint into on a plane (inside ``box``, else the plane)."""
    p, t = np.take(pred, index, axis=axis), np.take(truth, index, axis=axis)
    hit = (largest_error(p, t, box) if box is not None else None) or largest_error(p, t)
    return int(hit[1].sum()) if hit else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("states", type=Path)
    ap.add_argument("--rules", nargs="+", default=list(RULES))
    ap.add_argument("--all-planes", action="store_true")
    args = ap.parse_args(argv)
    table: dict[str, list] = {r: [] for r in args.rules}
    for f in sorted(args.states.glob("*.npz")):
        d = np.load(f)
        proba, truth, prior = d["proba"].astype(np.float32), d["truth"].astype(np.int64), d["prior"]
        prior = None if (prior < 0).all() else prior.astype(np.int64)
        painted = [SliceRef(AXES[a], int(i)) for a, i in d["painted"]]
        pred = np.argmax(proba, axis=-1)
        taken = {(r.dim, r.index) for r in painted}
        planes = ([(a, i) for a in range(3) for i in range(truth.shape[a]) if (a, i) not in taken]
                  if args.all_planes else candidate_planes(truth.shape, painted))
        every = {(a, i): wrong_size(pred, truth, a, i) for a in range(3) for i in range(truth.shape[a])}
        where = max(every, key=every.get)
        oracle = every[where]
        order = wrong_size(pred, truth, 0, 0)
        truth_sizes = {p: wrong_size(pred, truth, *p) for p in planes}
        dice = 2 * ((pred == 1) & (truth == 1)).sum() / ((pred == 1).sum() + (truth == 1).sum())
        line = [f"{f.stem:18s} {str(d['method']):13s} dice {dice:.3f} oracle {AXES[where[0]]}{where[1]} {oracle:4d} order/oracle {order / max(oracle, 1):.2f}"]
        for rule in args.rules:
            ranked = rank_planes(proba, prior, painted, planes, float(d["trust"]), rule,
                                 str(d["method"]) in ("context", "interpolation"))
            if not ranked:
                continue
            top = ranked[0]
            got = wrong_size(pred, truth, top.axis, top.index, top.bbox)
            score = {(r.axis, r.index): r.score for r in ranked}
            rho = {}
            for part, axes in (("all", (0, 1, 2)), ("z", (0,)), ("yx", (1, 2))):
                keys = [p for p in planes if p[0] in axes]
                s = [score.get(p, 0.0) for p in keys]
                t = [truth_sizes[p] for p in keys]
                rho[part] = stats.spearmanr(s, t)[0] if len(keys) > 2 and np.ptp(s) > 0 and np.ptp(t) > 0 else np.nan
            table[rule].append((got / max(oracle, 1), order / max(oracle, 1), rho["all"], rho["z"], rho["yx"]))
            line.append(f"  {rule:10s} top {AXES[top.axis]}{top.index:<3d} {got:4d} ({got / max(oracle, 1):.2f})"
                        f" rho {rho['all']:+.2f} z {rho['z']:+.2f} yx {rho['yx']:+.2f}")
        print("\n".join(line), flush=True)
    print("\nrule        mean top/oracle  (order/oracle)  top >= order  mean rho all / z / yx")
    for rule, rows in table.items():
        if rows:
            a = np.array(rows, dtype=float)
            print(f"{rule:10s}  {a[:, 0].mean():.2f}             ({a[:, 1].mean():.2f})          "
                  f"{int((a[:, 0] >= a[:, 1]).sum())}/{len(a)}         "
                  f"{np.nanmean(a[:, 2]):+.2f} / {np.nanmean(a[:, 3]):+.2f} / {np.nanmean(a[:, 4]):+.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
