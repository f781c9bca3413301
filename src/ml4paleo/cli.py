"""The ``ml4paleo`` command line: one command per pipeline, each a thin wrapper over the library.

Commands parse options, call one library function with a tqdm progress bar, and turn
:class:`ml4paleo.errors.Ml4PaleoError` into a one-line message and exit status 2 (no traceback:
the message is meant for the user).

Heavy imports are made inside the commands that use them, measured on this project's box
against ``ml4paleo --help`` (0.18-0.25 s): ``ml4paleo.pipelines.convert`` 2.0 s (numpy, zarr,
dask), ``pipelines.mesh`` 2.3 s, ``pipelines.train`` 4.6 s, ``pipelines.segment`` 2.2 s,
``pipelines.export`` 1.2 s, ``ml4paleo.jobs.runner`` 3.4 s,
``ml4paleo.web`` and ``jobs.supervisor`` 1.7 s, tqdm 0.09 s, waitress 0.05 s. Choices and
validation rules come from the standard-library-only modules :mod:`ml4paleo.enums` and
:mod:`ml4paleo.units`.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import click

from ml4paleo.collections_policy import collect_less
from ml4paleo.version import __version__
from ml4paleo.enums import (CLASS_NAMES, CODECS, DEFAULT_CODEC, DEFAULT_MESH_FORMAT, DEVICES, EXPORT_FORMATS,
                            MESH_FORMATS, TIFF_COMPRESSIONS, TRAIN_METHODS, VALIDATE_WHEN)
from ml4paleo.errors import InputError, Ml4PaleoError, NotALabelMap
from ml4paleo.planes import SliceRef
from ml4paleo.settings import Settings
from ml4paleo.units import DEFAULT_UNIT, check_unit, check_voxel_size

SCHEDULER_HELP = ("Dask scheduler address (tcp://host:8786), or local/processes/threads/synchronous "
                  "(default: the setting ML4PALEO_DASK_SCHEDULER, else local).")


@contextlib.contextmanager
def progress_bar(desc: str) -> Iterator[Callable[..., None]]:
    """A tqdm bar (in percent) fed by a pipeline's ``progress(done, total, stage)`` callback."""
    from tqdm import tqdm  # lazy: 0.09 s (see the module docstring)

    with tqdm(total=100, desc=desc, unit="%", bar_format="{l_bar}{bar}| {n:.0f}% [{elapsed}<{remaining}]") as bar:

        def report(done: float, total: float, stage: str = "") -> None:
            bar.n = round(100.0 * done / total, 1) if total else 100.0
            if stage:
                bar.set_description(stage, refresh=False)
            bar.refresh()

        yield report


class UserError(click.ClickException):
    """Bad input: ``Error: message`` and exit status 2, the status click gives a bad option, so
    a script tells "your input" (2) from "it broke" (1) the same way for both."""

    exit_code = 2


def user_errors(func: Callable) -> Callable:
    """Print our own errors as ``Error: message`` and exit 2, instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except Ml4PaleoError as exc:
            raise UserError(str(exc)) from exc

    return wrapper


_PROCESS = {"own": False}
"""Whether this process runs the command line itself (:func:`run`), not a caller in-process (tests)."""


def run() -> None:
    """The ``ml4paleo`` command and ``python -m ml4paleo.cli``: :func:`main` in a process of its own,
    which a heavy command may end without the interpreter's teardown (:func:`_finished`)."""
    _PROCESS["own"] = True
    main()


def _collect_less() -> None:
    """Fewer garbage collections in a heavy command's process of its own (:func:`run`), before
    its imports, during which most of them ran (:mod:`ml4paleo.collections_policy`); a caller
    of :func:`main` in-process keeps its own."""
    if _PROCESS["own"]:
        collect_less()


def _finished() -> None:
    """End the process once a heavy command (train, segment) has written its outputs and said so:
    the exit handlers run (atexit: logging, zarr's threads, temporary folders), then the process
    exits without tearing down its modules one object at a time, which is slow once scikit-learn,
    numba and zarr are loaded (measured: docs/benchmarks.md, small scan).
    Only in a process of its own (:func:`run`): a caller of :func:`main` in-process keeps running."""
    if not _PROCESS["own"]:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    atexit._run_exitfuncs()  # noqa: SLF001 - what a normal exit runs first; the teardown after it is skipped
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ml4paleo")
def main() -> None:
    """ml4paleo: segment fossils in X-ray tomography scans.

    Typical flow: convert a stack of slices to OME-Zarr, paint a few slices, train, segment the
    whole volume, mesh and export.
    """


