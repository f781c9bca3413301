"""A sparse-label U-Net segmenter: trained on the painted slices only, on the CPU or a GPU.

The network (:mod:`ml4paleo.models._unet_net`) is a small 2D U-Net whose input channels are the
predicted slice and ``context`` neighbours on each side (2.5D). Training draws random crops near
painted voxels (the class first, so a structure painted with a few strokes is seen as often as
the matrix), with cross-entropy over painted voxels only (strokes work, not only full masks). A
painted XZ or YZ plane trains it too, as bands of the z slices it crosses labeled on its line.
With held-out slices (a leave-one-slice-out fold) the epoch with the best held-out Dice is kept
and ``best_epochs`` tells the final fit how long to train. Inference runs tile by tile, each
tile reading the network's receptive radius on the pooling grid, so tiles equal whole-slice
inference and memory is one tile whatever the region. Torch's threads are per process
(:meth:`UNetSegmenter.set_n_jobs`): never more than the cores free. Importing this module
imports torch; ``ml4paleo.models`` does so only for a ``unet`` model folder. The configurations
tried and the comparison with the forest: docs/benchmarks.md ("U-Net"), docs/decisions.md.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ml4paleo.enums import CLASS_NAMES
from ml4paleo.errors import InputError
from ml4paleo.models._base import UNET_CONFIG_FILE, labels_from_proba
from ml4paleo.models._unet_data import Patches, plane_pieces, read_mirrored, robust_range
from ml4paleo.models._unet_net import UNet, fused, receptive_radius
from ml4paleo.planes import SliceRef
from ml4paleo.progress import ProgressCallback, no_progress

__all__ = ["AUGMENTATIONS", "DEFAULTS", "FOCUS_WEIGHT", "NETWORK_SHAPE", "UNetSegmenter", "WARM_LR"]

DEFAULTS: dict[str, Any] = {
    "width": 8, "depth": 2, "context": 1, "dilation": 2,
    "epochs": 40, "steps_per_epoch": 8, "batch_size": 8, "patch": 96,
    "lr": 1e-2, "weight_decay": 1e-4, "patience": 8,
    "augment": (),
}
"""Hyper-parameters (why these: docs/decisions.md, "U-Net"). ``context``: slices on each side of the
predicted one given as channels (0: 2D); ``dilation``: of the coarsest level's convolutions (a
wider view at no extra work); an epoch is ``steps_per_epoch`` batches of
``batch_size`` random ``patch``^2 crops centred near a painted voxel."""
AUGMENTATIONS = ("flip", "rot90", "intensity")
"""``flip``: mirror x and the order of the context slices; ``rot90``: quarter turns in (y, x);
``intensity``: grey values scaled by U(0.8, 1.2) and shifted by U(-0.2, 0.2) (normalised units).
None by default: a quarter turn or a mirror changes the direction of lamellae, which is what
tells bone from matrix where only the grain's orientation differs (docs/decisions.md, "U-Net")."""
TILE = 512
"""Inference cuts a region into tiles of at most TILE x TILE output voxels (plus the margin)."""
BATCH_PIXELS = {"cpu": 1 << 19, "cuda": 1 << 24}
"""Input voxels per inference batch (slices of a tile batched up to this): bounds memory."""
FORMAT = 2
"""Version of ``unet.json``: 1 (no ``format`` key) trained on z slices only; 2 adds painted
XZ/YZ planes to training. Both load; a later one is refused with a clear error."""
WEIGHTS_FILE = "unet.pt"
CONFIG_FILE = UNET_CONFIG_FILE
STAGE = "training the U-Net"
NETWORK_SHAPE = ("width", "depth", "context", "dilation")
SAVED_BEFORE = {"dilation": 1}
"""The network a saved ``unet.json`` meant for a parameter added since it was written (whatever
:data:`DEFAULTS` says now: a dilation changes no weight's shape, so a wrong one would load)."""
"""The parameters two U-Nets must share for one to start from the other's weights."""
FOCUS_WEIGHT = 20.0
"""Loss weight of a focus voxel (the newest strokes of a warm start) against 1 for every other
painted voxel (why 20: docs/decisions.md, "The U-Net in the loop")."""
WARM_LR = 0.1
"""A warm start's learning rate, as a fraction of ``lr``: a fresh optimiser moves every weight by
about its rate in its first steps, whatever the gradient; at 0.3 that jolt and the drift after it
cost more than a dab of a few voxels taught, and at 0.1 the dab is still learnt in the first epoch
(docs/decisions.md, "The warm start's learning rate")."""
SETTLE_MARGIN = 0.02
"""A fit without held-out slices keeps an earlier epoch's weights over the last only when they fit
the painted voxels better by more than this mean Dice over classes: on a tie the painted voxels
cannot tell (strokes saturate; the loss alone chose a less trained epoch that painted unpainted
matrix as structure in ``tests/models/test_unet.py``), and a broken last epoch is far below."""
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
"""What a training's ``max_seconds`` is counted on."""


