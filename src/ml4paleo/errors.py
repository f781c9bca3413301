"""One exception hierarchy for the whole package.

Leaves also subclass the builtin a caller would expect, so ``except ValueError`` keeps
working, and the web layer maps each leaf to one HTTP status in a single handler.
"""

from __future__ import annotations


class Ml4PaleoError(Exception):
    """Base of every error ml4paleo raises on purpose (a message meant for the user)."""


class InputError(Ml4PaleoError, ValueError):
    """The user's input (files, parameters, annotations) cannot be used; the message says why."""


class NotALabelMap(InputError):
    """An image volume (a scan) given where a label map (a segmentation) is expected; the CLI
    rewrites the message to name its own options."""


class UnsupportedFileError(InputError):
    """A file is not an image of a kind we read, or is corrupt/truncated."""


class VolumeNotFoundError(Ml4PaleoError, FileNotFoundError):
    """A volume, model or other artifact that should exist on disk does not."""


class OutputExistsError(Ml4PaleoError, FileExistsError):
    """Refusing to overwrite an existing output without ``overwrite=True``."""


class JobNotFound(Ml4PaleoError, LookupError):
    """No job with this id."""


class ArtifactNotFound(Ml4PaleoError, LookupError):
    """No model, segmentation, annotation or mesh with this id in the job."""


class InvalidTransition(Ml4PaleoError, RuntimeError):
    """The job is not in a state that allows the requested action (HTTP 409)."""


class Cancelled(Ml4PaleoError):
    """Work was cancelled by the user; raised from a progress callback to stop a pipeline."""


class UnsafeArchiveError(InputError):
    """A .zip whose entries would land outside the extraction root (path traversal), or an
    encrypted/nested archive we refuse to open."""


class PayloadTooLarge(InputError):
    """An upload exceeds the per-request or per-job size limit (HTTP 413)."""