def _checked(rule: Callable[[Any, str], Any]) -> Callable:
    """A click callback applying one of :mod:`ml4paleo.units`' rules to an option."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        try:
            return rule(value, f"--{param.name.replace('_', '-')}") if value is not None else None
        except InputError as exc:
            raise click.BadParameter(str(exc)) from exc

    return callback


@main.command()
@click.argument("src", type=click.Path(exists=True, dir_okay=True, file_okay=True))
@click.argument("dst", type=click.Path(dir_okay=True, file_okay=False))
@click.option("--voxel-size", nargs=3, type=float, metavar="Z Y X", default=None, callback=_checked(check_voxel_size),
              help="Voxel size along z, y, x (default: from the files, else 1 1 1).")
@click.option("--unit", default=None, callback=_checked(check_unit),
              help=f"Unit of the voxel size (um, mm, nm...; default: the files', else {DEFAULT_UNIT}).")
@click.option("--chunk", type=int, default=None, help="Chunk edge in voxels (default 64).")
@click.option("--codec", type=click.Choice(CODECS), default=None, help=f"Chunk compressor (default {DEFAULT_CODEC}).")
@click.option("--labels", is_flag=True,
              help="SRC is a label map made elsewhere (integer voxels, 0 background): record it as a "
                   "segmentation, so that `ml4paleo mesh` meshes it.")
@click.option("--overwrite", is_flag=True, help="Replace DST if it exists.")
@user_errors
def convert(src, dst, voxel_size, unit, chunk, codec, labels, overwrite) -> None:
    """Convert a scan (folder of slices, multi-page TIFF, DICOM series, or a .zip of these)
    into an OME-Zarr volume at DST (e.g. scan.ome.zarr); with --labels, a label map into a
    segmentation (e.g. labels.ome.zarr)."""
    from ml4paleo.pipelines.convert import convert_volume  # lazy: 2.0 s of imports (see the module docstring)

    options = {k: v for k, v in dict(voxel_size=voxel_size, unit=unit, chunk=chunk, codec=codec).items() if v}
    with progress_bar("converting") as report:
        result = convert_volume(src, dst, labels=labels, overwrite=overwrite, progress=report, **options)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    what = "label map" if result.kind == "labels" else "volume"
    click.echo(f"wrote {what} {result.path}: shape {result.shape} {result.dtype}, "
               f"voxel size {result.voxel_size} {result.unit}")


OLD_VALIDATE_LATER = "background"
"""What ``--validate later`` was called before the CLI took the library's word; still accepted."""


def _validate_when(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """``--validate``, in the words of ``train_model(validate=...)``; the former ``background`` is
    read as ``later``, with a warning, so that scripts written for it keep working."""
    if value == OLD_VALIDATE_LATER:
        click.echo("warning: --validate background is deprecated, say --validate later (the same)", err=True)
        return "later"
    return value


def _feature_options(features: str | None, sigmas: str | None) -> dict | None:
    """--features/--sigmas as a feature-settings mapping (None: the default bank)."""
    if not features and not sigmas:
        return None
    out: dict = {}
    if features:
        out["filters"] = [f.strip() for f in features.split(",") if f.strip()]
    if sigmas:
        try:
            out["sigmas"] = [float(s) for s in sigmas.split(",") if s.strip()]
        except ValueError as exc:
            raise click.BadParameter(f"expected sigmas like 0.7,1.6,3.5; got {sigmas!r}") from exc
    return out


@main.command()
@click.argument("volume", type=click.Path(exists=True, file_okay=False))
@click.argument("labels_dir", metavar="LABELS_DIR", type=click.Path(exists=True, file_okay=False))
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.option("--classes", default=",".join(CLASS_NAMES), show_default=True,
              help="Class names for annotation values 1, 2, ... (comma-separated).")
@click.option("--features", default=None, help="Filters to use (comma-separated among gaussian,log,ggm,dog,st,hessian,orient; default all).")
@click.option("--sigmas", default=None, help="Scales in voxels (comma-separated; default 0.7,1,1.6,3.5,5,10).")
@click.option("--2d", "two_d", is_flag=True, help="Compute features per slice (2D) instead of in 3D.")
@click.option("--method", type=click.Choice(TRAIN_METHODS),
              default="auto", show_default=True,
              help="auto: score the methods on held-out painted slices and keep the best; forest: filter bank + "
                   "random forest; context: forest + the painted outlines interpolated between slices; "
                   "interpolation: the outlines alone; boosting: filter bank + gradient boosting; unet: a small "
                   "U-Net (PyTorch).")
@click.option("--max-train-seconds", type=float, default=None,
              help="Time the U-Net may take in all (folds and final fit); with it, auto scores the U-Net too "
                   "(default: auto scores it, for 60 CPU s, only when the fast methods leave a class below held-out "
                   "Dice 0.9; --method unet gets 300 s).")
@click.option("--unet-epochs", type=click.IntRange(min=1), default=None,
              help="Train the U-Net for exactly N epochs (each fold and the final fit) instead of against the "
                   "clock: the same inputs give the same model and choice however busy the machine is; with it, "
                   "auto scores the U-Net too.")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
              help="Where the U-Net trains and predicts (auto: CUDA when PyTorch sees a GPU).")
