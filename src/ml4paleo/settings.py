"""One settings object for the web app, the runners and ``ml4paleo serve``.

Values come from, in order: the defaults below, then ``ML4PALEO_*`` environment variables,
then explicit keyword overrides (command-line options, tests). The object is passed as an
argument (``create_app(settings)``, ``Runner(settings, ...)``); nothing reads it from a global.
``to_env()`` writes it back as environment variables so that child processes started by
``ml4paleo serve`` see exactly the same settings.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from ml4paleo.errors import InputError

ENV_PREFIX = "ML4PALEO_"
DATABASE_FILE = "ml4paleo.sqlite3"
LOCAL_SCHEDULER = "local"
"""The scheduler value for this machine's cores (the pipelines pick threads or processes)."""
"""The SQLite job store's file in the data folder (when ``database_url`` is empty)."""
AUTH_MODES = ("", "accounts")
"""Values of the ``auth`` setting: no accounts (one person, optional shared token), or accounts."""


@dataclass(frozen=True)
class Settings:
    """Every knob of the job service, each with its environment variable (``ML4PALEO_<NAME>``)."""

    data: Path = Path("./data")
    """Folder holding the job database (SQLite) and every job's files (``jobs/<job_id>/``)."""
    database_url: str = ""
    """SQLAlchemy URL of the job store; empty means ``sqlite:///<data>/ml4paleo.sqlite3`` (WAL).
    Use PostgreSQL (``postgresql+psycopg://...``) when runners live on several hosts."""
    host: str = "127.0.0.1"
    port: int = 5000
    threads: int = 8
    """Waitress worker threads (uploads and downloads stream, so several run at once)."""
    token: str = ""
    """When set, every route needs it: ``Authorization: Bearer <token>``, the ``X-Ml4paleo-Token``
    header, or the cookie set by ``GET /login?token=<token>``."""
    auth: str = ""
    """``accounts`` turns on user accounts (``ml4paleo user add``): sign-in, jobs private to their
    owner unless shared, per-user API tokens, an audit trail; empty (the default) is a one-person
    install (with ``token`` as its optional single shared secret)."""
    session_hours: float = 12.0
    """How long a sign-in lasts (accounts on); after that the browser signs in again."""
    login_limit: int = 5
    """Wrong passwords for one account from one address in 15 minutes before each further try
    waits (accounts on): 1 s after the last wrong one, then 2, 4 ... up to a minute; answered 429
    until then, the right password too, but never locked for longer. An address gets six times
    as many over all accounts (several members behind it)."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks (comma separated, e.g. ``127.0.0.1,10.0.0.0/8``) of reverse proxies
    whose ``X-Forwarded-For`` (the client's address) and ``X-Forwarded-Proto`` (HTTPS: a Secure
    cookie) are believed; from any other address these headers are ignored."""
    access_log: str = "-"
    """Where ``ml4paleo serve`` writes its request log (one combined-format line per request, plus
    milliseconds): ``-`` stdout, ``off`` nowhere, else a file path (appended)."""
    cors_origins: tuple[str, ...] = ()
    """Origins allowed by CORS (comma separated, ``*`` for any); empty turns CORS off."""
    max_request_bytes: int = 256 * 1024**2
    """Largest request body (one upload chunk); larger gives 413."""
    max_json_bytes: int = 64 * 1024**2
    """Largest JSON body (a painted mask travels as base64 PNG in one); larger gives 413."""
    max_job_bytes: int = 512 * 1024**3
    """Largest total upload of one job; larger gives 413."""
    lease_seconds: float = 60.0
    """A runner renews its claim on a task every third of this; a task whose lease ran out
    (its runner died) is claimed again by another runner."""
    poll_seconds: float = 1.0
    """How often an idle runner looks for work."""
    max_attempts: int = 3
    """How many runners may claim one task (the first and the retries after a crash)."""
    dask_scheduler: str = ""
    """``tcp://host:8786`` runs segmentation on a Dask cluster; empty (or ``local``) runs on this machine."""
    train_features: str = ""
    """Feature settings passed to ``train_model(features=...)`` as JSON; empty uses the default."""
    train_method: str = "auto"
    """``train_model(method=...)`` of the web app's training (auto, forest, context, interpolation,
    boosting, unet)."""
    unet_epochs: int = 0
    """When > 0, the web app's training gives the U-Net exactly this many epochs per fit (and
    ``auto`` scores it): a deterministic budget, whatever the load. 0: the U-Net trains against
    the clock, when asked for by ``train_method`` or when ``auto`` scores it on its own account
    (``auto_unet_seconds``)."""
    auto_unet_seconds: float = 60.0
    """CPU seconds ``train_model(method="auto")`` gives the U-Net (its leave-one-slice-out folds and
    final fit together) when the quick methods leave a class below held-out Dice 0.9
    (:data:`ml4paleo.pipelines.network.NETWORK_BELOW`, or ``BAND_BELOW`` near completed outlines); a
    retrain that carries its scores fine-tunes it for the steps ``WARM_SHARE`` of this buys
    (:func:`ml4paleo.pipelines.network.warm_steps`); 0: ``auto`` never trains it on its own account."""
    preview_triangles: int = 200_000
    """Meshes with more triangles get a simplified copy (about this many) that the browser's 3D
    view loads instead of the full-resolution file; downloads stay full resolution."""
    slice_cache_mb: int = 256
    """Decoded chunks of the scan that the web server keeps for slice switches (MB,
    :mod:`ml4paleo.io.slices`): a row of 64-voxel chunks of a 1024^2 level is 128 MB, so the
    next 63 slices of a view come from memory."""
    neuroglancer_url: str = ""
    """Base URL of a Neuroglancer instance for the viewer's "Open in Neuroglancer" link."""
    import_roots: str = ""
    """Folders on the server's disk (``os.pathsep``-separated: ``/lab/scans:/mnt/ct``) under which a
    scan may be registered where it lies (``ml4paleo job import``, the home page's folder picker):
    read in place, never written; empty: nothing can be registered, only uploaded."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Free-form options for tests and extensions (not read from the environment)."""

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{(Path(self.data) / DATABASE_FILE).resolve()}"

    @property
    def jobs_dir(self) -> Path:
        return Path(self.data) / "jobs"

    @property
    def import_root_paths(self) -> tuple[Path, ...]:
        """The import roots as given (``import_roots`` split on ``os.pathsep``), empty parts dropped."""
        return tuple(Path(part) for part in self.import_roots.split(os.pathsep) if part.strip())

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Defaults, then ``ML4PALEO_*`` variables of ``env`` (default ``os.environ``), then
        ``overrides`` (``None`` values are ignored, so unset CLI options do not override)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = ENV_PREFIX + f.name.upper()
            if f.name != "extra" and env.get(key, "") != "":
                values[f.name] = _parse(f, env[key], key)
        for name, value in overrides.items():
            if name not in {f.name for f in fields(cls)}:
                raise InputError(f"unknown setting {name!r}")
            if value is not None:
                values[name] = value
        settings = cls(**values)
        return settings.replace()  # normalise types of overrides

    @property
    def scheduler(self) -> str:
        """The scheduler the job tasks pass to the pipelines: the setting, else :data:`LOCAL_SCHEDULER`."""
        return self.dask_scheduler or LOCAL_SCHEDULER

    @classmethod
    def env_value(cls, name: str, env: Mapping[str, str] | None = None) -> Any:
        """One setting as :meth:`from_env` would give it (its ``ML4PALEO_*`` variable, parsed,
        else its default), without checking the others: for library code whose keyword default
        is a setting (the pipelines' ``scheduler=None`` is ``env_value("dask_scheduler")``)."""
        by_name = {f.name: f for f in fields(cls) if f.name != "extra"}
        if name not in by_name:
            raise InputError(f"unknown setting {name!r}")
        env = os.environ if env is None else env
        key = ENV_PREFIX + name.upper()
        return _parse(by_name[name], env[key], key) if env.get(key, "") != "" else by_name[name].default

    def replace(self, **changes: Any) -> "Settings":
        """A copy with ``changes``, types normalised and values checked."""
        merged = dataclasses.replace(self, **changes)
        object.__setattr__(merged, "data", Path(merged.data))
        if isinstance(merged.cors_origins, str):
            object.__setattr__(merged, "cors_origins", _split(merged.cors_origins))
        object.__setattr__(merged, "cors_origins", tuple(merged.cors_origins))
        if isinstance(merged.trusted_proxies, str):
            object.__setattr__(merged, "trusted_proxies", _split(merged.trusted_proxies))
        object.__setattr__(merged, "trusted_proxies", tuple(merged.trusted_proxies))
        for proxy in merged.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise InputError(f"setting trusted_proxies: {proxy[:60]!r} is not an address or network") from None
        if merged.auth not in AUTH_MODES:
            raise InputError(f"setting auth must be one of {', '.join(repr(m) for m in AUTH_MODES)}; got {merged.auth!r}")
        if merged.auth and merged.token:
            raise InputError("ML4PALEO_TOKEN is the single-user mode; with ML4PALEO_AUTH=accounts each user makes "
                             "API tokens on the account page instead: unset ML4PALEO_TOKEN")
        for name in ("port", "threads", "max_request_bytes", "max_json_bytes", "max_job_bytes", "max_attempts",
                     "preview_triangles", "login_limit", "slice_cache_mb"):
            if int(getattr(merged, name)) < 1:
                raise InputError(f"setting {name} must be a positive integer; got {getattr(merged, name)!r}")
            object.__setattr__(merged, name, int(getattr(merged, name)))
        if int(merged.unet_epochs) < 0:
            raise InputError(f"setting unet_epochs must be 0 or a positive integer; got {merged.unet_epochs!r}")
        for name in ("lease_seconds", "poll_seconds", "session_hours"):
            if float(getattr(merged, name)) <= 0:
                raise InputError(f"setting {name} must be positive; got {getattr(merged, name)!r}")
            object.__setattr__(merged, name, float(getattr(merged, name)))
        return merged

    def to_env(self) -> dict[str, str]:
        """The settings as ``ML4PALEO_*`` variables (for child processes)."""
        out = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = ",".join(value)
            elif isinstance(value, Path):
                value = str(value.resolve())
            out[ENV_PREFIX + f.name.upper()] = str(value)
        return out


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _parse(f: dataclasses.Field, text: str, key: str) -> Any:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    try:
        if kind.startswith("int"):
            return int(text)
        if kind.startswith("float"):
            return float(text)
        if kind.startswith("tuple"):
            return _split(text)
        if kind.startswith("Path"):
            return Path(text)
        return text
    except ValueError as exc:
        raise InputError(f"environment variable {key}={text!r} is not a valid {kind}") from exc
