"""Where a job's files live, and the one check every path from a request goes through.

``$ML4PALEO_DATA/jobs/<job_id>/`` holds ``upload/``, ``volume.ome.zarr``, ``histogram.json``,
``annotations/<z>.png`` (``y_0120.png`` / ``x_0080.png`` for the other planes),
``models/<model_id>/``, ``segmentations/<seg_id>/labels.ome.zarr`` and
``segmentations/<seg_id>/meshes/``. :func:`inside` resolves a relative path (symlinks included)
and refuses anything that would leave its root, so ``..``, absolute paths, encoded slashes and
symlinks pointing elsewhere all end as "not found".
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ml4paleo.errors import ArtifactNotFound, InputError, JobNotFound

_ARTIFACT_ID = re.compile(r"^[0-9a-f]{12}$")


def new_job_id() -> str:
    return str(uuid.uuid4())


def new_artifact_id() -> str:
    """Ids of models and segmentations: 48 random bits, unique within a job."""
    return uuid.uuid4().hex[:12]


def check_job_id(job_id: str) -> str:
    """The canonical form of a job id, or :class:`JobNotFound` (a malformed id names no job)."""
    try:
        parsed = uuid.UUID(str(job_id))
    except (ValueError, AttributeError, TypeError):
        raise JobNotFound(f"no job {str(job_id)[:60]!r}") from None
    if str(parsed) != str(job_id).lower():
        raise JobNotFound(f"no job {str(job_id)[:60]!r}")
    return str(parsed)


def check_artifact_id(artifact_id: str, what: str = "segmentation") -> str:
    if not isinstance(artifact_id, str) or not _ARTIFACT_ID.match(artifact_id):
        raise ArtifactNotFound(f"no {what} {str(artifact_id)[:40]!r}")
    return artifact_id


def clean_relative(name: str, *, what: str = "filename") -> PurePosixPath:
    """A user-given relative path (an upload's ``stack/s001.tif``) made safe, or InputError:
    no absolute path, no ``..``, no drive letter or NUL; backslashes count as separators."""
    text = str(name).replace("\\", "/")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts or "\x00" in text or text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        raise InputError(f"{what} {name!r} must be a relative path such as 'stack/s001.tif'")
    if any(p == ".." for p in parts):
        raise InputError(f"{what} {name!r} must not contain '..'")
    if len(text) > 1000 or any(len(p) > 255 for p in parts):
        raise InputError(f"{what} {name[:80]!r}... is too long")
    return PurePosixPath(*parts)


def inside(root: Path, relative: str) -> Path:
    """``root/relative`` resolved, or :class:`ArtifactNotFound` if it would leave ``root``
    (through ``..``, an absolute path or a symlink) or does not exist."""
    try:
        rel = clean_relative(relative, what="path")
    except InputError:
        raise ArtifactNotFound("not found") from None
    base = root.resolve()
    target = (base / rel).resolve()
    if not target.is_relative_to(base) or not target.exists():
        raise ArtifactNotFound("not found")
    return target


PREVIEWS_KEPT = 8
"""Preview folders kept per job: a web request reads its own as soon as it is done."""
DRAFTS_KEPT = 3
"""Draft models kept per job (their folders and task rows): the newest is the overlay's model;
the ones before it may still be read by a preview that began before it was ready."""


@dataclass(frozen=True)
class JobPaths:
    """The folders and files of one job (nothing is created until asked)."""

    root: Path

    @classmethod
    def of(cls, jobs_dir: Path, job_id: str) -> "JobPaths":
        return cls(Path(jobs_dir) / check_job_id(job_id))

    @property
    def upload(self) -> Path:
        return self.root / "upload"

    @property
    def volume(self) -> Path:
        return self.root / "volume.ome.zarr"

    @property
    def histogram(self) -> Path:
        """The cached histogram of the volume's raw values (``jobs.volume_views.volume_histogram``)."""
        return self.root / "histogram.json"

    @property
    def annotations(self) -> Path:
        return self.root / "annotations"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    @property
    def models(self) -> Path:
        return self.root / "models"

    def model(self, model_id: str) -> Path:
        return self.models / check_artifact_id(model_id, "model")

    @property
    def drafts(self) -> Path:
        """Draft models while painting (``<task id>/``) and the painted slices' feature cache
        (``features/``): working files, never listed as models."""
        return self.root / "drafts"

    def draft(self, task_id: int) -> Path:
        return self.drafts / str(int(task_id))

    @property
    def previews(self) -> Path:
        """Predictions of the regions pages show (``<task id>/``) and each view's newest request
        (``view-<id>``): working files of the train runner, read once by the web server."""
        return self.root / "previews"

    def preview(self, task_id: int) -> Path:
        return self.previews / str(int(task_id))

    def segmentation(self, seg_id: str) -> Path:
        return self.root / "segmentations" / check_artifact_id(seg_id)

    def labels(self, seg_id: str) -> Path:
        return self.segmentation(seg_id) / "labels.ome.zarr"

    def meshes(self, seg_id: str) -> Path:
        return self.segmentation(seg_id) / "meshes"

    def objects(self, seg_id: str, task_id: int) -> Path:
        """The objects of a segmentation made by task ``task_id`` (``objects.ome.zarr``,
        ``objects.csv``, ``objects.json``): one folder per run, so a page reading the last
        finished run never sees a run in progress."""
        return self.segmentation(seg_id) / "objects" / str(int(task_id))

    def export(self, seg_id: str, fmt: str) -> Path:
        suffix = {"png-zip": "png.zip", "tiff-zip": "tiff.zip", "tiff": "tif", "zarr-zip": "zarr.zip",
                  "nifti": "nii.gz", "seg-nrrd": "seg.nrrd"}[fmt]
        return self.segmentation(seg_id) / f"labels.{suffix}"

    def upload_file(self, filename: str) -> Path:
        return self.upload / clean_relative(filename)