@click.option("--select", type=click.IntRange(min=0), default=16, show_default=True,
              help="Keep the N most important features (faster segmentation); 0 keeps all.")
@click.option("--validate", type=click.Choice(VALIDATE_WHEN + (OLD_VALIDATE_LATER,)), default="later",
              metavar="[later|now]", show_default=True, callback=_validate_when,
              help="later: save the model at once and run leave-one-slice-out in a background process "
                   "(its figures land in MODEL_DIR/validation.json; `auto` chooses on quicker folds); now: "
                   "validate before the final fit and print the figures.")
@click.option("--overwrite", is_flag=True, help="Replace MODEL_DIR if it exists.")
@user_errors
def train(volume, labels_dir, model_dir, classes, features, sigmas, two_d, method, max_train_seconds, unet_epochs,
          device, select, validate, overwrite) -> None:
    """Train a segmenter on the annotated slices in LABELS_DIR (one PNG per slice, named by
    its slice index; 0 unlabeled, 1 background, 2.. structures) of VOLUME.ome.zarr, choosing
    the method by leave-one-slice-out Dice unless --method names one."""
    _collect_less()
    from ml4paleo.pipelines.train import train_model  # lazy: 4.6 s

    names = [c.strip() for c in classes.split(",") if c.strip()]
    with progress_bar("training") as report:
        result = train_model(volume, labels_dir, model_dir, classes=names, two_d=two_d, method=method, select=select or None,
                             previous_model=model_dir if overwrite else None,
                             max_train_seconds=max_train_seconds, device=device,
                             unet_params={"epochs": unet_epochs} if unet_epochs else None,
                             features=_feature_options(features, sigmas), progress=report, overwrite=overwrite,
                             validate=validate)
    click.echo(f"trained on {result.n_slices} slice(s), labeled voxels {result.voxels_per_class}")
    if len(result.candidates) > 1:
        quick = " (quick folds)" if validate == "later" else ""
        click.echo(f"leave-one-slice-out Dice per method{quick}:")
        for name, metrics in result.candidates.items():
            cells = ", ".join(f"{c} {'n/a' if m['dice'] is None else format(m['dice'], '.3f')}" for c, m in metrics.items())
            click.echo(f"  {'*' if name == result.method else ' '} {name}: {cells or 'not scored'}")
    click.echo(f"method: {result.method} ({result.validation.get('reason') or result.validation.get('choice', '')})")
    if result.network:
        click.echo(f"U-Net {result.network}")
    for name, m in result.metrics.items():
        dice = "n/a" if m["dice"] is None else f"{m['dice']:.3f}"
        iou = "n/a" if m["iou"] is None else f"{m['iou']:.3f}"
        click.echo(f"  {name}: Dice {dice}, IoU {iou} (leave-one-slice-out)")
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    _echo_suggestions(result.suggestions)
    click.echo(f"wrote {result.model_dir}")
    if validate == "later":
        from ml4paleo.pipelines.validate import start_validation  # loaded already: train imports it

        process = start_validation(result.model_dir)
        click.echo(f"validating in the background (process {process.pid}): the figures will be in "
                   f"{result.model_dir / 'validation.json'}")
    _finished()


def _echo_suggestions(doc: dict) -> None:
    """Where to paint next (the top 3 of ``suggestions.json``) and the estimated Dice."""
    if doc.get("estimated_dice"):
        cells = ", ".join(f"{c} {d:.2f}" for c, d in doc["estimated_dice"].items())
        click.echo(f"estimated Dice on unpainted planes: {cells} (an estimate from the model's own doubt)")
    elif doc.get("estimated_dice_range"):  # the outlines' odds not measured: a range, and why
        cells = ", ".join(f"{c} {lo:.2f}-{hi:.2f}" for c, (lo, hi) in doc["estimated_dice_range"].items())
        click.echo(f"estimated Dice on unpainted planes: between {cells}; {doc.get('calibration', '')}")
    for i, s in enumerate(doc.get("suggestions", [])[:3], 1):
        u0, v0, u1, v1 = s["bbox"]
        rows, cols = {"z": ("y", "x"), "y": ("z", "x"), "x": ("z", "y")}[s["axis"]]
        click.echo(f"  paint next {i}: {s['axis']} {s['index']}, {rows} {u0}-{u1}, {cols} {v0}-{v1}: {s['reason']}")


