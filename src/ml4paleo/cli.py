"""The ``ml4paleo`` command line: one command per pipeline, each a thin wrapper over the library.

Commands parse options, call one library function with a tqdm progress bar, and turn
:class:`ml4paleo.errors.Ml4PaleoError` into a one-line message and exit status 2 (no traceback:
the message is meant for the user).
"""

from __future__ import annotations

import contextlib
import functools
import sys
from typing import Callable, Iterator

import click

from ml4paleo import __version__
from ml4paleo.errors import Ml4PaleoError


@contextlib.contextmanager
def progress_bar(desc: str) -> Iterator[Callable[..., None]]:
    """A tqdm bar (in percent) fed by a pipeline's ``progress(done, total, stage)`` callback."""
    from tqdm import tqdm

    with tqdm(total=100, desc=desc, unit="%", bar_format="{l_bar}{bar}| {n:.0f}% [{elapsed}<{remaining}]") as bar:

        def report(done: float, total: float, stage: str = "") -> None:
            bar.n = round(100.0 * done / total, 1) if total else 100.0
            if stage:
                bar.set_description(stage, refresh=False)
            bar.refresh()

        yield report


def user_errors(func: Callable) -> Callable:
    """Print our own errors as ``Error: message`` and exit 2, instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except Ml4PaleoError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ml4paleo")
def main() -> None:
    """ml4paleo: segment fossils in X-ray tomography scans.

    Typical flow: convert a stack of slices to OME-Zarr, paint a few slices, train, segment the
    whole volume, mesh and export.
    """


@main.command()
@click.argument("src", type=click.Path(exists=True, dir_okay=True, file_okay=True))
@click.argument("dst", type=click.Path(dir_okay=True, file_okay=False))
@click.option("--voxel-size", nargs=3, type=float, metavar="Z Y X", default=None,
              help="Voxel size along z, y, x (default: from the files, else 1 1 1).")
@click.option("--unit", default=None, help="Unit of the voxel size (default micrometer).")
@click.option("--chunk", type=int, default=None, help="Chunk edge in voxels (default 64).")
@click.option("--codec", type=click.Choice(["zstd", "blosc-lz4", "none"]), default=None,
              help="Chunk compressor (default zstd).")
@click.option("--overwrite", is_flag=True, help="Replace DST if it exists.")
@user_errors
def convert(src, dst, voxel_size, unit, chunk, codec, overwrite) -> None:
    """Convert a scan (folder of slices, multi-page TIFF, DICOM series, or a .zip of these)
    into an OME-Zarr volume at DST (e.g. scan.ome.zarr)."""
    from ml4paleo.pipelines.convert import convert_volume

    options = {k: v for k, v in dict(voxel_size=voxel_size, unit=unit, chunk=chunk, codec=codec).items() if v}
    with progress_bar("converting") as report:
        result = convert_volume(src, dst, overwrite=overwrite, progress=report, **options)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"wrote {result.path}: shape {result.shape} {result.dtype}, voxel size {result.voxel_size} {result.unit}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
