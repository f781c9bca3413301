"""Benchmark: the Dice one stroke buys at each ranking rule's top suggestion.

    python bench/suggest_gain.py --cases blobs thin --starts 2 3 --rounds 1 --rules doubt expected

Why: the size of the wrong region a suggestion points at (``bench/suggest_rank.py``) is not what a
stroke is worth: a dab beyond the painted range reshapes the outlines' whole extrapolation. Per
state of a loop (the start strokes of ``bench/loop.py``, then ``--rounds`` strokes in its fixed
order), this paints one stroke as the loop's user does at the top plane of each rule, at the fixed
order's next slice and at the oracle's worst plane, retrains (the round's model as the previous one,
as the loop does) and prints the Dice of the whole volume after it: a one-step loop per rule, a few
trainings per state instead of a 20-40 minute loop run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loop import CASES, choose, key_of, largest_error, plane, stroke_in  # noqa: E402 - the bench's own modules
from methods import dice, write_scan  # noqa: E402
from suggest_rank import RULES, rank_planes  # noqa: E402

from ml4paleo.compute.painted import keep_painted  # noqa: E402
from ml4paleo.models import labels_from_proba  # noqa: E402
from ml4paleo.pipelines import train as train_mod  # noqa: E402
from ml4paleo.pipelines.suggest import candidate_planes  # noqa: E402
from ml4paleo.planes import SliceRef  # noqa: E402
from ml4paleo.testing import phantoms  # noqa: E402

captured: dict = {}



def _capture(real):
    def capture(model, array, painted, voxel_size, classes, prior=None, outline_trust=0.5):
        captured.update(model=model, painted=list(painted), prior=prior, trust=outline_trust)
        return real(model, array, painted, voxel_size, classes, prior, outline_trust=outline_trust)
    return capture


def trained(path, vol, ann, model, previous):
    """(probabilities, labels) of the whole volume from a model trained on ``ann``."""
    kwargs = {"previous_model": previous} if previous else {}
    result = train_mod.train_model(path, ann, model, validate="later", **kwargs)
    m = captured["model"]
    whole = (0, 0, 0), vol.shape
    proba = keep_painted(m.predict_region(vol, *whole), m.painted, *whole)
    return proba, labels_from_proba(proba), result


def painted_with(ann, hit):
    axis, index, cls, region = hit
    key = key_of(axis, index)
    mask = ann.get(key, np.zeros(region.shape, np.uint8)).copy()
    mask[stroke_in(region)] = cls + 1
    return {**ann, key: mask}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", default=["blobs", "thin"], choices=list(CASES))
    ap.add_argument("--starts", nargs="+", type=int, default=[2, 3])
    ap.add_argument("--rounds", type=int, default=1, help="strokes in the fixed order before a state is measured")
    ap.add_argument("--rules", nargs="+", default=["doubt", "product"], choices=list(RULES))
    ap.add_argument("--seed", type=int, default=0, help="the generated volumes' seed (the loop's are seed 0)")
    ap.add_argument("--sides", type=int, default=0,
                    help="also the K best planes by the first rule on z and across the stack (y/x), each probed")
    ap.add_argument("--no-baselines", action="store_true", help="leave out the fixed order and the oracle")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    train_mod.suggest_planes = _capture(train_mod.suggest_planes)
    work = Path(tempfile.mkdtemp(prefix="ml4paleo-suggest-gain-"))
    gains: dict[str, list[float]] = {}
    c0 = time.process_time()
    try:
        for name in args.cases:
            vol, truth = CASES[name](args.seed)
            path = write_scan(work / f"{name}.ome.zarr", vol)
            struct = truth == 1
            for start in args.starts:
                n = vol.shape[0]
                ann = {SliceRef("z", z): phantoms.strokes(truth[z])
                       for z in sorted({int(round(z)) for z in np.linspace(0.3 * n, 0.7 * n, start)})}
                cursor, previous = [0], None
                for round_ in range(args.rounds + 1):
                    model = work / f"{name}-{start}-{round_}"
                    proba, pred, result = trained(path, vol, ann, model, previous)
                    prior = captured["prior"]
                    prior_labels = prior.labels((0, 0, 0), vol.shape) if prior is not None else None
                    base = dice(pred == 1, struct)
                    picks = {}
                    for rule in args.rules:
                        ranked = rank_planes(proba, prior_labels, captured["painted"],
                                             candidate_planes(vol.shape, captured["painted"]), captured["trust"], rule,
                                             result.method in ("context", "interpolation"))
                        for r in ranked:
                            p, t = plane(pred, r.axis, r.index), plane(truth, r.axis, r.index)
                            hit = largest_error(p, t, r.bbox) or largest_error(p, t)
                            if hit:
                                picks[rule] = (r.axis, r.index, *hit)
                                break
                        if rule == args.rules[0] and args.sides:
                            for side, axes in (("z", (0,)), ("yx", (1, 2))):
                                for k, r in enumerate([r for r in ranked if r.axis in axes][:args.sides]):
                                    p, t = plane(pred, r.axis, r.index), plane(truth, r.axis, r.index)
                                    hit = largest_error(p, t, r.bbox) or largest_error(p, t)
                                    if hit:
                                        picks[f"{side}{k + 1}"] = (r.axis, r.index, *hit)
                    if not args.no_baselines:
                        picks["order"] = choose("order", pred, truth, model, list(cursor), ann)
                        picks["worst"] = choose("worst", pred, truth, model, [0], ann)
                    line = [f"{name}-s{start}-r{round_} {result.method} dice {base:.3f}"]
                    done: dict = {}
                    for rule, hit in picks.items():
                        if hit is None:
                            continue
                        where = (hit[0], hit[1], int(np.argmax(stroke_in(hit[3]))))
                        if where not in done:
                            _, after, _ = trained(path, vol, painted_with(ann, hit), work / f"probe-{rule}", model)
                            shutil.rmtree(work / f"probe-{rule}", ignore_errors=True)
                            done[where] = dice(after == 1, struct)
                        gains.setdefault(rule, []).append(done[where] - base)
                        line.append(f"{rule} {'zyx'[hit[0]]}{hit[1]}:{'bg' if hit[2] == 0 else 'st'} "
                                    f"{int(hit[3].sum())} -> {done[where]:.3f} ({done[where] - base:+.3f})")
                    print("  ".join(line), flush=True)
                    hit = choose("order", pred, truth, model, cursor, ann)
                    if previous is not None:
                        shutil.rmtree(previous, ignore_errors=True)
                    previous = model
                    if hit is None:
                        break
                    ann = painted_with(ann, hit)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nload {os.getloadavg()[0]:.1f}; {time.process_time() - c0:.0f} CPU s")
    for rule, g in gains.items():
        print(f"{rule:10s} mean Dice gain of one stroke {np.mean(g):+.4f}  (n {len(g)}, "
              f"median {np.median(g):+.4f}, worst {min(g):+.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