@main.command()
@click.argument("volume", type=click.Path(exists=True, file_okay=False))
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--probabilities", is_flag=True, help="Also write one uint8 probability volume per class beside OUT.")
@click.option("--scheduler", default=None, help=SCHEDULER_HELP)
@click.option("--min-size", type=click.IntRange(min=0), default=0, help="Remove components smaller than this many voxels.")
@click.option("--fill-holes", is_flag=True, help="Fill background enclosed by a structure.")
@click.option("--keep-largest", is_flag=True, help="Keep only the largest component of each structure.")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
@click.option("--exact-labels", is_flag=True,
              help="A forest's labels voxel for voxel as its probabilities give them (default: coarse to fine, "
                   "a few voxels per million may differ, in fewer CPU seconds).")
@user_errors
def segment(volume, model_dir, out, probabilities, scheduler, min_size, fill_holes, keep_largest, overwrite,
            exact_labels) -> None:
    """Segment VOLUME.ome.zarr with the model in MODEL_DIR into OUT.ome.zarr (uint8 class
    indices: 0 background, 1.. structures)."""
    _collect_less()
    from ml4paleo.pipelines.segment import segment_volume  # lazy: 2.2 s

    with progress_bar("segmenting") as report:
        result = segment_volume(volume, model_dir, out, probabilities=probabilities, scheduler=scheduler,
                                min_size=min_size, fill_holes=fill_holes, keep_largest=keep_largest,
                                progress=report, overwrite=overwrite, exact_labels=exact_labels)
    click.echo(f"wrote {result.path}: shape {result.shape}, voxels per class {result.voxels_per_class}")
    for path in result.probability_paths:
        click.echo(f"wrote {path}")
    _finished()


@main.command("predict-slice")
@click.argument("volume", type=click.Path(exists=True, file_okay=False))
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("z", type=click.IntRange(min=0))
@click.argument("out_png", type=click.Path(dir_okay=False))
@user_errors
def predict_slice_command(volume, model_dir, z, out_png) -> None:
    """Predict slice Z of VOLUME with MODEL_DIR and write its class indices as an 8-bit PNG."""
    from ml4paleo.io.png import write_png  # lazy, as the pipelines: numpy, imagecodecs, Pillow
    from ml4paleo.pipelines.preview import predict_slice  # lazy: models and features

    labels = predict_slice(volume, model_dir, z)
    out = write_png(out_png, labels)
    click.echo(f"wrote {out}: classes present {sorted(set(labels.ravel().tolist()))}")


