"""Benchmark helper: the states a suggestion ranking sees, dumped for ``bench/suggest_rank.py``.

    python bench/suggest_dump.py --out /tmp/states --cases blobs thin texture --starts 2 3 --rounds 2

Why: a full correction loop (``bench/loop.py``) takes 20-40 minutes on the shared machine, too slow to
compare rankings of planes. This trains the models of a few loop rounds once (the simulated user of
``bench/loop.py`` painting in the fixed order, so the states are not the ranking's own) and keeps,
per model, what the ranking reads: the model's probabilities of the whole volume (painted voxels
holding their class), the interpolated outlines' labels, the outlines' odds, the painted planes,
and the truth. ``bench/suggest_rank.py`` then scores any ranking on them in seconds.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loop import CASES, choose, key_of, stroke_in  # noqa: E402 - the bench folder's own modules
from methods import write_scan  # noqa: E402

from ml4paleo.compute.painted import keep_painted  # noqa: E402
from ml4paleo.models import labels_from_proba  # noqa: E402
from ml4paleo.pipelines import train as train_mod  # noqa: E402
from ml4paleo.planes import AXES, SliceRef  # noqa: E402
from ml4paleo.testing import phantoms  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--cases", nargs="+", default=["blobs", "thin", "texture"], choices=list(CASES))
    ap.add_argument("--starts", nargs="+", type=int, default=[2, 3])
    ap.add_argument("--rounds", type=int, default=2, help="strokes in the fixed order after the start")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    args.out.mkdir(parents=True, exist_ok=True)
    captured: dict = {}
    real = train_mod.suggest_planes

    def capture(model, array, painted, voxel_size, classes, prior=None, outline_trust=0.5):
        captured.update(model=model, painted=list(painted), prior=prior, trust=outline_trust)
        return real(model, array, painted, voxel_size, classes, prior, outline_trust=outline_trust)

    train_mod.suggest_planes = capture
    work = Path(tempfile.mkdtemp(prefix="ml4paleo-suggest-dump-"))
    try:
        for name in args.cases:
            vol, truth = CASES[name]()
            path = write_scan(work / f"{name}.ome.zarr", vol)
            for start in args.starts:
                n = vol.shape[0]
                ann = {SliceRef("z", z): phantoms.strokes(truth[z])
                       for z in sorted({int(round(z)) for z in np.linspace(0.3 * n, 0.7 * n, start)})}
                cursor, previous = [0], None
                for round_ in range(args.rounds + 1):
                    model = work / f"{name}-{start}-{round_}"
                    kwargs = {"previous_model": previous} if previous else {}
                    result = train_mod.train_model(path, ann, model, validate="later", **kwargs)
                    m, prior = captured["model"], captured["prior"]
                    whole = (0, 0, 0), vol.shape
                    proba = keep_painted(m.predict_region(vol, *whole), m.painted, *whole)
                    pred = labels_from_proba(proba)
                    prior_labels = prior.labels(*whole) if prior is not None else np.full(vol.shape, -1)
                    painted = np.array([[AXES.index(r.axis), r.index] for r in captured["painted"]])
                    tag = f"{name}-s{start}-r{round_}"
                    np.savez_compressed(args.out / f"{tag}.npz", proba=proba.astype(np.float16), truth=truth,
                                        prior=prior_labels.astype(np.int8), painted=painted,
                                        trust=captured["trust"], method=result.method,
                                        estimate=result.suggestions.get("estimated_dice", {}).get(result.classes[1], -1))
                    print(f"{tag} {result.method} trust {captured['trust']:.3f} "
                          f"dice {2 * ((pred == 1) & (truth == 1)).sum() / ((pred == 1).sum() + (truth == 1).sum()):.4f}",
                          flush=True)
                    hit = choose("order", pred, truth, model, cursor, ann)
                    if previous is not None:
                        shutil.rmtree(previous, ignore_errors=True)
                    previous = model
                    if hit is None:
                        break
                    axis, index, cls, region = hit
                    key = key_of(axis, index)
                    mask = ann.get(key, np.zeros(region.shape, np.uint8)).copy()
                    mask[stroke_in(region)] = cls + 1
                    ann[key] = mask
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