def resolve_device(device: str) -> torch.device:
    """``auto`` (CUDA when PyTorch sees a GPU, else the CPU), ``cpu`` or ``cuda``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise InputError("device 'cuda' was requested but PyTorch sees no CUDA GPU here; use 'auto' or 'cpu'")
        return torch.device("cuda")
    raise InputError(f"device must be one of auto, cpu, cuda; got {device!r}")


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's generators and use deterministic algorithms inside, restoring both after."""
    devices = [torch.cuda.current_device()] if device.type == "cuda" else []
    det, warn = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(det, warn_only=warn)


def _dice(confusion: np.ndarray) -> float:
    """Mean over classes of the Dice of each class that is painted or predicted."""
    tp = np.diag(confusion).astype(np.float64)
    denom = confusion.sum(0) + confusion.sum(1)
    return float(np.mean(2 * tp[denom > 0] / denom[denom > 0])) if (denom > 0).any() else 0.0


class UNetSegmenter:
    """A small 2D/2.5D U-Net over z slices, fitted on sparse annotations (0 = unlabeled).

    Parameters are those of :data:`DEFAULTS`; ``n_jobs``: torch threads (None: torch's
    default). After :meth:`fit`: ``norm`` (grey values mapped to -1..1), ``curve`` (one entry
    per epoch: epoch, seconds, train_loss and, with held-out slices, heldout_dice and
    heldout_loss) and
    ``best_epochs`` (the epoch whose weights were kept; all epochs without held-out slices, or
    when they are only watched). ``heldout_curves``: set by whoever trained the leave-one-slice-out
    folds (the training pipeline), one ``{"heldout": [z...], "curve": [...]}`` per fold, saved
    with the model so that the models page can draw how held-out Dice grew with the epochs.
    """

    kind = "unet"
    feature_settings = None  # not a filter-bank model: callers ask it for regions

    def __init__(self, classes: Sequence[str] = CLASS_NAMES, *, n_jobs: int | None = None,
                 tile: int = TILE, **params: Any) -> None:
        classes = tuple(str(c) for c in classes)
        if len(classes) < 2 or len(set(classes)) != len(classes) or any(not c.strip() for c in classes):
            raise InputError(f"classes must be at least two distinct non-empty names; got {list(classes)}")
        if len(classes) > 255:
            raise InputError(f"at most 255 classes fit a uint8 label volume; got {len(classes)}")
        unknown = sorted(set(params) - set(DEFAULTS))
        if unknown:
            raise InputError(f"unknown U-Net parameter(s) {unknown}; known: {', '.join(DEFAULTS)}")
        p = {**DEFAULTS, **params}
        for name in ("width", "depth", "dilation", "epochs", "steps_per_epoch", "batch_size", "patch", "patience"):
            if isinstance(p[name], bool) or not isinstance(p[name], (int, np.integer)) or p[name] < 1:
                raise InputError(f"{name} must be a positive integer; got {p[name]!r}")
        if isinstance(p["context"], bool) or not isinstance(p["context"], (int, np.integer)) or p["context"] < 0:
            raise InputError(f"context must be a number of slices >= 0; got {p['context']!r}")
        bad = sorted(set(p["augment"]) - set(AUGMENTATIONS))
        if bad:
            raise InputError(f"augment must be a subset of {', '.join(AUGMENTATIONS)}; got {bad}")
        p["augment"] = [a for a in AUGMENTATIONS if a in p["augment"]]
        if p["patch"] % 2 ** p["depth"]:
            raise InputError(f"patch must be a multiple of 2**depth = {2 ** p['depth']}; got {p['patch']}")
        self.classes = classes
        self.params = {k: (int(v) if isinstance(v, (int, np.integer)) else v) for k, v in p.items()}
        self.tile = int(tile)
        self.n_jobs = n_jobs
        self.seed = 0
        self.norm: tuple[float, float] | None = None
        self.voxel_size: tuple[float, ...] = (1.0, 1.0, 1.0)
        self.curve: list[dict[str, Any]] = []
        self.best_epochs: int | None = None
        self.warm_start = False
        """Whether the last fit started from another model's weights (``init``)."""
        self.heldout_curves: list[dict[str, Any]] = []
        self.fit_check: dict[str, Any] = {}
        """After a fit without held-out slices: the kept ``epoch``, its Dice over classes on the
        painted voxels in eval mode (``painted_dice``) and the last epoch's (``last_epoch``,
        ``last_dice``); see :meth:`_settle`."""
        self.metadata: dict[str, Any] = {}
        self.validation: dict[str, Any] = {}
        self.device = torch.device("cpu")
        self.net: UNet | None = None
        self._infer: UNet | None = None

    # -- geometry ---------------------------------------------------------------------------
    @property
    def align(self) -> int:
        """Tiles start on multiples of this (the poolings' grid), relative to the volume."""
        return 2 ** self.params["depth"]

    @property
    def margin(self) -> int:
        """The xy halo a tile reads on each side: the receptive radius, rounded up to ``align``."""
        return -(-receptive_radius(self.params["depth"], self.params["dilation"]) // self.align) * self.align

    @property
    def halo(self) -> tuple[int, int, int]:
        """Voxels beyond a region that its prediction reads, per axis (z, y, x)."""
        return (self.params["context"], self.margin, self.margin)

    def _normalise(self, data: np.ndarray) -> np.ndarray:
        lo, hi = self.norm  # type: ignore[misc]
        return ((data.astype(np.float32) - np.float32((lo + hi) / 2)) * np.float32(2 / (hi - lo))).astype(np.float32)

    def _stack(self, array: Any, z: int) -> np.ndarray:
        """(C, Y, X) normalised slices z-context..z+context, mirrored beyond the volume."""
        c = self.params["context"]
        return self._normalise(read_mirrored(array, (z - c, 0, 0), (z + c + 1, *array.shape[1:])))

    # -- training ---------------------------------------------------------------------------
    def _check_masks(self, masks: Mapping[Any, np.ndarray], shape: Sequence[int], name: str) -> dict[SliceRef, np.ndarray]:
        """Masks by plane (an int is a z slice), checked; as class indices, -1 unlabeled."""
        K = len(self.classes)
        out = {}
        for key, mask in masks.items():
            ref = SliceRef.of(key)
            if not ref.index < shape[ref.dim]:
                raise InputError(f"{name}: slice {ref.name} is not a slice index in 0..{shape[ref.dim] - 1} "
                                 f"along {ref.axis}")
            mask = np.asarray(mask)
            if mask.shape != ref.plane_shape(shape):
                raise InputError(f"{name}: slice {ref.name} has shape {mask.shape}; the volume's planes across "
                                 f"{ref.axis} are {ref.plane_shape(shape)}")
            if mask.dtype.kind not in "iub" or (mask.size and (mask.min() < 0 or mask.max() > K)):
                raise InputError(f"{name}: slice {ref.name} must hold values 0 (unlabeled) .. {K}; got {mask.dtype} "
                                 f"{mask.min() if mask.size else ''}..{mask.max() if mask.size else ''}")
            out[ref] = mask.astype(np.int64) - 1
        return out

    def _pieces(self, array: Any, train: Mapping[SliceRef, np.ndarray],
                weights: Mapping[SliceRef, np.ndarray] | None = None) -> tuple[list[np.ndarray], ...]:
        """The normalised input stacks and label images the crops are drawn from: each painted z
        slice whole, and each painted XZ/YZ plane as bands of the z slices it crosses, labeled
        on the plane's line only (the loss ignores the rest): the network always predicts z
        slices, so a plane teaches it in the geometry it is used in. With ``weights`` (per plane,
        the loss weight of each painted voxel), a third list: the weights cut the same way."""
        images, labels, cut = [], [], []
        c, half = self.params["context"], self.params["patch"]
        for ref, lab in train.items():
            if ref.axis == "z":
                images.append(self._stack(array, ref.index))
                labels.append(lab)
                if weights is not None:
                    cut.append(weights[ref])
                continue
            for z, (y0, y1, x0, x1), band in plane_pieces(lab, ref.dim, ref.index, array.shape[1:], half):
                images.append(self._normalise(read_mirrored(array, (z - c, y0, x0), (z + c + 1, y1, x1))))
                labels.append(band)
            if weights is not None:  # the weights are >= 0 exactly where painted: the same rows and bands
                w = np.where(lab >= 0, weights[ref], -1).astype(np.float32)
                cut += [band for _, _, band in plane_pieces(w, ref.dim, ref.index, array.shape[1:], half)]
        return (images, labels) + ((cut,) if weights is not None else ())

    def _focus_weights(self, train: Mapping[SliceRef, np.ndarray], focus: Mapping[Any, np.ndarray] | None,
                       weight: float) -> dict[SliceRef, np.ndarray] | None:
        """Per trained plane, the loss weight of each voxel: ``weight`` on the painted voxels of
        ``focus`` (0/1..K masks by plane, like the annotations), 1 elsewhere; None without focus."""
        if not focus:
            return None
        out = {ref: np.ones(lab.shape, np.float32) for ref, lab in train.items()}
        for key, mask in focus.items():
            ref = SliceRef.of(key)
            mask = np.asarray(mask)
            if ref not in out or mask.shape != out[ref].shape:
                raise InputError(f"focus: slice {ref.name} is not a trained plane of the same shape")
            out[ref][(mask > 0) & (train[ref] >= 0)] = weight
        return out

    def fit(self, array: Any, annotations: Mapping[int, np.ndarray], *, voxel_size: Sequence[float] = (1, 1, 1),
            heldout: Mapping[int, np.ndarray] | None = None, max_seconds: float | None = None, clock: str = "wall",
            seed: int = 0,
            device: str = "auto", progress: ProgressCallback | None = None,
            keep_best: bool = True, init: "UNetSegmenter | None" = None,
            focus: Mapping[Any, np.ndarray] | None = None, focus_weight: float | None = None) -> "UNetSegmenter":
        """Train on the painted voxels of ``annotations`` (slice z -> (y, x) mask, 0 unlabeled,
        1..K class index + 1) of ``array`` (z, y, x). With ``heldout`` (masks of slices not
        trained on), keep the weights of the epoch with the best held-out Dice and stop after
        ``patience`` epochs without improvement; stop when ``max_seconds`` have passed, by the wall
        clock or, with ``clock="cpu"``, in this process's CPU time (what a budget of CPU means on a
        machine others load: the same training then stops after about the same number of steps).
        ``keep_best=False`` only watches the held-out slices (their Dice and loss enter
        ``curve``; every epoch runs and the last weights stay): for a fold scored on those very
        slices afterwards, choosing its epoch by them would flatter its score.

        ``init``: a fitted U-Net of the same classes and network (width, depth, context) to start
        from (its weights and normalisation) instead of random weights: a warm start that
        fine-tunes on the grown annotations in a fraction of a fresh fit's time. ``focus``:
        masks (like ``annotations``) of the newest strokes: their voxels weigh ``focus_weight``
        (default ``FOCUS_WEIGHT``) in the loss and ``FOCUS_SHARE`` of the crops are centred on them, so that a dab of a few
        voxels moves the network around it (docs/decisions.md, "The U-Net in the loop")."""
        progress = progress or no_progress
        if len(array.shape) != 3:
            raise InputError(f"array must be a 3D volume (z, y, x); got shape {tuple(array.shape)}")
        dev = resolve_device(device)
        train = self._check_masks(annotations, array.shape, "annotations")
        held = {ref: m for ref, m in self._check_masks(heldout or {}, array.shape, "heldout").items() if (m >= 0).any()}
        if set(train) & set(held):
            raise InputError(f"slices {[r.name for r in sorted(set(train) & set(held))]} are both trained on and held out")
        if any(ref.axis != "z" for ref in held):
            raise InputError("heldout: only z slices can be watched during training")
        held = {ref.index: m for ref, m in held.items()}
        painted = np.zeros(len(self.classes) + 1, np.int64)
        for lab in train.values():
            painted += np.bincount(lab.ravel() + 1, minlength=len(painted))
        missing = [c for k, c in enumerate(self.classes) if painted[k + 1] == 0]
        if missing:
            raise InputError(f"no labeled voxel for class(es) {missing}: label at least one voxel of each class")
        if max_seconds is not None and max_seconds <= 0:
            raise InputError(f"max_seconds must be positive or None; got {max_seconds!r}")
        if clock not in CLOCKS:
            raise InputError(f"clock must be one of {', '.join(CLOCKS)}; got {clock!r}")
        budget_clock = CLOCKS[clock]
        p = self.params
        self._check_init(init)
        weights = self._focus_weights(train, focus, float(FOCUS_WEIGHT if focus_weight is None else focus_weight))
        self.seed, self.voxel_size, self.warm_start = int(seed), tuple(float(v) for v in voxel_size), init is not None
        self.fit_check = {}
        self.norm = init.norm if init is not None else robust_range(array)
        self._apply_threads()
        t0, b0 = time.perf_counter(), budget_clock()
        with _seeded(self.seed, dev):
            net = UNet(2 * p["context"] + 1, len(self.classes), p["width"], p["depth"], p["dilation"])
            if init is not None:
                net.load_state_dict({k: v.detach().cpu() for k, v in init.net.state_dict().items()})  # type: ignore[union-attr]
            net = net.to(dev, memory_format=torch.channels_last)
            images, labels, *cut = self._pieces(array, train, weights)
            patches = Patches(images, labels, p["patch"], self.align, p["augment"], np.random.default_rng(self.seed),
                              weights=cut[0] if cut else None)
            held_stacks = {z: self._stack(array, z) for z in held}
            opt = torch.optim.AdamW(net.parameters(), lr=p["lr"] * (WARM_LR if init is not None else 1.0),
                                    weight_decay=p["weight_decay"])
            loss_fn = nn.CrossEntropyLoss(ignore_index=-1)
            weighted = nn.CrossEntropyLoss(ignore_index=-1, reduction="none")
            self.curve, best, best_state, stale = [], None, None, 0
            calm: tuple[float, int, dict[str, Any]] | None = None  # (train loss, epoch, weights) of the calmest epoch
            earlier = None
            total = p["epochs"] * p["steps_per_epoch"]
            progress(0, total, STAGE)
            out_of_time = False
            for epoch in range(1, p["epochs"] + 1):
                net.train()
                losses = []
                for step in range(p["steps_per_epoch"]):
                    x, y, *w = patches.batch(p["batch_size"])
                    opt.zero_grad(set_to_none=True)
                    x = torch.from_numpy(x).to(dev).contiguous(memory_format=torch.channels_last)
                    if w:  # the newest strokes weigh more: a mean over the painted voxels' weights
                        wt = torch.from_numpy(w[0]).to(dev)
                        loss = (weighted(net(x), torch.from_numpy(y).to(dev)) * wt).sum() / wt.sum().clamp(min=1.0)
                    else:
                        loss = loss_fn(net(x), torch.from_numpy(y).to(dev))
                    loss.backward()
                    opt.step()
                    losses.append(float(loss.detach()))
                    progress((epoch - 1) * p["steps_per_epoch"] + step + 1, total, STAGE)
                    if max_seconds is not None and budget_clock() - b0 > max_seconds:
                        out_of_time = True
                        break
                entry: dict[str, Any] = {"epoch": epoch, "seconds": 0.0, "train_loss": round(float(np.mean(losses)), 5)}
                if held:
                    net.eval()
                    held_dice, held_loss = self._heldout_scores(net, held_stacks, held, dev)
                    entry["heldout_dice"], entry["heldout_loss"] = round(held_dice, 5), round(held_loss, 5)
                    score = (round(held_dice, 4), -held_loss)  # Dice first; on painted strokes it often saturates
                    if keep_best and (best is None or score > best):
                        best, stale = score, 0
                        best_state = copy.deepcopy(net.state_dict())
                        self.best_epochs = epoch
                    elif keep_best:
                        stale += 1
                if not (held and keep_best):
                    earlier = calm  # the calmest epoch before this one: the alternative when this one is the last
                    if calm is None or entry["train_loss"] < calm[0]:
                        calm = (entry["train_loss"], epoch, copy.deepcopy(net.state_dict()))
                entry["seconds"] = round(time.perf_counter() - t0, 3)
                self.curve.append(entry)
                if out_of_time or (held and keep_best and stale >= p["patience"]):
                    break
            if best_state is not None:
                net.load_state_dict(best_state)
            else:
                self.best_epochs = self._settle(net, calm if calm is None or calm[1] < len(self.curve) else earlier,
                                                images, labels, dev)
        self.net, self.device, self._infer = net.eval(), dev, None
        progress(total, total, STAGE)
        return self

    def _settle(self, net: UNet, calm: tuple[float, int, dict[str, Any]] | None, images: list[np.ndarray],
                labels: list[np.ndarray], dev: torch.device) -> int:
        """The epoch whose weights a fit without held-out slices keeps, ``net`` left holding them:
        the last epoch's, unless ``calm``, the calmest earlier epoch's (the lowest train loss before
        the last: a spike in the last steps leaves the last epoch's mean low), fits the painted
        voxels better in eval mode by more than ``SETTLE_MARGIN`` Dice. Why: at the full rate
        Adam's steps spike now and then once the loss is tiny, and such an epoch's weights can
        predict no structure anywhere, painted voxels included; a fit stopped by a
        budget ends wherever the clock says; checking the kept weights on what they were trained
        on cannot flatter a held-out score (docs/decisions.md, "The U-Net's final fit").
        ``self.fit_check`` records both epochs' Dice on the painted voxels and the one kept."""
        last = len(self.curve)
        net.eval()
        stacks, held = dict(enumerate(images)), dict(enumerate(labels))
        last_dice, _ = self._heldout_scores(net, stacks, held, dev)
        self.fit_check = {"epoch": last, "painted_dice": round(last_dice, 5), "last_epoch": last,
                          "last_dice": round(last_dice, 5)}
        if calm is None:
            return last
        state = copy.deepcopy(net.state_dict())
        net.load_state_dict(calm[2])
        calm_dice, _ = self._heldout_scores(net, stacks, held, dev)
        if calm_dice > last_dice + SETTLE_MARGIN:
            self.fit_check.update(epoch=calm[1], painted_dice=round(calm_dice, 5))
            return calm[1]
        net.load_state_dict(state)
        return last

    def _check_init(self, init: "UNetSegmenter | None") -> None:
        """Raise :class:`InputError` unless ``init`` (if any) is a fitted U-Net whose weights fit
        this one: the same classes, width, depth and context."""
        if init is None:
            return
        if not isinstance(init, UNetSegmenter) or init.net is None or init.norm is None:
            raise InputError("init must be a fitted U-Net to start from")
        same = NETWORK_SHAPE
        if init.classes != self.classes or any(init.params[k] != self.params[k] for k in same):
            raise InputError(f"init has classes {list(init.classes)} and network "
                             f"{ {k: init.params[k] for k in same} }; this U-Net needs {list(self.classes)} and "
                             f"{ {k: self.params[k] for k in same} } to start from its weights")

    def _heldout_scores(self, net: UNet, stacks: dict[int, np.ndarray], held: dict[int, np.ndarray],
                        dev: torch.device) -> tuple[float, float]:
        """Mean Dice over classes and mean cross-entropy, on the painted voxels of ``held``."""
        K = len(self.classes)
        confusion = np.zeros((K, K), np.int64)
        nll, n = 0.0, 0
        for z, stack in stacks.items():
            C = stack.shape[0]
            proba = self._run_tiles(net, lambda lo, hi, s=stack: read_mirrored(s, (0, *lo), (C, *hi)),
                                    stack.shape[1:], dev, normalise=False)[0]
            lab = held[z]
            sel = lab >= 0
            np.add.at(confusion, (lab[sel], proba.argmax(-1)[sel]), 1)
            p_true = np.take_along_axis(proba[sel], lab[sel][:, None], axis=1)
            nll, n = nll - float(np.log(np.maximum(p_true, 1e-7)).sum()), n + int(sel.sum())
        return _dice(confusion), nll / max(n, 1)

    # -- inference --------------------------------------------------------------------------
    def _network(self) -> UNet:
        if self.net is None:
            raise InputError("the U-Net is not trained: call fit (or load a model folder) first")
        if self._infer is None:
            self._infer = fused(self.net).to(memory_format=torch.channels_last)
        return self._infer

    def _apply_threads(self) -> None:
        if self.n_jobs is not None and torch.get_num_threads() != self.n_jobs:
            torch.set_num_threads(self.n_jobs)

    def set_n_jobs(self, n: int) -> None:
        """Threads torch may use in this process (1 inside Dask tasks, so tasks x threads <= cores)."""
        self.n_jobs = max(1, int(n))
        self._apply_threads()

    def _run_tiles(self, net: UNet, read, shape_yx: Sequence[int], dev: torch.device, origin=(0, 0),
                   normalise: bool = True) -> np.ndarray:
        """(n, y, x, K) probabilities of an xy extent ``shape_yx`` at global ``origin``:
        ``read(start, stop)`` returns the (C + n - 1, ...) input stack over global yx bounds
        (which may reach beyond the volume). Tiles of ``self.tile`` with an aligned margin."""
        A, m = self.align, self.margin
        out = None
        for y0 in range(0, shape_yx[0], self.tile):
            for x0 in range(0, shape_yx[1], self.tile):
                y1, x1 = min(y0 + self.tile, shape_yx[0]), min(x0 + self.tile, shape_yx[1])
                gy0, gx0, gy1, gx1 = origin[0] + y0, origin[1] + x0, origin[0] + y1, origin[1] + x1
                iy0, ix0 = (gy0 - m) // A * A, (gx0 - m) // A * A
                iy1, ix1 = -(-(gy1 + m) // A) * A, -(-(gx1 + m) // A) * A
                data = read((iy0, ix0), (iy1, ix1))
                if normalise:
                    data = self._normalise(data)
                C = 2 * self.params["context"] + 1
                n = data.shape[0] - C + 1
                if out is None:
                    out = np.empty((n, shape_yx[0], shape_yx[1], len(self.classes)), np.float32)
                windows = np.lib.stride_tricks.sliding_window_view(data, C, axis=0)  # (n, h, w, C)
                per = max(1, BATCH_PIXELS[dev.type] // (data.shape[1] * data.shape[2] * C))
                for b0 in range(0, n, per):
                    # NHWC in memory = torch's channels_last, measured 1.3-1.6x faster on the CPU
                    x = torch.from_numpy(np.array(windows[b0:b0 + per], order="C")).permute(0, 3, 1, 2).to(dev)
                    with torch.inference_mode():
                        proba = F.softmax(net(x), dim=1)[:, :, gy0 - iy0:gy1 - iy0, gx0 - ix0:gx1 - ix0]
                    out[b0:b0 + per, y0:y1, x0:x1] = proba.permute(0, 2, 3, 1).cpu().numpy()
        return out  # type: ignore[return-value]

    def predict_region(self, array: Any, start: Sequence[int], stop: Sequence[int]) -> np.ndarray:
        """(z, y, x, K) float32 class probabilities of region ``start:stop`` of ``array`` (zarr
        or numpy, axes z, y, x). Reads :attr:`halo` around it (mirrored beyond the volume) and
        predicts tile by tile; equal to whole-slice inference up to floating-point rounding."""
        net = self._network()
        start, stop = tuple(int(s) for s in start), tuple(int(e) for e in stop)
        if len(start) != 3 or len(stop) != 3 or any(not 0 <= s < e <= n for s, e, n in zip(start, stop, array.shape)):
            raise InputError(f"region {start}:{stop} is not a non-empty region of the volume {tuple(array.shape)}")
        self._apply_threads()
        c = self.params["context"]
        per = max(1, BATCH_PIXELS[self.device.type] // (min(self.tile, stop[1] - start[1]) * min(self.tile, stop[2] - start[2])))
        parts = []
        for z0 in range(start[0], stop[0], per):  # z in batches too: memory bounded by the tile
            z1 = min(z0 + per, stop[0])
            parts.append(self._run_tiles(
                net, lambda lo, hi, z0=z0, z1=z1: read_mirrored(array, (z0 - c, *lo), (z1 + c, *hi)),
                (stop[1] - start[1], stop[2] - start[2]), self.device, origin=start[1:]))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def predict_proba_slice(self, array: Any, z: int) -> np.ndarray:
        """(y, x, K) class probabilities of slice ``z``."""
        return self.predict_region(array, (z, 0, 0), (z + 1, *array.shape[1:]))[0]

    def predict_slice(self, array: Any, z: int) -> np.ndarray:
        """(y, x) uint8 class indices of slice ``z``."""
        return labels_from_proba(self.predict_proba_slice(array, z))

    # -- persistence ------------------------------------------------------------------------
    def to(self, device: str) -> "UNetSegmenter":
        """Move the weights to ``device`` (auto, cpu, cuda) for inference."""
        self.device = resolve_device(device)
        if self.net is not None:
            self.net = self.net.to(self.device)
        self._infer = None
        return self

    def describe(self) -> dict[str, Any]:
        """What metadata.json records of this model (beside the pipeline's own entries)."""
        return {"kind": self.kind, "classes": list(self.classes), "params": self.params, "seed": self.seed,
                "halo": list(self.halo), "best_epochs": self.best_epochs, "warm_start": self.warm_start,
                "fit_check": self.fit_check}

    def _config(self) -> dict[str, Any]:
        return {"format": FORMAT, "kind": self.kind, "classes": list(self.classes), "params": self.params,
                "seed": self.seed, "norm": list(self.norm) if self.norm else None, "voxel_size": list(self.voxel_size),
                "halo": list(self.halo), "best_epochs": self.best_epochs, "warm_start": self.warm_start,
                "fit_check": self.fit_check, "curve": self.curve,
                "heldout_curves": self.heldout_curves, "torch_version": torch.__version__}

    def _restore(self, config: Mapping[str, Any], state: Mapping[str, Any], device: str) -> None:
        self.seed = int(config.get("seed", 0))
        self.norm = tuple(config["norm"]) if config.get("norm") else None  # type: ignore[assignment]
        self.voxel_size = tuple(config.get("voxel_size", (1.0, 1.0, 1.0)))
        self.curve, self.best_epochs = list(config.get("curve", [])), config.get("best_epochs")
        self.warm_start = bool(config.get("warm_start", False))
        self.fit_check = dict(config.get("fit_check") or {})
        self.heldout_curves = list(config.get("heldout_curves", []))
        p = self.params
        net = UNet(2 * p["context"] + 1, len(self.classes), p["width"], p["depth"], p["dilation"])
        net.load_state_dict(state)
        self.net = net.eval()
        self.to(device)

    def save_files(self, folder: str | Path) -> None:
        """Write the weights (``unet.pt``, a plain torch state dict) and ``unet.json``
        (hyper-parameters, normalisation, training curve) into the existing ``folder``."""
        if self.net is None:
            raise InputError("the U-Net is not trained: call fit first")
        folder = Path(folder)
        torch.save({k: v.detach().cpu() for k, v in self.net.state_dict().items()}, folder / WEIGHTS_FILE)
        (folder / CONFIG_FILE).write_text(json.dumps(self._config(), indent=2))

    @classmethod
    def load_files(cls, folder: str | Path, metadata: Mapping[str, Any] | None = None, *,
                   device: str = "cpu") -> "UNetSegmenter":
        """The model saved by :meth:`save_files` in ``folder``, on the CPU unless ``device`` says
        (a missing file raises FileNotFoundError, which ``load_model`` reports as incomplete)."""
        folder = Path(folder)
        try:
            config = json.loads((folder / CONFIG_FILE).read_text())
            version = config.get("format", 1)
            if not isinstance(version, int) or version > FORMAT:
                raise InputError(f"{folder} holds a U-Net saved in format {version!r}; this ml4paleo reads formats "
                                 f"1..{FORMAT}: update ml4paleo or retrain the model")
            model = cls(config["classes"], **{**SAVED_BEFORE, **config["params"]})
            state = torch.load(folder / WEIGHTS_FILE, map_location="cpu", weights_only=True)
            model._restore(config, state, device)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise InputError(f"{folder} does not hold a valid U-Net: {exc}") from exc
        model.metadata = dict(metadata or {})
        return model

    def __getstate__(self) -> dict[str, Any]:
        """Picklable for Dask and process pools: config and weights as numpy, restored on the CPU."""
        state = {k: v.detach().cpu().numpy() for k, v in self.net.state_dict().items()} if self.net is not None else None
        return {"config": self._config(), "state": state, "tile": self.tile, "n_jobs": self.n_jobs,
                "metadata": self.metadata, "validation": self.validation}

    def __setstate__(self, data: dict[str, Any]) -> None:
        config = data["config"]
        self.__init__(config["classes"], n_jobs=data["n_jobs"], tile=data["tile"], **config["params"])
        self.metadata, self.validation = data["metadata"], data["validation"]
        if data["state"] is not None:
            self._restore(config, {k: torch.from_numpy(v) for k, v in data["state"].items()}, "cpu")
        else:
            self.seed, self.curve, self.best_epochs = config["seed"], config["curve"], config["best_epochs"]
            self.heldout_curves = list(config.get("heldout_curves", []))