def _int_list(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise click.BadParameter(f"expected labels like 1,2; got {text!r}") from exc


@main.command()
@click.argument("labels_path", metavar="LABELS", type=click.Path(exists=True, file_okay=False))
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--labels", "labels", default=None, metavar="1,2", help="Labels to mesh (default: all nonzero).")
@click.option("--downsample", type=int, default=1, show_default=True, help="Mesh every N-th voxel.")
@click.option("--simplify", type=float, default=None, metavar="RATIO",
              help="Keep this fraction of the triangles (0-1]; surfaces stay closed.")
@click.option("--max-error", type=float, default=None, metavar="E",
              help="Largest vertex displacement when simplifying, in the volume's unit "
                   "(with --no-smooth; default there: half a voxel, unless --simplify or --full-resolution).")
@click.option("--full-resolution", is_flag=True,
              help="Every marching-cubes triangle, no simplification (files several times larger).")
@click.option("--smooth/--no-smooth", default=True, show_default=True,
              help="Smooth away the voxel staircase, keeping volume (--no-smooth: the voxel surface).")
@click.option("--format", "formats", default=DEFAULT_MESH_FORMAT, show_default=True, metavar=",".join(MESH_FORMATS),
              help="Mesh file formats, comma separated.")
@click.option("--chunk", type=int, default=None, help="Chunk edge in voxels (default 256).")
@click.option("--scheduler", default=None, help=SCHEDULER_HELP)
@click.option("--overwrite", is_flag=True, help="Replace OUT_DIR if it exists.")
@user_errors
def mesh(labels_path, out_dir, labels, downsample, simplify, max_error, full_resolution, smooth, formats, chunk,
         scheduler, overwrite) -> None:
    """Mesh every label of a segmentation (LABELS.ome.zarr, from `ml4paleo segment` or
    `ml4paleo convert --labels`) into closed meshes in physical units, one file per label and
    format, plus meshes.json with the measurements."""
    from ml4paleo.pipelines.mesh import MESH_CHUNK, SMOOTH_ITERATIONS, download_max_error, mesh_labels  # lazy

    if full_resolution and (simplify is not None or max_error is not None):
        raise click.UsageError("--full-resolution keeps every triangle: drop --simplify/--max-error, or it")
    if smooth and max_error is not None:
        raise click.UsageError("--max-error simplifies the voxel surface; smoothed surfaces are written whole: "
                               "add --no-smooth, or use --simplify RATIO")
    if not smooth and not full_resolution and simplify is None and max_error is None:
        max_error = download_max_error(labels_path, downsample)
    try:
        with progress_bar("meshing") as report:
            result = mesh_labels(labels_path, out_dir, labels=_int_list(labels), downsample=downsample,
                                 simplify=simplify, max_error=max_error, smooth=SMOOTH_ITERATIONS if smooth else 0,
                                 formats=formats,
                                 chunk=chunk or MESH_CHUNK, scheduler=scheduler, progress=report,
                                 overwrite=overwrite)
    except NotALabelMap as exc:
        raise UserError(
            f"{labels_path} is an image volume, not a segmentation: every gray value would become a mesh. "
            "If it is a label map made elsewhere, convert it with `ml4paleo convert --labels`; "
            "to mesh chosen values of it anyway, pass --labels 1,2") from exc
    for message in result.messages:
        click.echo(f"warning: {message}", err=True)
    for label, m in result.measurements.items():
        click.echo(f"label {label}: volume {m['volume']:.6g} {result.unit}^3 ({m['voxel_count']} voxels), "
                   f"area {m['surface_area']:.6g} {result.unit}^2, {m['components']} component(s), "
                   f"{m['triangles']} triangles")
    click.echo(f"wrote {len(result.files)} file(s) and meshes.json to {result.out_dir}")


def _merge_option(values: tuple[str, ...]) -> list[list[int]]:
    groups = []
    for text in values:
        try:
            groups.append([int(v) for v in text.split(",") if v.strip()])
        except ValueError as exc:
            raise click.BadParameter(f"expected object ids like 12,15; got {text!r}", param_hint="--merge") from exc
    return groups


def _seeds_option(paths: tuple[str, ...], seeds_z: int | None) -> list[tuple[Any, Any]]:
    """Each seeds PNG with its slice: ``--seeds-z``, else the number in its name (``40.png``,
    ``seeds_0040.png``, ``y_0120.png``), as annotation files are named."""
    from ml4paleo.io.annotations import read_annotation, slice_of_name  # lazy: numpy and Pillow

    if seeds_z is not None and len(paths) != 1:
        raise click.BadParameter("--seeds-z names the slice of a single --seeds image", param_hint="--seeds-z")
    out = []
    for path in paths:
        ref = SliceRef("z", seeds_z) if seeds_z is not None else slice_of_name(path)
        if ref is None:
            raise click.BadParameter(f"{path}: no slice number in its name (e.g. seeds_40.png), and no --seeds-z",
                                     param_hint="--seeds")
        out.append((ref, read_annotation(path)))
    return out


@main.command()
@click.argument("labels_path", metavar="LABELS", type=click.Path(exists=True, file_okay=False))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--class", "classes", multiple=True, metavar="NAME",
              help="Class (name or value) whose pieces are objects; repeat for several (default: every class).")
@click.option("--split", type=click.Choice(["auto", "none"]), default="auto", show_default=True,
              help="auto: split touching objects at thin necks (distance-map watershed); none: one object per "
                   "connected piece.")
@click.option("--min-size", type=click.IntRange(min=0), default=0, show_default=True,
              help="Drop pieces of fewer voxels.")
@click.option("--h", "h", type=float, default=None, metavar="LENGTH",
              help="How much thinner than the smaller body a neck must be to split there, in the volume's unit "
                   "(default 1.5 of the smallest voxel edge).")
@click.option("--merge", multiple=True, metavar="12,15", help="Merge these objects into one; repeat for more.")
@click.option("--seeds", multiple=True, type=click.Path(exists=True, dir_okay=False), metavar="SEEDS.png",
              help="Split the object under these strokes (a slice image, 0 = none, one value per part); the slice "
                   "is the number in the file name (as annotations), or --seeds-z.")
@click.option("--seeds-z", type=click.IntRange(min=0), default=None, help="The z slice of a single --seeds image.")
@click.option("--image", type=click.Path(exists=True, file_okay=False), default=None,
              help="The scan, for grey values (default: the one the segmentation was made from, if still there).")
