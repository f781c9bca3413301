"""A forest's packed arrays in its model folder (``forest.npz``, beside ``estimator.joblib``).

Why: unpickling the estimator imports scikit-learn (1.35 s at a load of 5, most of it
``scipy.stats``, measured with ``python -X importtime``), which ``ml4paleo segment`` on a small
scan paid only to pack the trees again for the compiled kernel. The packed arrays, written when
the model is saved, let a segmentation load the forest with numpy alone; ``estimator.joblib``
stays for scikit-learn's paths (NaN rows, the feature ranking) and older versions. A folder
without the file (saved before it existed) packs on load, as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ml4paleo.models._packed import PackedForest, pack_forest

__all__ = ["PACKED_FILE", "PackedModel", "load_packed", "save_packed"]

PACKED_FILE = "forest.npz"
FORMAT = 1
"""Bumped when the arrays' meaning changes: an unknown format is ignored (packed on load)."""

PackedModel = tuple[PackedForest, np.ndarray, int]
"""The packed trees, the class indices seen in fit (the probabilities' columns) and the
estimator's ``n_jobs`` as saved."""


def save_packed(forest: Any, folder: Path) -> bool:
    """Write the packed arrays of the fitted ``forest`` into ``folder``; False (nothing written)
    for a forest too large to pack, which then predicts with scikit-learn."""
    try:
        packed = pack_forest(forest)
    except ValueError:
        return False
    with open(Path(folder) / PACKED_FILE, "wb") as f:  # uncompressed: ~1 MB, read in milliseconds
        np.savez(f, format=np.int64(FORMAT), word=packed.word, shift=np.int64(packed.shift),
                 threshold=packed.threshold, value=packed.value, root=packed.root, depth=packed.depth,
                 n_features=np.int64(packed.n_features), classes=np.asarray(forest.classes_, np.int64),
                 n_jobs=np.int64(forest.n_jobs or 1))
    return True


def load_packed(folder: Path) -> PackedModel | None:
    """What :func:`save_packed` wrote in ``folder``, or None when it wrote nothing there (an
    older model folder, or a format this version does not know)."""
    path = Path(folder) / PACKED_FILE
    if not path.is_file():
        return None
    with np.load(path) as data:
        if int(data["format"]) != FORMAT:
            return None
        packed = PackedForest(data["word"], int(data["shift"]), data["threshold"], np.ascontiguousarray(data["value"]),
                              data["root"], data["depth"], int(data["n_features"]))
        return packed, data["classes"].astype(np.intp), int(data["n_jobs"])
