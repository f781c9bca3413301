"""Scans registered where they lie (real files, the real convert runner in-process): a folder of
slices converted from its place, an OME-Zarr (ours, another tool's NGFF 0.4) read in place,
nothing written under the import root, and nothing outside the roots reachable by any spelling."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from ml4paleo.errors import ArtifactNotFound, Forbidden, InputError, InvalidTransition
from ml4paleo.io.omezarr import open_level
from ml4paleo.jobs.volume_views import slice_image
from ml4paleo.jobs.imports import list_folder, import_roots, register_scan
from ml4paleo.jobs.runner import Runner
from ml4paleo.jobs.store import JobStore
from ml4paleo.jobs.voxel_size import set_voxel_size
from ml4paleo.pipelines.convert import convert_volume
from ml4paleo.settings import Settings


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``folder`` with its size and modification time."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(root) / name
            st = p.lstat()
            out[str(p.relative_to(folder))] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def world(tmp_path, rng):
    """An import root holding a folder of TIFF slices, our OME-Zarr, another tool's NGFF 0.4 zarr
    and links pointing out of it; a secret folder outside; a store whose roots name it."""
    root, outside = tmp_path / "scans", tmp_path / "secret"
    (root / "stack").mkdir(parents=True)
    outside.mkdir()
    volume = rng.integers(100, 4000, (6, 24, 20), dtype=np.uint16)
    for z, plane in enumerate(volume):
        tifffile.imwrite(root / "stack" / f"s{z:03d}.tif", plane)
    convert_volume(root / "stack", root / "ours.ome.zarr", voxel_size=(2.0, 1.0, 1.0), unit="um")
    foreign_ngff04(root / "foreign.zarr", volume)
    bioformats2raw(root / "b2r.ome.zarr", volume)
    tifffile.imwrite(outside / "private.tif", volume)
    (outside / "deep").mkdir()
    os.symlink(outside, root / "link-out")
    os.symlink(outside / "private.tif", root / "file-link-out.tif")
    os.symlink(root / "stack", root / "link-in")
    store = JobStore(Settings.from_env({}, data=tmp_path / "data", lease_seconds=5, poll_seconds=0.05,
                                       import_roots=f"{root}{os.pathsep}{tmp_path / 'missing-root'}"))
    yield {"root": root, "outside": outside, "volume": volume, "store": store}
    store.close()


def foreign_ngff04(path: Path, volume: np.ndarray) -> None:
    """An NGFF 0.4 image on zarr v2 as another tool writes it: levels named s0, s1, unit millimeter."""
    group = zarr.open_group(store=str(path), mode="w", zarr_format=2)
    group.create_array("s0", data=volume, chunks=(4, 16, 16))
    group.create_array("s1", data=volume[::2, ::2, ::2].copy(), chunks=(4, 16, 16))
    axes = [{"name": a, "type": "space", "unit": "millimeter"} for a in "zyx"]
    group.attrs["multiscales"] = [{"version": "0.4", "axes": axes, "datasets": [
        {"path": "s0", "coordinateTransformations": [{"type": "scale", "scale": [0.5, 0.25, 0.25]}]},
        {"path": "s1", "coordinateTransformations": [{"type": "scale", "scale": [1.0, 0.5, 0.5]}]}]}]


def bioformats2raw(path: Path, volume: np.ndarray) -> None:
    """bioformats2raw's layout: the root names the layout, the image is series ``0/`` (NGFF 0.4, zarr v2)."""
    zarr.open_group(store=str(path), mode="w", zarr_format=2).attrs["bioformats2raw.layout"] = 3
    foreign_ngff04(path / "0", volume)


def convert_all(store: JobStore) -> None:
    assert Runner(store.settings, "convert", store=store.claims).drain() >= 1


def test_a_folder_of_slices_is_converted_where_it_lies(world):
    store, root = world["store"], world["root"]
    before = snapshot(root)
    doc = register_scan(store, store.settings, str(root / "stack"), "ammonite")
    assert doc["status"] == "uploaded" and doc["source_type"] == "registered-slices"
    convert_all(store)
    doc = store.jobs.job_doc(doc["job_id"])
    assert doc["status"] == "converted" and doc["shape"] == [6, 24, 20], doc["error"]
    paths = store.paths(doc["job_id"])
    assert not paths.upload.exists() and not paths.volume.is_symlink()
    np.testing.assert_array_equal(open_level(paths.volume, 0)[:], world["volume"])
    assert snapshot(root) == before  # nothing written under the import root


