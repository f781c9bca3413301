"""Leave-one-slice-out after the model is saved: the figures of a model trained with ``validate="later"``.

Validation is most of what training costs before a model can segment, and segmentation does not
need its figures. So :func:`ml4paleo.pipelines.train.train_model` with ``validate="later"`` saves
the model at once (``validation.json``: ``"status": "pending"``) and keeps what the validation
needs (feature rows, shape prior, folds: a few MB) as :data:`PENDING_FILE`; :func:`validate_model`
runs the same folds ``validate="now"`` would (the same figures, tested) with
:mod:`ml4paleo.pipelines.scoring`, and warns if another method is clearly better than the one
chosen on quick folds. :func:`start_validation` runs it in a detached, lower-priority process,
beside ``ml4paleo segment``. Imports beyond the standard library are made inside the functions,
so that process lowers its priority before it pays them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Sequence

from ml4paleo.atomic import write_atomically
from ml4paleo.collections_policy import collect_less
from ml4paleo.errors import ArtifactNotFound, InputError
from ml4paleo.progress import ProgressCallback, no_progress

__all__ = ["PENDING_FILE", "save_pending", "start_validation", "validate_model", "validation_status"]

PENDING_FILE = "validation-pending.pkl"
"""The validation's inputs, kept in the model folder until its figures are written."""
NICE = 10
"""Niceness of the background validation: segmentation on the same cores goes first."""


def _lower_priority() -> None:
    """Nice this process, and its scheduling group where Linux groups by session (autogroup):
    the validation runs in a session of its own, and between autogroups a process's own nice
    value does not count, so without the group's nice it took one of the two cores from
    ``segment`` (measured: segment of 8.7 M voxels 9.8 s beside it against 5.7 s alone)."""
    os.nice(NICE)
    try:
        Path("/proc/self/autogroup").write_text(f"{NICE}\n")
    except OSError:  # no autogroup (other systems, or scheduling without it): the nice above is all
        pass


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    write_atomically(path, json.dumps(doc, indent=2))


def save_pending(model_dir: str | Path, ts: Any, names: Sequence[str], folds: Sequence[Sequence[Any]],
                 volume_path: str | Path) -> Path:
    """Keep the training set ``ts`` (without its volume handle), the candidates' ``names`` and
    the ``folds`` beside the saved model, and tag ``validation.json`` with the same token so a
    validation of a model since replaced is dropped."""
    from ml4paleo.models import VALIDATION_FILE

    model_dir = Path(model_dir)
    token = uuid.uuid4().hex
    state = {"ts": dataclasses.replace(ts, array=None), "names": list(names),
             "folds": [list(f) for f in folds], "volume_path": str(volume_path), "token": token}
    write_atomically(model_dir / PENDING_FILE, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
    validation = json.loads((model_dir / VALIDATION_FILE).read_text())
    _write_json(model_dir / VALIDATION_FILE, {**validation, "token": token})
    return model_dir / PENDING_FILE


def validation_status(model_dir: str | Path) -> str:
    """``pending`` while a deferred validation has not written its figures, ``failed`` when it
    could not (the reason is in ``validation.json``'s ``error``), else ``done``."""
    from ml4paleo.models import VALIDATION_FILE, validation_state

    try:
        doc = json.loads((Path(model_dir) / VALIDATION_FILE).read_text())
    except FileNotFoundError:
        raise ArtifactNotFound(f"no trained model at {model_dir}") from None
    return validation_state(doc)


def validate_model(model_dir: str | Path, progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Run the pending leave-one-slice-out of the model in ``model_dir`` and write its figures;
    returns what ``validation.json`` now holds (at once when it was already done)."""
    from ml4paleo.io.omezarr import open_level
    from ml4paleo.models import METADATA_FILE, VALIDATION_FILE
    from ml4paleo.pipelines._candidates import make_candidate
    from ml4paleo.pipelines.scoring import (TIE, choose_method, mean_dice, scarce_class_warnings, score_candidates,
                                            validation_report, validation_warnings)

    model_dir = Path(model_dir)
    progress = progress or no_progress
    if validation_status(model_dir) != "pending":
        return json.loads((model_dir / VALIDATION_FILE).read_text())
    try:
        with (model_dir / PENDING_FILE).open("rb") as f:
            state = pickle.load(f)
    except FileNotFoundError:
        raise InputError(f"the validation of {model_dir} is pending but its inputs ({PENDING_FILE}) are gone: "
                         "train the model again") from None
    ts, names, folds = state["ts"], state["names"], state["folds"]
    ts.array = open_level(state["volume_path"], 0)
    candidates = {n: make_candidate(n) for n in names}
    scored = score_candidates(ts, candidates, folds, progress)
    meta = json.loads((model_dir / METADATA_FILE).read_text())
    chosen, reason = meta["method"], meta.get("method_reason", "")
    warnings = validation_warnings(scored[chosen]["metrics"], len(ts.slices)) \
        + scarce_class_warnings(meta.get("voxels_per_class") or {})
    # a method no fold could score (context with two slices of outlines) is not outscored: it has no score
    if len(names) > 1 and scored[chosen]["metrics"]:
        best, why = choose_method(scored, names)
        if mean_dice(scored[chosen]["metrics"]) < mean_dice(scored[best]["metrics"]) - TIE:
            warnings.append(f"the full validation prefers {best} to {chosen} ({why}): train again with "
                            f"--method {best}")
    report = {**validation_report(scored, chosen, reason, folds, ts.sampling, warnings), "status": "done"}
    current = json.loads((model_dir / VALIDATION_FILE).read_text())
    if current.get("token") != state["token"]:  # the model was trained again meanwhile: these figures are not its
        return current
    meta.update(candidates={n: {"metrics": scored[n]["metrics"], "seconds": scored[n]["seconds"]} for n in names},
                warnings=warnings)
    _write_json(model_dir / METADATA_FILE, meta)
    _write_json(model_dir / VALIDATION_FILE, report)
    (model_dir / PENDING_FILE).unlink(missing_ok=True)
    progress(1.0, 1.0, "validated")
    return report


def start_validation(model_dir: str | Path, log: str | Path | None = None) -> subprocess.Popen:
    """:func:`validate_model` in a detached process at lower priority (it outlives the caller);
    its errors go to ``log`` (default ``<model_dir>/validation.log``)."""
    model_dir = Path(model_dir)
    log = Path(log) if log is not None else model_dir / "validation.log"
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "ml4paleo.pipelines.validate", str(model_dir)],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ml4paleo.pipelines.validate MODEL_DIR``: what :func:`start_validation` runs."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m ml4paleo.pipelines.validate MODEL_DIR", file=sys.stderr)
        return 2
    _lower_priority()
    from ml4paleo.models import VALIDATION_FILE

    try:
        report = validate_model(args[0])
    except Exception as exc:  # noqa: BLE001 - said in the model, where the pages and the user look
        path = Path(args[0]) / VALIDATION_FILE
        _write_json(path, {**json.loads(path.read_text()), "status": "failed", "error": f"{type(exc).__name__}: {exc}"})
        raise
    print(f"validated {args[0]}: {report.get('metrics')}")
    return 0


if __name__ == "__main__":
    collect_less()  # a process of its own that imports, works and exits, as ml4paleo train
    sys.exit(main())
