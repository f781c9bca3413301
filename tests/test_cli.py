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
    assert result.exit_code == 2 and "Error:" in result.output and "empty" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "v.ome.zarr").exists()


def test_a_label_map_made_elsewhere_is_converted_with_labels_then_meshed(tmp_path):
    """``convert --labels`` records a label TIFF stack as a segmentation that ``mesh`` accepts;
    without it, ``mesh`` names the CLI options to use (not the Python keyword)."""
    import trimesh

    labels = np.zeros((12, 14, 16), np.uint16)
    labels[2:9, 3:11, 4:12] = 3  # a box, and a second structure
    labels[3:6, 5:8, 13:15] = 7
    (tmp_path / "stack").mkdir()
    for z, img in enumerate(labels):
        tifffile.imwrite(tmp_path / "stack" / f"label_{z:03d}.tif", img)
    dst = tmp_path / "labels.ome.zarr"
    result = CliRunner().invoke(main, ["convert", str(tmp_path / "stack"), str(dst), "--labels",
                                       "--voxel-size", "2", "1", "1", "--unit", "um"])
    assert result.exit_code == 0, result.output
    assert "label map" in result.output
    info = read_info(dst)
    assert info.kind == "labels" and info.dtype == np.uint16 and info.unit == "micrometer"
    np.testing.assert_array_equal(open_level(dst)[:], labels)

    meshes = tmp_path / "meshes"
    result = CliRunner().invoke(main, ["mesh", str(dst), str(meshes), "--format", "stl", "--no-smooth"])
    assert result.exit_code == 0, result.output
    for label in (3, 7):
        stl = meshes / f"label_{label}_micrometer.stl"
        assert stl.is_file()
        mesh = trimesh.load(stl)
        assert mesh.is_watertight and mesh.volume > 0
    box = trimesh.load(meshes / "label_3_micrometer.stl")
    assert box.bounds[1][2] - box.bounds[0][2] == pytest.approx(7 * 2.0, abs=2.0)  # z extent in micrometres
    # (the voxel surface: smoothing moves a box's flat faces out by up to half a voxel, docs/objects.md)

    scan = tmp_path / "scan.ome.zarr"
    assert CliRunner().invoke(main, ["convert", str(tmp_path / "stack"), str(scan)]).exit_code == 0
    refused = CliRunner().invoke(main, ["mesh", str(scan), str(tmp_path / "m2")])
    assert refused.exit_code != 0 and "Traceback" not in refused.output
    assert "--labels" in refused.output and "labels=[" not in refused.output


def test_convert_labels_refuses_float_voxels_and_bad_units(tmp_path):
    (tmp_path / "f").mkdir()
    for z in range(3):
        tifffile.imwrite(tmp_path / "f" / f"s{z}.tif", np.full((4, 4), 0.5, np.float32))
    result = CliRunner().invoke(main, ["convert", str(tmp_path / "f"), str(tmp_path / "l.ome.zarr"), "--labels"])
    assert result.exit_code != 0 and "integer" in result.output and not (tmp_path / "l.ome.zarr").exists()
    result = CliRunner().invoke(main, ["convert", str(tmp_path / "f"), str(tmp_path / "v.ome.zarr"), "--unit", "parsec"])
    assert result.exit_code == 2 and "--unit" in result.output and not (tmp_path / "v.ome.zarr").exists()


def test_train_says_validate_later_and_reads_the_former_background_with_a_warning(tmp_path):
    for folder in ("vol.ome.zarr", "ann", "model"):
        (tmp_path / folder).mkdir()
    args = ["train", str(tmp_path / "vol.ome.zarr"), str(tmp_path / "ann"), str(tmp_path / "model")]
    assert "[later|now]" in CliRunner().invoke(main, ["train", "--help"]).output
    old = CliRunner().invoke(main, [*args, "--validate", "background"])  # stops at the model folder that exists
    assert "--validate background is deprecated, say --validate later" in old.output
    assert old.exit_code != 0 and "already exists" in old.output
    new = CliRunner().invoke(main, [*args, "--validate", "later"])
    assert "deprecated" not in new.output and "already exists" in new.output
    bad = CliRunner().invoke(main, [*args, "--validate", "soon"])
    assert bad.exit_code == 2 and "soon" in bad.output