@pytest.mark.parametrize("name", ["ours.ome.zarr", "foreign.zarr", "b2r.ome.zarr"])
def test_an_ome_zarr_is_read_in_place_and_never_written(world, name):
    store, root = world["store"], world["root"]
    before = snapshot(root)
    doc = register_scan(store, store.settings, str(root / name), None)
    assert doc["source_type"] == "registered-ome-zarr" and doc["name"] == name.split(".")[0]
    convert_all(store)
    job_id = doc["job_id"]
    doc = store.jobs.job_doc(job_id)
    assert doc["status"] == "converted" and doc["shape"] == [6, 24, 20], doc["error"]
    paths = store.paths(job_id)
    image = root / name / ("0" if name.startswith("b2r") else "")
    assert paths.volume.is_symlink() and paths.volume.resolve() == image.resolve()
    expected = ([2.0, 1.0, 1.0], "micrometer") if name.startswith("ours") else ([0.5, 0.25, 0.25], "millimeter")
    assert (doc["voxel_size"], doc["unit"]) == expected
    image = slice_image(store, job_id, "y", 3)
    assert image.shape == (6, 20) and image.dtype == np.uint8
    np.testing.assert_array_equal(open_level(paths.volume, 0)[:], world["volume"])
    if name != "ours.ome.zarr":  # its levels are named s0, s1: found through its multiscales
        assert open_level(paths.volume, 1).shape == (3, 12, 10)
    with pytest.raises(InvalidTransition, match="read in place"):
        set_voxel_size(store, job_id, [1, 1, 1], "um")
    store.jobs.delete_job(job_id)
    shutil.rmtree(paths.root)
    assert snapshot(root) == before and (root / name).is_dir()


def test_the_task_checks_the_roots_again_when_it_runs(world, tmp_path):
    """A root taken out of the settings between registering and converting ends the task."""
    store, root = world["store"], world["root"]
    job_id = register_scan(store, store.settings, str(root / "stack"), "late")["job_id"]
    narrowed = Settings.from_env({}, data=tmp_path / "data", lease_seconds=5, poll_seconds=0.05,
                                 import_roots=str(tmp_path / "elsewhere"))
    (tmp_path / "elsewhere").mkdir()
    Runner(narrowed, "convert", store=store.claims).drain()
    doc = store.jobs.job_doc(job_id)
    assert doc["status"] == "error" and "not inside an import root" in doc["error"]


def outside_spellings(root: Path, outside: Path) -> list[str]:
    return [str(root / "link-out"), str(root / "link-out" / "private.tif"), str(root / "link-out" / "deep"),
            str(root / "file-link-out.tif"), str(root / ".." / "secret"), str(root / ".." / "secret" / "private.tif"),
            f"{root}/stack/../../secret", str(outside), str(outside / "private.tif"), "/", "/etc", str(root.parent)]


def test_nothing_outside_the_roots_can_be_registered_or_listed(world):
    store, root, outside = world["store"], world["root"], world["outside"]
    roots = import_roots(store.settings)
    assert roots.roots == (root.resolve(),)  # the missing root is left out
    for text in outside_spellings(root, outside):
        with pytest.raises(Forbidden, match="not inside an import root"):
            register_scan(store, store.settings, text, "x")
        with pytest.raises(Forbidden, match="not inside an import root"):
            list_folder(roots, text)
    for text in ["secret", "../secret", "scans/../secret", "", None, 7, ["/"], "a\x00b", "/" + "a" * 5000]:
        with pytest.raises(InputError):
            register_scan(store, store.settings, text, "x")
    for text in [f"{root}/%2e%2e/secret", f"{root}/..%2fsecret", f"{root}\\..\\secret", f"{root}/link-out%00"]:
        with pytest.raises((ArtifactNotFound, Forbidden)):  # encoded forms are names, never decoded
            register_scan(store, store.settings, text, "x")
    assert store.jobs.list_jobs() == []
    nobody = Settings.from_env({}, data=store.settings.data)
    with pytest.raises(Forbidden, match="no import root"):
        register_scan(store, nobody, str(root / "stack"), "x")


