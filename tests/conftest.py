"""Shared fixtures: every test builds its own world in ``tmp_path``."""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import numpy as np
import pytest

# auto trains the U-Net (a CPU minute) where the quick methods leave a class below Dice 0.9, as
# they do on many of the suite's tiny volumes: off here (and in the servers the API tests start,
# which inherit the environment); tests/pipelines/test_unet_auto.py turns it on where it tests it
os.environ["ML4PALEO_AUTO_UNET_SECONDS"] = "0"


@pytest.fixture(scope="session")
def snow_tif() -> Path:
    """The real micro-CT scan shipped by ``spam`` (100^3 uint16 X-ray scan of snow).

    Located through the package metadata, without importing ``spam`` (heavy dependencies).
    """
    try:
        dist = importlib.metadata.distribution("spam")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("spam==0.9.1 is not installed (make test installs it)")
    for f in dist.files or []:
        if str(f).endswith("spam/data/snow/snow.tif"):
            return Path(dist.locate_file(f))
    pytest.skip("spam is installed but has no spam/data/snow/snow.tif")


@pytest.fixture(scope="session")
def snow_volume(snow_tif: Path) -> np.ndarray:
    import tifffile

    return tifffile.imread(snow_tif)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A PostgreSQL server for the tests: the database ``ML4PALEO_TEST_DATABASE_URL`` names, else a
    throwaway cluster started for the session (see ``pgserver.py``); skips when there is neither."""
    import os

    import pgserver

    reason = pgserver.unavailable_reason()
    if reason:
        pytest.skip(reason)
    if os.environ.get(pgserver.ENV_VAR):
        yield os.environ[pgserver.ENV_VAR]
        return
    cluster = pgserver.Cluster(pgserver.find_bindir())
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_url_or_none(request) -> str | None:
    """``postgres_url`` where there is one, else None (for tests that fall back to SQLite)."""
    import pgserver

    return None if pgserver.unavailable_reason() else request.getfixturevalue("postgres_url")