@click.option("--per-object", is_flag=True,
              help="Also write one smoothed STL per object, zipped beside OUT (OUT_meshes.zip), to print one.")
@click.option("--overwrite", is_flag=True, help="Replace OUT and its tables if they exist.")
@user_errors
def objects(labels_path, out, classes, split, min_size, h, merge, seeds, seeds_z, image, per_object,
            overwrite) -> None:
    """Separate and measure the objects of a segmentation (LABELS.ome.zarr): OUT (e.g.
    objects.ome.zarr) holds one id per object; the tables beside it, named after it (objects.csv
    and objects.json), hold each object's volume, surface, shape, thickness and grey value in
    physical units."""
    from ml4paleo.pipelines.objects import objects_from_labels  # lazy: numpy, zarr, scikit-image

    with progress_bar("objects") as report:
        result = objects_from_labels(labels_path, out, classes=classes or None, split=split, min_size=min_size,
                                     h=h, merge=_merge_option(merge), seeds=_seeds_option(seeds, seeds_z),
                                     image=image, overwrite=overwrite, progress=report)
    for message in result.messages:
        click.echo(message)
    unit = result.unit
    for o in result.objects[:20]:
        click.echo(f"object {o['id']} ({o['class_name']}): volume {o['volume']:.6g} {unit}^3, "
                   f"area {o['surface_area']:.6g} {unit}^2, thickness {o['thickness_mean']:.4g} {unit}")
    if len(result.objects) > 20:
        click.echo(f"... {len(result.objects) - 20} more in {result.csv_path.name}")
    for c in result.classes:
        click.echo(f"class {c['class_name']}: volume {c['volume']:.6g} {unit}^3, cavities {c['cavity_volume']:.6g} "
                   f"{unit}^3 (porosity {c['porosity']:.3%}), mean thickness {c['thickness_mean']:.4g} {unit}")
    click.echo(f"wrote {len(result.objects)} object(s) to {result.path}, {result.csv_path} and {result.json_path}; "
               f"local thickness map: {result.thickness_path}")
    if per_object:
        from ml4paleo.pipelines.object_meshes import meshes_zip_path, write_object_meshes

        with progress_bar("object meshes") as report:
            zipped = write_object_meshes(result.path, result.objects, meshes_zip_path(result.path),
                                         overwrite=overwrite, progress=report)
        click.echo(f"wrote one mesh per object (STL, {unit}) to {zipped}")


@main.command()
@click.argument("src", type=click.Path(exists=True, file_okay=False))
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", required=True, type=click.Choice(EXPORT_FORMATS),
              help="zarr-zip: the OME-Zarr zipped; png-zip/tiff-zip: one image per z slice; tiff: multi-page; "
                   "nifti: .nii.gz; seg-nrrd: a 3D Slicer segmentation (.seg.nrrd, of a segmentation).")
@click.option("--compression", type=click.Choice(TIFF_COMPRESSIONS), default=TIFF_COMPRESSIONS[0], show_default=True,
              help="Of a multi-page TIFF: lzw (read by Fiji, libtiff, Dragonfly), deflate (smaller; Fiji, libtiff) "
                   "or none.")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
@user_errors
def export(src, out, fmt, compression, overwrite) -> None:
    """Export a volume or segmentation (SRC.ome.zarr) to OUT as a zip of the OME-Zarr, a PNG or
    TIFF stack, one multi-page TIFF with the voxel size in its tags, a NIfTI file, or (for a
    segmentation) a 3D Slicer segmentation with its class names."""
    from ml4paleo.pipelines.export import export_volume  # lazy: 1.2 s

    with progress_bar("exporting") as report:
        path = export_volume(src, out, format=fmt, progress=report, overwrite=overwrite, compression=compression)
    click.echo(f"wrote {path} ({path.stat().st_size} bytes)")


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s: %(message)s")


@main.command()
@click.argument("kind", type=click.Choice(["convert", "segment", "mesh", "train"]))
@click.option("--data", type=click.Path(file_okay=False), default=None,
              help="Data folder (default $ML4PALEO_DATA or ./data).")
