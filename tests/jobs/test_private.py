"""The data folder is private (issue 20): what ``ml4paleo user`` and the store create under a usual
umask is owner-only (the SQLite file holds password hashes), and looser modes are named."""

from __future__ import annotations

import os
import stat

from click.testing import CliRunner

from ml4paleo.cli import main
from ml4paleo.jobs.private import create_data_folder, exposed, exposure_warning


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_database_made_by_user_add_is_private_whatever_the_umask(tmp_path):
    data = tmp_path / "data"
    shell_umask = os.umask(0o022)
    try:
        done = CliRunner().invoke(main, ["user", "add", "ada", "--data", str(data)], input="ada-password\n")
        assert done.exit_code == 0, done.output
    finally:
        os.umask(shell_umask)
    database = data / "ml4paleo.sqlite3"
    assert _mode(data) == 0o700 and _mode(database) == 0o600
    assert {_mode(p) for p in data.glob("ml4paleo.sqlite3*")} == {0o600}
    assert exposed(data) == [] and exposure_warning(data) is None


def test_looser_modes_are_named_with_the_fix(tmp_path):
    create_data_folder(tmp_path / "data")
    data = tmp_path / "data"
    assert _mode(data) == 0o700 and _mode(data / "jobs") == 0o700
    (data / "ml4paleo.sqlite3").write_bytes(b"")
    (data / "ml4paleo.sqlite3").chmod(0o644)
    data.chmod(0o750)
    assert exposed(data) == [f"{data} (mode 0750)", f"{data / 'ml4paleo.sqlite3'} (mode 0644)"]
    warning = exposure_warning(data)
    assert "readable by other users" in warning and f"chmod -R go-rwx {data.resolve()}" in warning
