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


class OutputExistsError(Ml4PaleoError, FileExistsError):
    """Refusing to overwrite an existing output without ``overwrite=True``."""


class JobNotFound(Ml4PaleoError, LookupError):
    """No job with this id."""


class ArtifactNotFound(Ml4PaleoError, LookupError, FileNotFoundError):
    """A volume, model, segmentation, annotation, mesh or file that should exist does not
    (HTTP 404): no artifact with this id in the job, or nothing readable at this path."""


VolumeNotFoundError = ArtifactNotFound
"""The former name of :class:`ArtifactNotFound`, kept so scripts that catch it still work;
nothing raises it by this name."""


class InvalidTransition(Ml4PaleoError, RuntimeError):
    """The job is not in a state that allows the requested action (HTTP 409)."""


class Cancelled(Ml4PaleoError):
    """Work was cancelled by the user; raised from a progress callback to stop a pipeline."""


class LeaseLost(Cancelled):
    """A runner lost its task: another runner took it over after the lease expired, or the job
    was deleted. Raised into the pipeline (from its progress callback) and when the store refuses
    a step of the task; the runner then drops the task without writing anything more."""


class RunnerStopping(Cancelled):
    """The runner was asked to stop (SIGTERM, Ctrl-C); raised into the pipeline so that its
    task goes back to the queue unharmed (the attempt does not count)."""


class UnsafeArchiveError(InputError):
    """A .zip whose entries would land outside the extraction root (path traversal), or an
    encrypted/nested archive we refuse to open."""


class PayloadTooLarge(InputError):
    """An upload exceeds the per-request or per-job size limit (HTTP 413)."""


class UnsupportedMediaType(InputError):
    """A request body of a Content-Type (or charset) the route does not take (HTTP 415)."""


class NotSignedIn(Ml4PaleoError, PermissionError):
    """Accounts are on and the request carries no valid session, API token or share link
    (HTTP 401); also a wrong user name or password at sign-in (never saying which)."""


class Forbidden(Ml4PaleoError, PermissionError):
    """The user may see the job but not change it (shared read-only), or is not an admin (HTTP
    403). A job the user may not see at all is :class:`JobNotFound` instead: its existence is
    not confirmed."""


class TooManyAttempts(Ml4PaleoError):
    """Too many wrong passwords for this account or from this address (HTTP 429); the
    ``retry_after`` seconds say when to try again."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