def test_the_data_folder_is_out_of_reach_under_a_root(world, tmp_path):
    """An admin naming a root above the server's data folder does not expose other jobs' scans."""
    store, root = world["store"], world["root"]
    job_id = register_scan(store, store.settings, str(root / "stack"), "first")["job_id"]
    convert_all(store)
    above = Settings.from_env({}, data=tmp_path / "data", import_roots=str(tmp_path))
    volume = store.paths(job_id).volume
    for text in (str(volume), str(tmp_path / "data"), str(tmp_path / "data" / "jobs")):
        with pytest.raises(Forbidden, match="not inside an import root"):
            register_scan(store, above, text, "theirs")
    listed = list_folder(import_roots(above), str(tmp_path))
    assert "data" not in {e["name"] for e in listed["entries"]} and "scans" in {e["name"] for e in listed["entries"]}


def test_the_picker_lists_folders_first_and_leaves_links_out(world):
    root = world["root"]
    roots = import_roots(world["store"].settings)
    top = list_folder(roots, None)
    assert [e["path"] for e in top["entries"]] == [str(root.resolve())]
    listed = list_folder(roots, str(root))
    kinds = {e["name"]: e["kind"] for e in listed["entries"]}
    assert kinds == {"stack": "folder", "link-in": "folder", "ours.ome.zarr": "ome-zarr", "foreign.zarr": "ome-zarr",
                     "b2r.ome.zarr": "ome-zarr"}
    assert listed["parent"] is None
    inner = list_folder(roots, str(root / "stack"))
    assert inner["parent"] == str(root.resolve()) and len(inner["entries"]) == 6
    assert all(e["kind"] == "file" and e["size"] > 0 for e in inner["entries"])


def write_ngff(path: Path, *, axes: list, data: np.ndarray, version: str = "0.5", label: bool = False) -> Path:
    group = zarr.open_group(store=str(path), mode="w", zarr_format=3)
    group.create_array("0", data=data)
    ome = {"version": version, "multiscales": [{"axes": axes, "datasets": [
        {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1.0] * data.ndim}]}]}]}
    if label:
        ome["image-label"] = {"version": version}
    group.attrs["ome"] = ome
    return path


@pytest.mark.parametrize("case, message", [
    ("time axis", "no time or channel axis"), ("bool", "integers or floats"), ("version", "NGFF version 0.3"),
    ("labels", "label image"), ("unit", "not a length unit"), ("no multiscales", "no NGFF multiscales")])
def test_an_ome_zarr_that_does_not_fit_is_refused_with_what_was_found(world, case, message):
    store, root = world["store"], world["root"]
    space = [{"name": a, "type": "space", "unit": "micrometer"} for a in "zyx"]
    cube = np.zeros((4, 8, 8), np.uint8)
    if case == "time axis":
        write_ngff(root / "bad.zarr", axes=[{"name": "t", "type": "time"}, *space], data=cube[None])
    elif case == "bool":
        write_ngff(root / "bad.zarr", axes=space, data=cube.astype(bool))
    elif case == "version":
        write_ngff(root / "bad.zarr", axes=space, data=cube, version="0.3")
    elif case == "labels":
        write_ngff(root / "bad.zarr", axes=space, data=cube, label=True)
    elif case == "unit":
        write_ngff(root / "bad.zarr", axes=[{**a, "unit": "second"} for a in space], data=cube)
    else:
        zarr.open_group(store=str(root / "bad.zarr"), mode="w", zarr_format=3).create_array("0", data=cube)
    with pytest.raises(InputError, match=message):
        register_scan(store, store.settings, str(root / "bad.zarr"), "bad")
    assert store.jobs.list_jobs() == []


def test_an_upload_is_deleted_once_converted_unless_kept(world, tmp_path):
    store = world["store"]
    tifffile.imwrite(tmp_path / "v.tif", world["volume"])
    payload = (tmp_path / "v.tif").read_bytes()
    jobs = {}
    for keep in (False, True):
        job_id = store.jobs.create_job(f"keep={keep}")["job_id"]
        target = store.paths(job_id).upload_file("v.tif")
        target.parent.mkdir(parents=True)
        store.uploads.begin_chunk(job_id, "v.tif", 0, len(payload), len(payload))
        target.write_bytes(payload)
        store.uploads.end_chunk(job_id, "v.tif", 0, len(payload))
        store.uploads.upload_complete(job_id, keep_upload=keep)
        jobs[keep] = job_id
    convert_all(store)
    for keep, job_id in jobs.items():
        assert store.jobs.job_doc(job_id)["status"] == "converted"
        assert store.paths(job_id).upload.exists() == keep