@click.option("--once", is_flag=True, help="Work on the queued tasks, then exit (no waiting).")
@user_errors
def runner(kind, data, once) -> None:
    """Work the KIND queue of the job store: convert uploads, train/segment, mesh/export, or
    train drafts (the overlay while painting, never behind a segmentation).

    Several runners of one kind (on one or several hosts sharing the database, see
    ML4PALEO_DATABASE_URL) never take the same task. SIGTERM/Ctrl-C hands the current task
    back to the queue; a second Ctrl-C exits at once."""
    from ml4paleo.jobs.private import keep_private
    from ml4paleo.jobs.runner import Runner, lower_priority  # lazy: its imports are slow

    keep_private()
    _logging()
    worker = Runner(Settings.from_env(data=data), kind)
    if once:
        worker.drain()
        return
    lower_priority(kind)  # a serving runner's batch work gives way to the drafts and previews a painter waits on

    interrupts = []

    def _stop(signum, frame) -> None:
        # SIGTERM (from `ml4paleo serve`, possibly right after the terminal's SIGINT) stops
        # gracefully; only a second Ctrl-C exits at once.
        if signum == signal.SIGINT:
            interrupts.append(signum)
            if len(interrupts) > 1:
                raise SystemExit(1)
        worker.stop_event.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    worker.run()


_DATA_OPTION = click.option("--data", type=click.Path(file_okay=False), default=None,
                            help="Data folder (default $ML4PALEO_DATA or ./data).")


@main.group()
def job() -> None:
    """Jobs of the web app's data folder, made from the command line."""


@job.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=True, file_okay=True))
@click.option("--name", default=None, help="The job's name (default: the folder's or file's name).")
@click.option("--voxel-size", nargs=3, type=float, metavar="Z Y X", default=None, callback=_checked(check_voxel_size),
              help="Voxel size along z, y, x of a folder of slices (default: from the files, else 1 1 1); "
                   "an OME-Zarr keeps its own.")
@click.option("--unit", default=None, callback=_checked(check_unit), help="Unit of --voxel-size.")
@_DATA_OPTION
@user_errors
def job_import(path, name, voxel_size, unit, data) -> None:
    """Register the scan at PATH where it lies, as a new job that the convert runner takes up.

    PATH must be inside an import root (ML4PALEO_IMPORT_ROOTS). A folder of slices, a multi-page
    TIFF, a DICOM series or a zip is converted from there; an OME-Zarr (NGFF 0.4/0.5) is checked
    and read in place. Nothing is written under PATH. With accounts on, give the job to a member
    with `ml4paleo user give`."""
    from ml4paleo.jobs.imports import register_scan  # lazy: SQLAlchemy

    store = _store(data)
    doc = register_scan(store, store.settings, str(Path(path).absolute()), name, voxel_size=voxel_size, unit=unit)
    click.echo(f"registered {doc['source_type']} job {doc['job_id']} ({doc['name']}): {doc['status']}, "
               f"{doc['stage'] or 'queued'}")


@main.group()
def user() -> None:
    """Accounts of a lab's shared server (used when it runs with ML4PALEO_AUTH=accounts).

    Users live in the job database (ML4PALEO_DATABASE_URL, else the data folder's SQLite file).
    A password is asked twice on the terminal, or read from the first line of stdin when piped."""


def _store(data: str | None):
    from ml4paleo.jobs.private import keep_private
    from ml4paleo.jobs.store import JobStore  # lazy: SQLAlchemy

    keep_private()  # the database it may create holds password hashes
    return JobStore(Settings.from_env(data=data))


def _new_password() -> str:
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\r\n")


@user.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="An administrator sees (and may change) every job.")
@_DATA_OPTION
@user_errors
def user_add(name, admin, data) -> None:
    """Add the user NAME."""
    added = _store(data).accounts.add_user(name, _new_password(), admin=admin)
    click.echo(f"added {'administrator' if added['admin'] else 'user'} {added['name']}")


@user.command("remove")
@click.argument("name")
@click.option("--transfer-to", default=None, help="Give NAME's jobs to this user (default: only admins see them).")
@_DATA_OPTION
@user_errors
def user_remove(name, transfer_to, data) -> None:
    """Remove the user NAME with their sessions, API tokens and shares; their jobs stay."""
    removed = _store(data).accounts.remove_user(name, transfer_to=transfer_to)
    where = f"now owned by {transfer_to}" if transfer_to else "now seen by administrators only"
    click.echo(f"removed {name}; {removed['jobs']} job(s) {where}")


@user.command("passwd")
@click.argument("name")
@click.option("--revoke-tokens", is_flag=True,
              help="Revoke NAME's API tokens too (do this when the old password may have leaked).")
@_DATA_OPTION
@user_errors
def user_passwd(name, revoke_tokens, data) -> None:
    """Set a new password for NAME (their browsers are signed out)."""
    ended = _store(data).accounts.set_password(name, _new_password(), revoke_tokens=revoke_tokens)
    tokens = (f"; {ended['tokens']} API token(s) revoked" if revoke_tokens
              else "; their API tokens still work (--revoke-tokens revokes them)")
    click.echo(f"password of {name} changed; {ended['sessions']} session(s) ended{tokens}")


