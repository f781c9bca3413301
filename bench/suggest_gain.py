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

from loop import CASES, choose, largest_error, plane, stroke_in  # noqa: E402 - the bench's own modules
from methods import dice  # noqa: E402
from suggest_dump import captured, painted_with, states, trained  # noqa: E402
from suggest_rank import RULES, rank_planes  # noqa: E402

from ml4paleo.pipelines.suggest import candidate_planes  # noqa: E402


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
    work = Path(tempfile.mkdtemp(prefix="ml4paleo-suggest-gain-"))
    gains: dict[str, list[float]] = {}
    c0 = time.process_time()
    try:
        for st in states(args.cases, args.starts, args.rounds, work, args.seed):
            vol, truth, path, ann, model = st.vol, st.truth, st.path, st.ann, st.model
            proba, pred, result, struct = st.proba, st.pred, st.result, st.truth == 1
            prior = captured["prior"]
            prior_labels = prior.labels((0, 0, 0), vol.shape) if prior is not None else None
            base = dice(pred == 1, struct)
            picks = {}

            def hit_of(r):
                """Where the loop's user paints at ranked plane ``r``: the largest error in its box (else the plane)."""
                p, t = plane(pred, r.axis, r.index), plane(truth, r.axis, r.index)
                hit = largest_error(p, t, r.bbox) or largest_error(p, t)
                return (r.axis, r.index, *hit) if hit else None

            for rule in args.rules:
                ranked = rank_planes(proba, prior_labels, captured["painted"],
                                     candidate_planes(vol.shape, captured["painted"]), captured["trust"], rule,
                                     result.method in ("context", "interpolation"))
                picks[rule] = next((h for h in map(hit_of, ranked) if h), None)
                if rule == args.rules[0] and args.sides:
                    for side, axes in (("z", (0,)), ("yx", (1, 2))):
                        for k, r in enumerate([r for r in ranked if r.axis in axes][:args.sides]):
                            picks[f"{side}{k + 1}"] = hit_of(r)
            if not args.no_baselines:
                picks["order"] = choose("order", pred, truth, model, list(st.cursor), ann)
                picks["worst"] = choose("worst", pred, truth, model, [0], ann)
            line = [f"{st.tag} {result.method} dice {base:.3f}"]
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
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nload {os.getloadavg()[0]:.1f}; {time.process_time() - c0:.0f} CPU s")
    for rule, g in gains.items():
        print(f"{rule:10s} mean Dice gain of one stroke {np.mean(g):+.4f}  (n {len(g)}, "
              f"median {np.median(g):+.4f}, worst {min(g):+.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
