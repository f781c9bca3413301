"""The command line: ``--help`` on every command, and ``convert`` end to end."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

from ml4paleo.cli import main
from ml4paleo.io.omezarr import open_level, read_info


def test_help_lists_commands():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0 and "convert" in result.output


@pytest.mark.parametrize("command", sorted(main.commands))
def test_help_on_every_command(command):
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and command in result.output


def test_entry_point_runs_as_a_program():
    out = subprocess.run([sys.executable, "-m", "ml4paleo.cli", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "ml4paleo" in out.stdout


def test_convert_writes_volume_and_reports(tmp_path, rng):
    vol = rng.integers(0, 4000, (6, 10, 12), dtype=np.uint16)
    (tmp_path / "stack").mkdir()
    for z, img in enumerate(vol):
        tifffile.imwrite(tmp_path / "stack" / f"img{z}.tif", img)
    (tmp_path / "stack" / "notes.txt").write_text("scan notes")
    dst = tmp_path / "v.ome.zarr"
    result = CliRunner().invoke(main, ["convert", str(tmp_path / "stack"), str(dst), "--voxel-size", "2", "1", "1",
                                       "--unit", "mm", "--chunk", "8", "--codec", "blosc-lz4"])
    assert result.exit_code == 0, result.output
    assert "shape (6, 10, 12) uint16" in result.output and "warning: skipped 1 file" in result.output
    np.testing.assert_array_equal(open_level(dst)[:], vol)
    info = read_info(dst)
    assert info.voxel_size == (2.0, 1.0, 1.0) and info.unit == "millimeter" and info.chunks == (6, 8, 8)

    again = CliRunner().invoke(main, ["convert", str(tmp_path / "stack"), str(dst)])
    assert again.exit_code != 0 and "already exists" in again.output and "Traceback" not in again.output


def test_convert_bad_input_is_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(main, ["convert", str(tmp_path / "empty"), str(tmp_path / "v.ome.zarr")])
    assert result.exit_code != 0 and "Error:" in result.output and "empty" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "v.ome.zarr").exists()