@user.command("list")
@_DATA_OPTION
@user_errors
def user_list(data) -> None:
    """The users, with their role and how many jobs they own."""
    for u in _store(data).accounts.users():
        role = "admin" if u["admin"] else "user"
        click.echo(f"{u['name']}\t{role}\t{u['jobs']} job(s)\tsince {u['created_at'][:10]}")


@user.command("give")
@click.argument("name")
@click.argument("job_ids", nargs=-1)
@click.option("--unowned", is_flag=True, help="Every job without an owner (made before accounts were on).")
@_DATA_OPTION
@user_errors
def user_give(name, job_ids, unowned, data) -> None:
    """Make NAME the owner of the jobs JOB_IDS (or, with --unowned, of every job without an owner)."""
    if bool(job_ids) == unowned:
        raise InputError("name the jobs (JOB_IDS) or give --unowned, not both")
    moved = _store(data).sharing.give(name, None if unowned else list(job_ids))
    click.echo(f"{moved} job(s) now owned by {name}")


@user.command("audit")
@click.option("--job", "job_id", default=None, help="Only this job (also a deleted one).")
@click.option("--user", "actor", default=None, help="Only what this user did.")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@_DATA_OPTION
@user_errors
def user_audit(job_id, actor, limit, data) -> None:
    """Who did what (create, upload, annotate, train, segment, mesh, download, share, delete), newest first."""
    for e in _store(data).sharing.audit_log(job_id=job_id, actor=actor, limit=limit):
        click.echo(f"{e['at'][:19]}\t{e['actor']}\t{e['action']}\t{e['job_id']}\t{e['detail']}")


@main.command()
@click.option("--host", default=None, help="Address to listen on (default $ML4PALEO_HOST or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default $ML4PALEO_PORT or 5000).")
@click.option("--data", type=click.Path(file_okay=False), default=None,
              help="Data folder (default $ML4PALEO_DATA or ./data).")
@click.option("--threads", type=int, default=None, help="Web server threads (default 8).")
@click.option("--runners", "runner_spec", default="convert=1,segment=1,mesh=1,train=1", show_default=True,
              help="Runner processes per kind ('' or 'none' for none: run them elsewhere).")
@user_errors
def serve(host, port, data, threads, runner_spec) -> None:
    """Start the web app (waitress) and one runner of each kind as child processes.

    A runner that dies is restarted; Ctrl-C or SIGTERM stops everything."""
    import waitress  # lazy: 0.05 s, and the next two 1.7 s each

    from ml4paleo.jobs.private import create_data_folder, exposure_warning, keep_private
    from ml4paleo.jobs.supervisor import Supervisor
    from ml4paleo.models import warm_up_in_background
    from ml4paleo.web import create_app, request_log

    keep_private()
    _logging()
    settings = Settings.from_env(host=host, port=port, data=data, threads=threads)
    create_data_folder(settings.data)
    request_log.configure(settings.access_log)
    exposure = exposure_warning(settings.data)
    if exposure:
        logging.getLogger("ml4paleo.serve").warning(exposure)
    counts: dict[str, int] = {}
    for part in (runner_spec or "").split(","):
        if part.strip() in ("", "none"):
            continue
        kind, _, n = part.partition("=")
        if kind.strip() not in ("convert", "segment", "mesh", "train") or not (n or "1").strip().isdigit():
            raise InputError(f"--runners must look like convert=1,segment=2,mesh=1,train=1; got {runner_spec!r}")
        counts[kind.strip()] = int(n or 1)
    app = create_app(settings)
    warm_up_in_background()  # previews of a slice then take the compiled forest (~0.3 s less each)
    try:
        # X-Forwarded-* reach the app only with trusted proxies set; it believes them from those alone
        server = waitress.create_server(app, host=settings.host, port=settings.port, threads=settings.threads,
                                        max_request_body_size=2 * settings.max_request_bytes + (1 << 20),
                                        clear_untrusted_proxy_headers=not settings.trusted_proxies)
    except OSError as exc:
        raise InputError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}") from exc
    supervisor = Supervisor(settings, counts)

    def _terminate(signum, frame) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _terminate)
    try:
        supervisor.start()
        click.echo(f"ml4paleo serving http://{settings.host}:{settings.port} (data: {settings.data.resolve()}, "
                   f"runners: {counts or 'none'}); Ctrl-C stops", err=True)
        server.run()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        supervisor.stop()
        server.close()


if __name__ == "__main__":  # pragma: no cover
    run()