def test_ml4paleo_job_import_registers_and_refuses_in_one_line(world, tmp_path):
    from click.testing import CliRunner

    from ml4paleo.cli import main

    root, data = world["root"], str(tmp_path / "data")
    env = {"ML4PALEO_IMPORT_ROOTS": str(root)}
    result = CliRunner(env=env).invoke(main, ["job", "import", str(root / "stack"), "--name", "from cli",
                                              "--voxel-size", "2", "1", "1", "--data", data])
    assert result.exit_code == 0 and "registered registered-slices job" in result.output, result.output
    result = CliRunner(env=env).invoke(main, ["runner", "convert", "--once", "--data", data])
    (job,) = world["store"].jobs.list_jobs()
    assert job["name"] == "from cli" and job["status"] == "converted" and job["voxel_size"] == [2.0, 1.0, 1.0]
    result = CliRunner(env=env).invoke(main, ["job", "import", str(root / "link-out"), "--data", data])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "not inside an import root" in result.output
    result = CliRunner(env={"ML4PALEO_IMPORT_ROOTS": ""}).invoke(main, ["job", "import", str(root / "stack"),
                                                                      "--data", data])
    assert result.exit_code == 2 and "no import root is configured" in result.output


def test_a_conversion_taken_over_after_the_upload_was_deleted_reads_the_volume(world, tmp_path):
    """A runner that died between deleting the upload and recording the result: the one taking the
    task over finds no upload but the finished volume, and reports it instead of failing."""
    from ml4paleo.jobs.tasks import TaskContext, convert

    store = world["store"]
    tifffile.imwrite(tmp_path / "v.tif", world["volume"])
    payload = (tmp_path / "v.tif").read_bytes()
    job_id = store.jobs.create_job("taken over")["job_id"]
    target = store.paths(job_id).upload_file("v.tif")
    target.parent.mkdir(parents=True)
    store.uploads.begin_chunk(job_id, "v.tif", 0, len(payload), len(payload))
    target.write_bytes(payload)
    store.uploads.end_chunk(job_id, "v.tif", 0, len(payload))
    store.uploads.upload_complete(job_id)
    convert_all(store)
    paths = store.paths(job_id)
    assert not paths.upload.exists()
    ctx = TaskContext(settings=store.settings, paths=paths, job_id=job_id, task_id=1, model_id=None, seg_id=None,
                      params={}, model_ready=False, voxel_size=None, unit=None, classes=(),
                      progress=lambda *a: None, check=lambda: None, model_trained=lambda info: None)
    again = convert(ctx)
    assert again["shape"] == [6, 24, 20] and again["dtype"] == "uint16"


def test_a_folder_holding_a_link_out_of_the_roots_is_refused_at_registration_and_when_converted(world):
    """A slice (or chunk file) that is a link to another study would be read as part of this scan."""
    store, root, outside = world["store"], world["root"], world["outside"]
    mixed = root / "mixed"
    shutil.copytree(root / "stack", mixed)
    os.symlink(outside / "private.tif", mixed / "s999.tif")
    with pytest.raises(Forbidden, match="leads out of the import roots"):
        register_scan(store, store.settings, str(mixed), "x")
    assert store.jobs.list_jobs() == []
    (mixed / "s999.tif").unlink()
    os.symlink(root / "stack" / "s000.tif", mixed / "s999.tif")  # a link that stays inside is fine
    job = register_scan(store, store.settings, str(mixed), "x")
    (mixed / "s999.tif").unlink()
    os.symlink(outside / "private.tif", mixed / "s999.tif")  # changed between registration and conversion
    Runner(store.settings, "convert", store=store.claims).drain()
    doc = store.jobs.job_doc(job["job_id"])
    assert doc["status"] == "error" and "leads out of the import roots" in doc["error"]
