"""A fitted random forest packed into flat arrays and evaluated by a compiled (numba) kernel.

Why: segmentation spends about half its time in the forest, and our trees are small, so
scikit-learn's cost is its traversal loop and one float64 array per tree. Here nodes are laid
out breadth first with each node's children adjacent, so a step is ``node = child[node] + (x >
threshold)`` (no branch), and 8 voxels walk in lockstep so their loads overlap. The result equals
``RandomForestClassifier.predict_proba`` bit for bit (``tests/models/test_packed_forest.py``): the
packed threshold is the largest float32 not above scikit-learn's float64 one, leaf values are
summed in tree order as scikit-learn does, and rows with NaN are left to scikit-learn.
:meth:`PackedForest.predict_labels` stops a voxel once its leading class leads every other by
more than the trees left, so its labels equal the argmax of the probabilities voxel for voxel.
Speed-ups and the variants dropped: docs/benchmarks.md ("Packed forest"), docs/decisions.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ml4paleo.threads import map_on_threads

__all__ = ["LABEL_GROUP", "LATTICE_PROBE", "LATTICE_SURE", "PackedForest", "pack_forest", "reads_in_place"]

LABEL_GROUP = 2
"""Trees walked between two checks of which rows are decided in :meth:`PackedForest.predict_labels`
(1-6 measured within 3% of each other: most rows are decided at the first check)."""

LATTICE_SURE = 1.0
"""A lattice voxel of :meth:`PackedForest.predict_labels_lattice` lends its label to the voxels
around it only when its leader led by this share of the trees walked at the first check (1: every
tree's leaf was pure for it): fewer voxels differ from the exact labels than with any decided one
(docs/decisions.md, "Coarse-to-fine labels")."""
LATTICE_PROBE = 2
"""... and a voxel given its neighbours' label walks the forest itself unless each of this many
first trees gives that label a pure leaf for it. Without it a sharp model loses whole plates and
rods one voxel thin lying between lattice voxels (their neighbours are sure of the background:
``tests/models/test_packed_forest.py``); one tree still lost a voxel of them there, two none."""


@dataclass(frozen=True)
class PackedForest:
    """Flat arrays of every tree of a fitted forest (global node ids; children adjacent)."""

    word: np.ndarray  # (nodes,) uint32: left child << shift | feature (right child = left + 1;
    # a leaf is its own child, feature 0)
    shift: int  # bits of the feature index in a word
    threshold: np.ndarray  # (nodes,) float32, +inf at leaves
    value: np.ndarray  # (nodes, K) float64 class fractions (meaningful at leaves)
    root: np.ndarray  # (trees,) uint32
    depth: np.ndarray  # (trees,) uint32
    n_features: int

    def predict_proba(self, X: np.ndarray, n_jobs: int = 1) -> np.ndarray | None:
        """(n, K) float64 probabilities of float32 rows ``X``, equal to scikit-learn's.

        ``X`` may be the transpose of a C-ordered (n_features, n) array (a block's features as
        :func:`~ml4paleo.compute.features.block_features` fills them): it is read as it lies,
        without a transposing copy, and None is returned if it holds a NaN (which scikit-learn
        routes by its own rule). Rows of any other layout must hold no NaN."""
        columns = reads_in_place(X)
        if not columns:
            X = np.ascontiguousarray(X, dtype=np.float32)
        out = np.empty((X.shape[0], self.value.shape[1]), dtype=np.float64)
        args = (self.word, np.uint32(self.shift), self.threshold, self.value, self.root, self.depth)
        # the kernels are imported on first use only (numba's import and the kernels' load from
        # their on-disk cache): the CLI's start-up and models that are not forests never pay for it
        if columns:
            from ml4paleo.models._packed_kernel import forest_sum_columns

            def run(lo: int, hi: int) -> bool:
                return forest_sum_columns(X.T, lo, hi, *args, out)
        else:
            from ml4paleo.models._packed_kernel import forest_sum

            def run(lo: int, hi: int) -> bool:
                forest_sum(X[lo:hi], *args, out[lo:hi])
                return False
        parts = max(1, min(int(n_jobs), X.shape[0] // 65536 + 1))
        bounds = np.linspace(0, X.shape[0], parts + 1).astype(int)
        # the kernels release the GIL: row bands on threads
        if any(map_on_threads(lambda i: run(bounds[i], bounds[i + 1]), range(parts), parts)):
            return None
        out /= len(self.root)
        return out

    def predict_labels(self, X: np.ndarray, n_jobs: int = 1, *, group: int = LABEL_GROUP, first: int | None = None,
                       decided_at: np.ndarray | None = None) -> np.ndarray | None:
        """(n,) class indices (columns of :attr:`value`) of rows ``X``: ``np.argmax`` of
        :meth:`predict_proba` as float32 (the segmenter's probabilities), the first class on
        ties, for every row, without walking every tree for rows whose label is decided early.

        The trees are walked in order; after ``first`` trees (default: the fewest after which
        a row can be decided, half of them plus one), and then after every ``group``, a row whose
        leading class leads every other by more than the trees left is labelled (see
        :func:`~ml4paleo.models._packed_kernel.forest_labels_columns`). That needs each tree's
        class values in [0, 1] (scikit-learn's leaf class fractions); any other forest walks
        every tree. ``decided_at``, if given ((trees + 1,) int64), gets the number of rows
        labelled after each number of trees added to it (the last: rows that walked them all).
        Same layouts, threads and NaN rule (None) as :meth:`predict_proba`."""
        from ml4paleo.models._packed_kernel import forest_labels_columns  # on first use: see predict_proba

        n_trees, n_classes = len(self.root), self.value.shape[1]
        if not reads_in_place(X):
            X = np.ascontiguousarray(X, dtype=np.float32)  # read through its transpose: strided, a tile at a time
        first = self._first_check(first)
        labels = np.empty(X.shape[0], dtype=np.uint8 if n_classes <= 256 else np.intp)
        # the gap a decided row keeps after the last tree, as a probability: 2^-20, 16 float32
        # steps at 1, so rounding the probabilities to float32 cannot tie or swap the classes
        margin = n_trees * 2.0 ** -20
        args = (self.word, np.uint32(self.shift), self.threshold, self.value, self.root, self.depth,
                int(first), max(1, int(group)), margin, labels)
        parts = max(1, min(int(n_jobs), X.shape[0] // 65536 + 1))
        bounds = np.linspace(0, X.shape[0], parts + 1).astype(int)
        counts = np.zeros((parts, n_trees + 1), np.int64)

        def run(i: int) -> bool:
            return forest_labels_columns(X.T, bounds[i], bounds[i + 1], *args, counts[i])

        if any(map_on_threads(run, range(parts), parts)):  # the kernel releases the GIL: row bands on threads
            return None
        if decided_at is not None:
            decided_at += counts.sum(axis=0)
        return labels

    def predict_labels_lattice(self, X: np.ndarray, shape: tuple[int, int, int],
                               origin: tuple[int, int, int] = (0, 0, 0), *, sure: float = LATTICE_SURE,
                               probe: int = LATTICE_PROBE, decided_at: np.ndarray | None = None) -> np.ndarray | None:
        """Labels of the voxels of a (z, y, x) block of ``shape`` whose features are the rows
        ``X`` (in the block's C order), coarse to fine: the voxels of even global coordinates
        (``origin``: the block's first voxel) as :meth:`predict_labels`; a voxel between lattice
        voxels that are all sure and agree takes their label if each of the first ``probe``
        trees gives it a pure leaf of that label (:data:`LATTICE_PROBE`), the others walk the
        forest (:func:`~ml4paleo.models._packed_kernel.forest_labels_lattice`). A lattice voxel
        is sure when decided at the first check with a lead of ``sure`` times the trees walked
        or more (:data:`LATTICE_SURE`). Near exact, not exact: a voxel whose label differs from
        every sure neighbour's and from the probe trees' is missed (docs/decisions.md,
        "Coarse-to-fine labels"). Same layouts, ``decided_at`` (copied voxels count as decided
        after 0 trees) and NaN rule as :meth:`predict_labels` (a ``probe`` of 0 never reads a copied
        voxel's own features, so its NaN goes unseen); one thread; a block of under 2^31
        voxels (its voxel lists are int32: half the memory)."""
        from ml4paleo.models._packed_kernel import forest_labels_lattice  # on first use: see predict_proba

        n_trees = len(self.root)
        if not reads_in_place(X):
            X = np.ascontiguousarray(X, dtype=np.float32)
        if X.shape[0] != math.prod(shape) or X.shape[0] >= 1 << 31:
            raise ValueError(f"{X.shape[0]} rows for a block of shape {shape} (at most 2^31 - 1 voxels)")
        first = self._first_check(None)
        labels = np.empty(X.shape[0], dtype=np.uint8 if self.value.shape[1] <= 256 else np.intp)
        counts = np.zeros(n_trees + 1, np.int64)
        parity = [int(o) & 1 for o in origin]
        sure_lead = max(float(sure) * first - 1e-9, 1e-9)  # in trees; never 0: a row that walked them all is unsure
        if forest_labels_lattice(X.T, *(int(s) for s in shape), *parity, self.word, np.uint32(self.shift),
                                 self.threshold, self.value, self.root, self.depth, int(first), LABEL_GROUP,
                                 n_trees * 2.0 ** -20, sure_lead, min(int(probe), n_trees), labels, counts):
            return None
        if decided_at is not None:
            decided_at += counts
        return labels

    def _first_check(self, first: int | None) -> int:
        """Trees walked before the first check of which rows are decided (default: the fewest
        after which a row can be), or all of them where a tree's class values leave [0, 1] (no
        bound on what the trees left can add)."""
        n_trees = len(self.root)
        if not (self.value.size and 0.0 <= self.value.min() and self.value.max() <= 1.0):
            return n_trees
        return n_trees // 2 + 1 if first is None else int(first)


def reads_in_place(X: np.ndarray) -> bool:
    """Whether :meth:`PackedForest.predict_proba` reads ``X`` as it lies: float32 (n, n_features)
    rows that are the transpose of a C-ordered feature-major array."""
    return X.dtype == np.float32 and X.ndim == 2 and X.T.flags.c_contiguous and not X.flags.c_contiguous


def pack_forest(forest: Any) -> PackedForest:
    """Pack a fitted single-output ``RandomForestClassifier`` (or ``ExtraTreesClassifier``).

    Raises ValueError for a forest whose node ids do not fit a word beside the feature index
    (over 2^32 / n_features nodes: millions, far beyond a pixel classifier's)."""
    n_classes = int(forest.n_classes_)
    features, thresholds, children, values, roots, depths = [], [], [], [], [], []
    offset = 0
    for est in forest.estimators_:
        tree = est.tree_
        left, right = tree.children_left, tree.children_right
        order = [0]  # breadth first, so each node's two children get consecutive ids
        for node in order:
            if left[node] >= 0:
                order += [int(left[node]), int(right[node])]
        order_a = np.asarray(order, dtype=np.intp)
        new_id = np.empty(tree.node_count, dtype=np.intp)
        new_id[order_a] = np.arange(len(order_a))
        leaf = left[order_a] < 0
        thr64 = tree.threshold[order_a]
        thr = thr64.astype(np.float32)
        above = thr.astype(np.float64) > thr64  # rounded up: step down to the float32 below
        thr[above] = np.nextafter(thr[above], np.float32(-np.inf))
        thr[leaf] = np.inf
        child = np.where(leaf, np.arange(len(order_a)), new_id[np.maximum(left[order_a], 0)]) + offset
        features.append(np.where(leaf, 0, tree.feature[order_a]).astype(np.uint32))
        thresholds.append(thr)
        children.append(child.astype(np.uint32))
        values.append(np.asarray(tree.value[order_a, 0, :n_classes], dtype=np.float64))
        roots.append(offset)
        depths.append(int(tree.max_depth))
        offset += len(order_a)
    shift = max(1, (int(forest.n_features_in_) - 1).bit_length())
    if offset >= 1 << (32 - shift):
        raise ValueError(f"a forest of {offset} nodes and {forest.n_features_in_} features does not fit 32-bit words")
    word = (np.concatenate(children).astype(np.uint32) << np.uint32(shift)) | np.concatenate(features)
    return PackedForest(word, shift, np.concatenate(thresholds), np.ascontiguousarray(np.concatenate(values)),
                        np.asarray(roots, np.uint32), np.asarray(depths, np.uint32), int(forest.n_features_in_))
