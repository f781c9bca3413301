"""Benchmark helper: the states a suggestion ranking sees, dumped for ``bench/suggest_rank.py``.

    python bench/suggest_dump.py --out /tmp/states --cases blobs thin texture --starts 2 3 --rounds 2

Why: a full correction loop (``bench/loop.py``) takes 20-40 minutes on the shared machine, too slow to
compare rankings of planes. This trains the models of a few loop rounds once (the simulated user of
``bench/loop.py`` painting in the fixed order, so the states are not the ranking's own) and keeps,
per model, what the ranking reads: the model's probabilities of the whole volume (painted voxels
holding their class), the interpolated outlines' labels, the outlines' odds, the painted planes,
and the truth. ``bench/suggest_rank.py`` then scores any ranking on them in seconds;
``bench/suggest_gain.py`` walks the same states and probes strokes.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loop import CASES, choose, painted_with  # noqa: E402 - the bench folder's own modules
from methods import dice, write_scan  # noqa: E402

from ml4paleo.compute.painted import keep_painted  # noqa: E402
from ml4paleo.models import labels_from_proba  # noqa: E402
from ml4paleo.pipelines import train as train_mod  # noqa: E402
from ml4paleo.planes import AXES, SliceRef  # noqa: E402
from ml4paleo.testing import phantoms  # noqa: E402

captured: dict = {}
"""What the last training passed to ``suggest_planes``: its model, painted planes, outlines and odds."""


def capture_suggestions() -> None:
    """Make ``train_model`` keep what it ranks planes with in ``captured`` (once per process)."""
    real = train_mod.suggest_planes
    if getattr(real, "captures", False):
        return

    def capture(model, array, painted, voxel_size, classes, prior=None, outline_trust=0.5, **kwargs):
        captured.update(model=model, painted=list(painted), prior=prior, trust=outline_trust)
        return real(model, array, painted, voxel_size, classes, prior, outline_trust=outline_trust, **kwargs)

    real_trust = train_mod.outline_trust

    def record(scored):
        counts = (scored or {}).get("against_outlines") or {}
        captured.update(disagree=int(counts.get("disagree", 0)), outlines_right=int(counts.get("outlines_right", 0)))
        return real_trust(scored)

    capture.captures = True  # type: ignore[attr-defined]
    train_mod.suggest_planes = capture
    train_mod.outline_trust = record


def trained(path: Path, vol: np.ndarray, ann: dict, model: Path, previous: Path | None):
    """(probabilities, labels, result) of the whole volume from a model trained on ``ann``."""
    kwargs = {"previous_model": previous} if previous else {}
    result = train_mod.train_model(path, ann, model, validate="later", **kwargs)
    m = captured["model"]
    whole = (0, 0, 0), vol.shape
    proba = keep_painted(m.predict_region(vol, *whole), m.painted, *whole)
    return proba, labels_from_proba(proba), result


@dataclass
class State:
    tag: str
    vol: np.ndarray
    truth: np.ndarray
    path: Path
    ann: dict
    model: Path
    proba: np.ndarray
    pred: np.ndarray
    result: Any
    cursor: list[int]


def states(cases, starts, rounds: int, work: Path, seed: int = 0) -> Iterator[State]:
    """Each round's model of ``bench/loop.py``'s start (``starts`` z slices of strokes), then ``rounds``
    strokes in its fixed order; ``captured`` holds the round's ranking inputs while a state is used."""
    capture_suggestions()
    for name in cases:
        vol, truth = CASES[name](seed)
        path = write_scan(work / f"{name}.ome.zarr", vol)
        for start in starts:
            n = vol.shape[0]
            ann = {SliceRef("z", z): phantoms.strokes(truth[z])
                   for z in sorted({int(round(z)) for z in np.linspace(0.3 * n, 0.7 * n, start)})}
            cursor, previous = [0], None
            for round_ in range(rounds + 1):
                model = work / f"{name}-{start}-{round_}"
                proba, pred, result = trained(path, vol, ann, model, previous)
                yield State(f"{name}-s{start}-r{round_}", vol, truth, path, ann, model, proba, pred, result, cursor)
                hit = choose("order", pred, truth, model, cursor, ann)
                if previous is not None:
                    shutil.rmtree(previous, ignore_errors=True)
                previous = model
                if hit is None:
                    break
                ann, _ = painted_with(ann, hit)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--cases", nargs="+", default=["blobs", "thin", "texture"], choices=list(CASES))
    ap.add_argument("--starts", nargs="+", type=int, default=[2, 3])
    ap.add_argument("--rounds", type=int, default=2, help="strokes in the fixed order after the start")
    ap.add_argument("--seed", type=int, default=0, help="the generated volumes' seed (the loop's are seed 0)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ml4paleo-suggest-dump-"))
    try:
        for s in states(args.cases, args.starts, args.rounds, work, args.seed):
            prior = captured["prior"]
            prior_labels = prior.labels((0, 0, 0), s.vol.shape) if prior is not None else np.full(s.vol.shape, -1)
            painted = np.array([[AXES.index(r.axis), r.index] for r in captured["painted"]])
            np.savez_compressed(args.out / f"{s.tag}.npz", proba=s.proba.astype(np.float16), truth=s.truth,
                                prior=prior_labels.astype(np.int8), painted=painted, trust=captured["trust"],
                                method=s.result.method, disagree=captured.get("disagree", 0),
                                outlines_right=captured.get("outlines_right", 0),
                                estimate=s.result.suggestions.get("estimated_dice", {}).get(s.result.classes[1], -1),
                                estimate_range=(s.result.suggestions.get("estimated_dice_range") or {})
                                .get(s.result.classes[1], [-1, -1]))
            print(f"{s.tag} {s.result.method} trust {captured['trust']:.3f} "
                  f"dice {dice(s.pred == 1, s.truth == 1):.4f}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
