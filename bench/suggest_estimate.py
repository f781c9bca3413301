"""Benchmark: how far the estimated Dice of ``suggestions.json`` is from the truth, per model.

    python bench/suggest_dump.py --out /tmp/states --starts 1 2 3 --rounds 3   # the models, once
    python bench/suggest_estimate.py /tmp/states                              # seconds

Per dumped model (``bench/suggest_dump.py``: its probabilities of the whole volume, the outlines'
labels and odds, the painted planes, the truth) the structure's Dice against the truth, the estimate
the product wrote, and the estimate of each rule below recomputed on the planes the product scores
(``suggest.candidate_planes``): per rule the mean error (estimate minus truth) and mean |error| over
the models, and the same per start (the outline slices painted at the start) and per case. A rule
that says "not enough painted to estimate" (None) counts as a miss in ``unanswered``, not in the
errors; a range counts as right when the truth lies inside it, its error as the distance outside it.
The summary gives per rule the numbers (count, mean error, mean |error|) and the ranges (count, how many
hold the truth, mean width) apart.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ml4paleo.compute.uncertainty import soft_dice_terms  # noqa: E402
from ml4paleo.pipelines.scoring import MEASURED_DISAGREEMENTS  # noqa: E402
from ml4paleo.pipelines.suggest import UNMEASURED_ENDS, candidate_planes, estimate  # noqa: E402
from ml4paleo.planes import AXES, SliceRef  # noqa: E402


def _dice(terms: np.ndarray) -> float:
    tp, pred, true = terms[1]
    return float(2 * tp / (pred + true)) if pred + true else float("nan")


def terms_over(proba, prior, planes, trust, power: float = 1.0) -> np.ndarray:
    """The product's soft Dice sums over ``planes`` with the outlines at odds ``trust`` (None: no outlines),
    the probabilities read at ``power``."""
    out = np.zeros((proba.shape[-1], 3))
    for axis, index in planes:
        p = np.take(proba, index, axis=axis)
        labels = None if prior is None or trust is None else np.take(prior, index, axis=axis)
        out += soft_dice_terms(p, labels, 0.5 if trust is None else trust, power)
    return out


Rule = Callable[[dict], "float | tuple[float, float] | None"]
THRESHOLD = [MEASURED_DISAGREEMENTS]
"""Held-out disagreements from which the product's rule takes the odds as measured (``--measured``)."""


def product(s: dict) -> float | tuple[float, float] | None:
    """What ``suggestions.json`` now says of the structure (:func:`ml4paleo.pipelines.suggest.estimate`):
    a number at the record's odds where measured, else the range of ``UNMEASURED_ENDS``."""
    measured = s["disagree"] >= THRESHOLD[0]
    ends = [(s["trust"], 1.0)] if measured else list(UNMEASURED_ENDS)
    doc = estimate([terms_over(s["proba"], s["prior"], s["planes"], *end) for end in ends], ("background", "fossil"),
                   measured)
    return doc["estimated_dice"]["fossil"] if measured else tuple(doc["estimated_dice_range"]["fossil"])


def at_odds(odds: float | None) -> Rule:
    """The soft Dice with the outlines at fixed odds where they disagree (None: outlines left out)."""
    return lambda s: _dice(terms_over(s["proba"], s["prior"], s["planes"], odds))


RULES: dict[str, Rule] = {
    "before": lambda s: _dice(terms_over(s["proba"], s["prior"], s["planes"], s["trust"])),
    "product": product,
    "no-outlines": at_odds(None),
    "odds-0": at_odds(0.0),
    "odds-0.1": at_odds(0.1),
    "odds-0.2": at_odds(0.2),
    "odds-0.3": at_odds(0.3),
    "oracle-odds": lambda s: _dice(terms_over(s["proba"], s["prior"], s["planes"], s["true_trust"])),
}
"""``before``: the estimate until now, the record's odds or even ones without a record; ``oracle-odds``:
the outlines' true odds on the planes scored (what no product can know)."""


def load(path: Path) -> dict:
    d = np.load(path)
    proba, truth, prior = d["proba"].astype(np.float32), d["truth"].astype(np.int64), d["prior"].astype(np.int64)
    prior = None if (prior < 0).all() else prior
    painted = [SliceRef(AXES[a], int(i)) for a, i in d["painted"]]
    planes = candidate_planes(truth.shape, painted)
    pred = np.argmax(proba, axis=-1)
    split = np.zeros(truth.shape, bool)
    if prior is not None:
        split = pred != prior
    on = np.zeros(truth.shape, bool)
    for axis, index in planes:
        idx = [slice(None)] * 3
        idx[axis] = index
        on[tuple(idx)] = True
    right = (prior == truth) if prior is not None else np.zeros(truth.shape, bool)
    n_split = int((split & on).sum())
    return {"tag": path.stem, "method": str(d["method"]), "proba": proba, "truth": truth, "prior": prior,
            "planes": planes, "painted": painted, "trust": float(d["trust"]),
            # dumped before the count was kept: the odds differ from even only where measured
            "disagree": int(d["disagree"]) if "disagree" in d else
            (MEASURED_DISAGREEMENTS if abs(float(d["trust"]) - 0.5) > 1e-6 else 0),
            # what the product wrote: its number, or its range where it gave one (-1: none)
            "file": float(d["estimate"]) if float(d["estimate"]) >= 0 or "estimate_range" not in d
            else tuple(float(v) for v in d["estimate_range"]),
            "dice": float(2 * ((pred == 1) & (truth == 1)).sum() / max((pred == 1).sum() + (truth == 1).sum(), 1)),
            "split_share": n_split / max(int(on.sum()), 1),
            "true_trust": float((right & split & on).sum() / n_split) if n_split else 0.5}


def fmt_file(said, truth: float) -> str:
    if isinstance(said, tuple):
        return f"[{said[0]:.3f}, {said[1]:.3f}]"
    return "-" if said < 0 else f"{said - truth:+.3f}"


def error(estimate, truth: float) -> float | None:
    if estimate is None:
        return None
    if isinstance(estimate, tuple):
        lo, hi = estimate
        return 0.0 if lo <= truth <= hi else (lo - truth if truth < lo else hi - truth)
    return float(estimate) - truth


def start_of(tag: str) -> str:
    return tag.split("-")[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("states", type=Path, nargs="+")
    ap.add_argument("--rules", nargs="+", default=["before", "product"], choices=list(RULES))
    ap.add_argument("--measured", type=int, default=MEASURED_DISAGREEMENTS,
                    help="held-out disagreements from which the odds count as measured (scoring.MEASURED_DISAGREEMENTS)")
    args = ap.parse_args(argv)
    THRESHOLD[0] = args.measured
    rows: list[tuple[str, str, dict[str, float | None]]] = []
    widths: list[float] = []
    ranged = 0
    for folder in args.states:
        for f in sorted(folder.glob("*.npz")):
            s = load(f)
            said = {r: RULES[r](s) for r in args.rules}
            errs = {r: error(e, s["dice"]) for r, e in said.items()}
            widths.extend(e[1] - e[0] for e in said.values() if isinstance(e, tuple))
            ranged += sum(isinstance(e, tuple) for e in said.values())
            rows.append((s["tag"], folder.name, {r: (errs[r], said[r]) for r in args.rules}))
            cells = " ".join(f"{r} {'  -  ' if e is None else f'{e:+.3f}'}"
                             + (f" [{said[r][0]:.3f}, {said[r][1]:.3f}]" if isinstance(said[r], tuple) else "")
                             for r, e in errs.items())
            print(f"{folder.name}/{s['tag']:16s} {s['method']:13s} disagree {s['disagree']:6d} trust {s['trust']:.3f} "
                  f"(truth {s['true_trust']:.3f}, split {s['split_share']:.3f}) dice {s['dice']:.3f} "
                  f"file {fmt_file(s['file'], s['dice'])} | {cells}", flush=True)
    if ranged:
        print(f"\nranges: {ranged} (of {len(rows)} models x {len(args.rules)} rules), mean width "
              f"{np.mean(widths):.3f}, widest {np.max(widths):.3f}")
    groups = {"all": rows}
    for row in rows:
        groups.setdefault(f"{row[1]} {start_of(row[0])}", []).append(row)
        groups.setdefault(f"{row[1]} {row[0].split('-')[0]}", []).append(row)
    print(f"\n{'group':14s} " + " ".join(f"{r:>36s}" for r in args.rules))
    print(f"{'':14s} " + " ".join(f"{'numbers: n err |err|; ranges: n in width':>36s}"
                                  for _ in args.rules))
    for name, members in groups.items():
        cells = []
        for r in args.rules:
            nums = np.array([m[2][r][0] for m in members if m[2][r][1] is not None and not isinstance(m[2][r][1], tuple)])
            spans = [(m[2][r][0], m[2][r][1]) for m in members if isinstance(m[2][r][1], tuple)]
            cell = f"{len(nums):2d} {nums.mean():+.3f} {np.abs(nums).mean():.3f}" if nums.size else f"{0:2d}{'-':>13s}"
            if spans:
                cell += (f"; {len(spans):2d} {sum(e == 0 for e, _ in spans):2d} "
                         f"{np.mean([hi - lo for _, (lo, hi) in spans]):.3f}")
            cells.append(cell)
        print(f"{name:14s} " + " ".join(f"{c:>36s}" for c in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
